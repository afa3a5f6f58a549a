//! Pre-registration with one backup hospital: the workflow, one active per patient (also under
//! a race), information exchanges and their 3-month deadline, the default target of requests.

use std::sync::Arc;

use chrono::{Months, Utc};
use serde_json::json;

use crate::helpers::{race, spawn_app, Resp, TestApp, World};

struct Region {
    w: World,
    doctor: String,
}

fn region(app: &TestApp) -> Region {
    let w = app.world();
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    app.post(&format!("/api/v1/cases/{}/activate", w.case), &w.coordinator, &json!({})).assert(200);
    let doctor = app.as_practitioner(&w.doctors[0], &w.clinic, &["physician"]);
    Region { w, doctor }
}

fn hospital(app: &TestApp, name: &str) -> (String, String) {
    let h = app.create_org(json!({"kind": "hospital", "name": name, "municipality_code": "131016"}))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let manager = app.token_for(&h, &["hospital_bed_manager"]);
    (h, manager)
}

fn register(app: &TestApp, r: &Region, token: &str, hospital: &str) -> Resp {
    app.post(
        "/api/v1/backup-registrations",
        token,
        &json!({"case_id": r.w.case, "hospital_id": hospital, "consent_obtained_on": "2026-11-01",
                "summary": "心不全。在宅酸素 2L。急変時は入院加療を希望。"}),
    )
}

#[test]
fn a_registration_is_requested_activated_and_kept_up_to_date() {
    let app = spawn_app();
    let r = region(&app);
    let (h, manager) = hospital(&app, "千代田中央病院");
    let nurse = app.as_practitioner(&r.w.nurse, &r.w.clinic, &["nurse"]);
    register(&app, &r, &nurse, &h).assert_problem(400, "validation_failed");
    let secondary = app.as_practitioner(&r.w.doctors[1], &r.w.clinic, &["physician"]);
    register(&app, &r, &secondary, &h).assert_problem(400, "validation_failed");
    let mut bad = json!({"case_id": r.w.case, "hospital_id": r.w.clinic, "consent_obtained_on": "2999-01-01"});
    app.post("/api/v1/backup-registrations", &r.doctor, &bad).assert_problem(400, "validation_failed");
    bad["consent_obtained_on"] = json!("2026-11-01");
    bad["summary"] = json!("x");
    app.post("/api/v1/backup-registrations", &r.doctor, &bad).assert_problem(400, "validation_failed");
    let reg = register(&app, &r, &r.doctor, &h);
    reg.assert(201);
    assert_eq!(reg.body["status"], "requested");
    let path = format!("/api/v1/backup-registrations/{}", reg.id());
    let (_, other_manager) = hospital(&app, "神田病院");
    app.get(&path, &other_manager).assert_problem(404, "not_found");
    app.post(&format!("{path}/activate"), &other_manager, &json!({})).assert_problem(404, "not_found");
    app.post(&format!("{path}/activate"), &r.doctor, &json!({})).assert_problem(403, "forbidden");
    app.post(&format!("{path}/info-exchanges"), &r.doctor, &json!({})).assert_problem(409, "invalid_transition");
    let active = app.post(&format!("{path}/activate"), &manager, &json!({}));
    active.assert(200);
    let today = renkei::domain::time::today_jst(Utc::now());
    assert_eq!(active.body["last_exchange_on"], today.to_string());
    assert_eq!(active.body["next_exchange_due"], (today + Months::new(3)).to_string());
    app.post(&format!("{path}/activate"), &manager, &json!({})).assert_problem(409, "invalid_transition");
    app.post(&format!("{path}/reject"), &manager, &json!({"reason": "満床"})).assert_problem(409, "invalid_transition");
    // Exchanges by either side move the deadline; a stale registration is listed as overdue.
    app.post(&format!("{path}/info-exchanges"), &manager, &json!({"exchanged_on": "2999-01-01"}))
        .assert_problem(400, "validation_failed");
    app.post(&format!("{path}/info-exchanges"), &nurse, &json!({})).assert_problem(404, "not_found");
    app.db
        .raw(&format!(
            "UPDATE backup_registrations SET last_exchange_on = '2026-07-01', next_exchange_due = '2026-10-01' WHERE id = '{}'",
            reg.id()
        ))
        .unwrap();
    let overdue = app.get("/api/v1/backup-registrations?overdue=true", &manager);
    assert_eq!(overdue.body["items"][0]["id"], reg.id().as_str());
    assert_eq!(overdue.body["items"][0]["exchange_overdue"], true);
    let done = app.post(&format!("{path}/info-exchanges"), &r.doctor, &json!({"note": "退院後の状態を共有"}));
    done.assert(200);
    assert_eq!(done.body["exchange_overdue"], false);
    assert_eq!(app.get("/api/v1/backup-registrations?overdue=true", &manager).body["items"], json!([]));
    app.get("/api/v1/backup-registrations", &app.token_for(&r.w.base, &["municipal_viewer"]))
        .assert_problem(403, "forbidden");
    // Requests go to the registered hospital unless told otherwise.
    let req = app.post(
        "/api/v1/bed-requests",
        &r.doctor,
        &json!({"case_id": r.w.case, "kind": "emergency", "reason": "呼吸苦増悪"}),
    );
    req.assert(201);
    assert_eq!(req.body["hospital_id"], h.as_str());
    app.post(&format!("{path}/withdraw"), &manager, &json!({})).assert_problem(403, "forbidden");
    app.post(&format!("{path}/withdraw"), &r.w.coordinator, &json!({})).assert(200);
    let orphan =
        app.post("/api/v1/bed-requests", &r.doctor, &json!({"case_id": r.w.case, "kind": "emergency", "reason": "x"}));
    assert_eq!(orphan.field_errors(), [("hospital_id".to_owned(), "required".to_owned())]);
}

#[test]
fn a_patient_has_one_active_backup_hospital_and_the_refusal_names_it() {
    let app = spawn_app();
    let r = region(&app);
    let (h1, m1) = hospital(&app, "千代田中央病院");
    let (h2, m2) = hospital(&app, "神田病院");
    let first = register(&app, &r, &r.doctor, &h1).id();
    let second = register(&app, &r, &r.w.coordinator, &h2).id();
    app.post(&format!("/api/v1/backup-registrations/{first}/activate"), &m1, &json!({})).assert(200);
    let refused = app.post(&format!("/api/v1/backup-registrations/{second}/activate"), &m2, &json!({}));
    refused.assert_problem(409, "active_registration_exists");
    assert_eq!(refused.body["existing_id"], first.as_str());
    let rejected = app.post(&format!("/api/v1/backup-registrations/{second}/reject"), &m2, &json!({}));
    rejected.assert_problem(400, "validation_failed");
    app.post(&format!("/api/v1/backup-registrations/{first}/withdraw"), &r.doctor, &json!({})).assert(200);
    app.post(&format!("/api/v1/backup-registrations/{second}/activate"), &m2, &json!({})).assert(200);
}

#[test]
fn ten_racing_activations_for_one_patient_leave_one_active() {
    let app = Arc::new(spawn_app());
    let r = Arc::new(region(&app));
    let pairs: Vec<(String, String)> = (0..10)
        .map(|i| {
            let (h, m) = hospital(&app, &format!("病院{i}"));
            (register(&app, &r, &r.w.coordinator, &h).id(), m)
        })
        .collect();
    let (a, p) = (app.clone(), Arc::new(pairs));
    let results = race(10, move |i| {
        let (id, manager) = &p[i];
        let resp = a.post(&format!("/api/v1/backup-registrations/{id}/activate"), manager, &json!({}));
        (
            resp.status,
            resp.body["code"].as_str().unwrap_or("").to_owned(),
            resp.body["existing_id"].as_str().map(str::to_owned),
        )
    });
    assert_eq!(results.iter().filter(|(s, _, _)| *s == 200).count(), 1, "{results:?}");
    let refused: Vec<_> = results.iter().filter(|(s, _, _)| *s == 409).collect();
    assert_eq!(refused.len(), 9, "{results:?}");
    assert!(refused.iter().all(|(_, code, _)| code == "active_registration_exists"), "{results:?}");
    let active = app.get(&format!("/api/v1/backup-registrations?case_id={}&status=active", r.w.case), &r.w.coordinator);
    assert_eq!(active.body["items"].as_array().unwrap().len(), 1);
}

/// A reader who sees registrations two ways (managed here, on a team elsewhere) pages through
/// them one at a time: each once, in order (one query per way, merged).
#[test]
fn a_reader_seeing_two_ways_pages_through_registrations_once_each() {
    let app = spawn_app();
    let r = region(&app);
    let (h, _) = hospital(&app, "千代田中央病院");
    let here = register(&app, &r, &r.doctor, &h);
    here.assert(201);
    let (case, doctor, both) = app.case_elsewhere_on_the_nurses_team(&r.w);
    let there = app.post(
        "/api/v1/backup-registrations",
        &doctor,
        &json!({"case_id": case, "hospital_id": h, "consent_obtained_on": "2026-11-01",
                "summary": "慢性腎不全。急変時は入院加療を希望。"}),
    );
    there.assert(201);
    let mut expected = vec![here.id(), there.id()];
    expected.sort();
    assert_eq!(app.page_through("/api/v1/backup-registrations", &both), expected);
    assert_eq!(app.ids_of(&app.get("/api/v1/backup-registrations?limit=10", &both)), expected, "one page: each once");
}
