//! `/api/v1/cases`: opening, the state machine, history, visibility and races.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::{race, spawn_app};

#[test]
fn a_case_opens_referred_and_needs_a_primary_to_become_active() {
    let app = spawn_app();
    let w = app.world();
    let path = format!("/api/v1/cases/{}", w.case);
    let case = app.get(&path, &w.coordinator);
    case.assert(200);
    assert_eq!(case.body["status"], "referred");
    assert_eq!(case.body["started_on"], json!(null));
    let r = app.post(&format!("{path}/activate"), &w.coordinator, &json!({}));
    r.assert_problem(409, "primary_physician_required");
    assert_eq!(app.get(&path, &w.coordinator).body["status"], "referred", "a refused transition changes nothing");
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    let r = app.post(&format!("{path}/activate"), &w.coordinator, &json!({}));
    r.assert(200);
    assert_eq!(r.body["status"], "active");
    assert!(r.body["started_on"].is_string());
    // A creation answers the case as stored.
    let patient = app.register_patient(&w.coordinator, "井上 和子", "イノウエ カズコ");
    let created = app.post(
        "/api/v1/cases",
        &w.coordinator,
        &json!({"patient_id": patient, "managing_organization_id": w.base, "notes": "週2回訪問"}),
    );
    created.assert(201);
    assert_eq!(app.get(&format!("/api/v1/cases/{}", created.id()), &w.coordinator).body, created.body);
}

#[test]
fn the_state_machine_walks_hold_resume_close_and_refuses_the_rest() {
    let app = spawn_app();
    let w = app.world();
    let path = format!("/api/v1/cases/{}", w.case);
    let post = |verb: &str, body: serde_json::Value| app.post(&format!("{path}/{verb}"), &w.coordinator, &body);
    post("hold", json!({})).assert_problem(409, "invalid_transition");
    let r = post("close", json!({"reason": "moved"}));
    r.assert_problem(409, "invalid_transition");
    assert_eq!(r.body["current_status"], "referred");
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    let started_on = post("activate", json!({})).body["started_on"].clone();
    assert!(started_on.is_string());
    post("activate", json!({})).assert_problem(409, "invalid_transition");
    post("cancel", json!({})).assert_problem(409, "invalid_transition");
    assert_eq!(post("hold", json!({})).body["status"], "on_hold");
    assert_eq!(post("resume", json!({})).body["status"], "active");
    post("close", json!({})).assert_problem(400, "validation_failed");
    post("close", json!({"reason": "abducted"})).assert_problem(400, "validation_failed");
    let closed = post("close", json!({"reason": "died_at_home"}));
    closed.assert(200);
    assert_eq!(closed.body["status"], "closed");
    assert_eq!(closed.body["close_reason"], "died_at_home");
    assert!(closed.body["ended_on"].is_string());
    assert_eq!(closed.body["started_on"], started_on, "closing keeps the start date");
    assert_eq!(app.get(&path, &w.coordinator).body, closed.body, "as stored");
    post("resume", json!({})).assert_problem(409, "invalid_transition");
    let history = app.get(&format!("{path}/history"), &w.coordinator);
    let steps: Vec<(String, String)> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from_status"].as_str().unwrap_or("-").to_owned(), h["to_status"].as_str().unwrap().to_owned()))
        .collect();
    let expected =
        [("-", "referred"), ("referred", "active"), ("active", "on_hold"), ("on_hold", "active"), ("active", "closed")];
    assert_eq!(steps, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
}

#[test]
fn a_referral_can_be_cancelled_and_then_a_new_case_opened() {
    let app = spawn_app();
    let w = app.world();
    app.post(&format!("/api/v1/cases/{}/cancel", w.case), &w.coordinator, &json!({})).assert(200);
    let again = app.open_case(&w.coordinator, &w.patient, &w.base);
    assert_ne!(again, w.case);
}

#[test]
fn one_open_case_per_patient_per_managing_organization() {
    let app = spawn_app();
    let w = app.world();
    let r = app.post(
        "/api/v1/cases",
        &w.coordinator,
        &json!({"patient_id": w.patient, "managing_organization_id": w.base}),
    );
    r.assert_problem(409, "open_case_exists");
    assert_eq!(r.body["existing_id"], w.case);
}

#[test]
fn concurrent_identical_case_creations_leave_one_case() {
    let app = Arc::new(spawn_app());
    let base = app.clinic("拠点");
    let coordinator = app.coordinator_of(&base);
    let patient = app.register_patient(&coordinator, "田中 花子", "タナカ ハナコ");
    let (a, c, p, b) = (app.clone(), coordinator.clone(), patient.clone(), base.clone());
    let results = race(8, move |_| {
        let r = a.post("/api/v1/cases", &c, &json!({"patient_id": p, "managing_organization_id": b}));
        (r.status, r.code().to_owned())
    });
    assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1, "{results:?}");
    assert!(results.iter().all(|(s, code)| *s == 201 || (*s == 409 && code == "open_case_exists")), "{results:?}");
    let list = app.get(&format!("/api/v1/cases?patient_id={patient}"), &coordinator);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[test]
fn two_racing_transitions_cannot_both_win() {
    let app = Arc::new(spawn_app());
    let w = app.world();
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    let (a, c, id) = (app.clone(), w.coordinator.clone(), w.case.clone());
    let statuses = race(10, move |_| a.post(&format!("/api/v1/cases/{id}/activate"), &c, &json!({})).status);
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 9, "{statuses:?}");
    let history = app.get(&format!("/api/v1/cases/{}/history", w.case), &w.coordinator);
    assert_eq!(history.body["items"].as_array().unwrap().len(), 2);
}

#[test]
fn opening_a_case_is_for_the_managing_organizations_coordinators() {
    let app = spawn_app();
    let w = app.world();
    let other = app.clinic("別の拠点");
    // For another organization: forbidden, even for a coordinator.
    let r =
        app.post("/api/v1/cases", &w.coordinator, &json!({"patient_id": w.patient, "managing_organization_id": other}));
    r.assert_problem(403, "forbidden");
    // A patient the caller cannot see is an unknown reference.
    let stranger = app.coordinator_of(&other);
    let r = app.post("/api/v1/cases", &stranger, &json!({"patient_id": w.patient, "managing_organization_id": other}));
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.field_errors()[0], ("patient_id".to_owned(), "unknown_reference".to_owned()));
    let nurse = app.as_practitioner(&w.nurse, &w.base, &["nurse"]);
    app.post("/api/v1/cases", &nurse, &json!({"patient_id": w.patient, "managing_organization_id": w.base}))
        .assert_problem(403, "forbidden");
    app.post("/api/v1/cases", &w.coordinator, &json!({"patient_id": "nope"})).assert_problem(400, "validation_failed");
}

#[test]
fn cases_are_visible_to_their_base_and_current_team_only() {
    let app = spawn_app();
    let w = app.world();
    let path = format!("/api/v1/cases/{}", w.case);
    let stranger = app.coordinator_of(&app.clinic("別の拠点"));
    app.get(&path, &stranger).assert_problem(404, "not_found");
    app.post(&format!("{path}/cancel"), &stranger, &json!({})).assert_problem(404, "not_found");
    app.get(&format!("{path}/history"), &stranger).assert_problem(404, "not_found");
    assert_eq!(app.get("/api/v1/cases", &stranger).body["items"], json!([]));
    // The nurse joins the team: she reads the case but may not run it.
    let nurse = app.as_practitioner(&w.nurse, &w.clinic, &["nurse"]);
    app.get(&path, &nurse).assert_problem(404, "not_found");
    let member = app.post(
        &format!("{path}/care-team"),
        &w.coordinator,
        &json!({"practitioner_id": w.nurse, "role": "visiting_nurse"}),
    );
    member.assert(201);
    app.get(&path, &nurse).assert(200);
    app.post(&format!("{path}/cancel"), &nurse, &json!({})).assert_problem(403, "forbidden");
    assert_eq!(
        app.get(&format!("/api/v1/cases?practitioner_id={}", w.nurse), &nurse).body["items"].as_array().unwrap().len(),
        1
    );
    // Once her membership ends, the case is gone from her view.
    app.post(&format!("{path}/care-team/{}/end", member.id()), &w.coordinator, &json!({})).assert(200);
    app.get(&path, &nurse).assert_problem(404, "not_found");
    app.get("/api/v1/cases", &app.token_for(&w.base, &["municipal_viewer"])).assert_problem(403, "forbidden");
}

/// Someone who coordinates one base and is on a team of another base sees both kinds of case:
/// the list pages through them in id order, each case once, even one seen both ways.
#[test]
fn a_coordinator_on_another_bases_team_pages_through_both_kinds_of_case_once() {
    let app = spawn_app();
    let w = app.world();
    let second = app.world_for_new_patient(&w);
    let (other_base, other_coordinator) = app.other_base("港区医師会", "131032");
    let patient = app.register_patient(&other_coordinator, "木村 一郎", "キムラ イチロウ");
    let elsewhere = app.open_case(&other_coordinator, &patient, &other_base);
    app.join_as_nurse(&other_coordinator, &elsewhere, &w.nurse);
    app.join_as_nurse(&w.coordinator, &w.case, &w.nurse);
    let both = app.as_practitioner(&w.nurse, &w.base, &["nurse", "coordinator"]);
    let seen = app.page_through("/api/v1/cases", &both);
    let mut expected = vec![w.case.clone(), second.case.clone(), elsewhere.clone()];
    expected.sort();
    assert_eq!(seen, expected);
    // The same reader's patients: registered or managed here, or on the team elsewhere.
    let mut patients: Vec<String> = app.get("/api/v1/patients?limit=10", &both).body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    patients.sort();
    let mut expected = vec![w.patient.clone(), second.patient.clone(), patient];
    expected.sort();
    assert_eq!(patients, expected);
}

#[test]
fn case_lists_filter_by_status_organization_and_municipality() {
    let app = spawn_app();
    let w = app.world();
    let second_patient = app.register_patient(&w.coordinator, "伊藤 一郎", "イトウ イチロウ");
    let second = app.open_case(&w.coordinator, &second_patient, &w.base);
    app.post(&format!("/api/v1/cases/{second}/cancel"), &w.coordinator, &json!({})).assert(200);
    let ids = |query: &str| -> Vec<String> {
        let r = app.get(&format!("/api/v1/cases{query}"), &w.coordinator);
        r.assert(200);
        r.body["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids("?status=referred"), vec![w.case.clone()]);
    assert_eq!(ids("?status=cancelled"), vec![second.clone()]);
    assert_eq!(ids(&format!("?managing_organization_id={}", w.base)).len(), 2);
    assert_eq!(ids("?municipality_code=131016").len(), 2);
    assert_eq!(ids("?municipality_code=271004").len(), 0);
    assert_eq!(ids("?limit=1").len(), 1);
    app.get("/api/v1/cases?status=dormant", &w.coordinator).assert_problem(400, "validation_failed");
    app.get("/api/v1/cases?practitioner_id=x", &w.coordinator).assert_problem(400, "validation_failed");
}

#[test]
fn case_notes_patch_with_if_match() {
    let app = spawn_app();
    let w = app.world();
    let path = format!("/api/v1/cases/{}", w.case);
    app.request("PATCH", &path, Some(&w.coordinator), &[], Some("{\"notes\": \"x\"}"))
        .assert_problem(428, "precondition_required");
    let r = app.patch(&path, &w.coordinator, "\"1\"", &json!({"notes": "独居。長女が週末に訪問。"}));
    r.assert(200);
    assert_eq!(r.header("etag"), Some("\"2\""));
    app.patch(&path, &w.coordinator, "\"1\"", &json!({"notes": "古い"})).assert_problem(412, "version_mismatch");
    app.patch(&path, &w.coordinator, "\"2\"", &json!({"status": "closed"})).assert_problem(400, "validation_failed");
}
