//! Backup beds and bed requests: publication, respite rules, allocation that never double-books,
//! hospital answers, the sweeper with a controlled clock, re-targeting, visibility.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};

use crate::helpers::{race, spawn_app, test_config, Resp, TestApp, World};

struct Ward {
    w: World,
    hospital: String,
    manager: String,
    /// The case's primary physician.
    doctor: String,
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn hospital(app: &TestApp, name: &str) -> (String, String) {
    let h = app.create_org(json!({"kind": "hospital", "name": name, "municipality_code": "131016"}))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let manager = app.token_for(&h, &["hospital_bed_manager"]);
    (h, manager)
}

/// A region with an active case (primary: doctors[0], secondary: doctors[1]) and a hospital.
fn ward(app: &TestApp) -> Ward {
    let w = app.world();
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    app.handover(&w.coordinator, &w.case, "secondary", &w.doctors[1], None).assert(200);
    app.post(&format!("/api/v1/cases/{}/activate", w.case), &w.coordinator, &json!({})).assert(200);
    let (hospital, manager) = hospital(app, "千代田中央病院");
    let doctor = app.as_practitioner(&w.doctors[0], &w.clinic, &["physician"]);
    Ward { w, hospital, manager, doctor }
}

fn bed(app: &TestApp, x: &Ward, label: &str, kinds: &[&str], tags: &[&str]) -> String {
    let r = app.post(
        &format!("/api/v1/organizations/{}/beds", x.hospital),
        &x.manager,
        &json!({"ward": "3階東", "label": label, "kinds": kinds, "tags": tags}),
    );
    r.assert(201);
    r.id()
}

fn request(app: &TestApp, x: &Ward, token: &str, kind: &str, needs: &[&str]) -> Resp {
    app.post(
        "/api/v1/bed-requests",
        token,
        &json!({"case_id": x.w.case, "kind": kind, "hospital_id": x.hospital, "needs": needs, "reason": "SpO2 低下"}),
    )
}

fn accept(app: &TestApp, x: &Ward, id: &str, bed: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Resp {
    app.post(
        &format!("/api/v1/bed-requests/{id}/accept"),
        &x.manager,
        &json!({"bed_id": bed, "starts_at": iso(from), "ends_at": iso(to)}),
    )
}

fn hour() -> DateTime<Utc> {
    let now = Utc::now();
    Utc.with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0).unwrap() + Duration::days(2)
}

#[test]
fn hospitals_publish_beds_and_availability_counts_free_matching_ones() {
    let app = spawn_app();
    let x = ward(&app);
    let path = format!("/api/v1/organizations/{}/beds", x.hospital);
    let body = json!({"ward": "3階東", "label": "301", "kinds": ["emergency", "respite"], "tags": ["oxygen"]});
    app.request("POST", &path, None, &[], Some(&body.to_string())).assert(401);
    app.post(&path, &app.token_for(&x.hospital, &["nurse"]), &body).assert_problem(403, "forbidden");
    let (_, other_manager) = hospital(&app, "神田病院");
    app.post(&path, &other_manager, &body).assert_problem(403, "forbidden");
    let clinic_manager = app.token_for(&x.w.clinic, &["hospital_bed_manager"]);
    app.post(&format!("/api/v1/organizations/{}/beds", x.w.clinic), &clinic_manager, &body)
        .assert_problem(409, "not_a_hospital");
    app.post(&path, &x.manager, &json!({"ward": "3階東", "label": "301", "kinds": ["spa"]}))
        .assert_problem(400, "validation_failed");
    let b301 = app.post(&path, &x.manager, &body);
    b301.assert(201);
    assert_eq!(b301.body["status"], "open");
    app.post(&path, &x.manager, &body).assert_problem(409, "duplicate_bed");
    bed(&app, &x, "302", &["emergency"], &[]);
    let bed_path = format!("{path}/{}", b301.id());
    app.request("PATCH", &bed_path, Some(&x.manager), &[], Some("{}")).assert_problem(428, "precondition_required");
    app.patch(&bed_path, &x.manager, "\"9\"", &json!({"status": "closed"})).assert_problem(412, "version_mismatch");
    app.patch(&bed_path, &other_manager, "\"1\"", &json!({"status": "closed"})).assert_problem(403, "forbidden");
    let (from, to) = (iso(hour()), iso(hour() + Duration::days(1)));
    let avail = |q: &str| app.get(&format!("/api/v1/bed-availability?{q}&from={from}&to={to}"), &x.doctor);
    assert_eq!(avail("kind=emergency").body["items"], json!([{"hospital_id": x.hospital, "free_beds": 2}]));
    assert_eq!(avail("kind=emergency&needs=oxygen").body["items"][0]["free_beds"], 1);
    assert_eq!(avail("kind=urgent").body["items"], json!([]));
    app.patch(&bed_path, &x.manager, "\"1\"", &json!({"status": "closed"})).assert(200);
    assert_eq!(avail("kind=emergency&needs=oxygen").body["items"], json!([]));
    avail("kind=soon").assert_problem(400, "validation_failed");
    app.get("/api/v1/bed-availability?kind=emergency", &x.doctor).assert_problem(400, "validation_failed");
    assert_eq!(app.get(&path, &x.doctor).body["items"].as_array().unwrap().len(), 2);
}

#[test]
fn who_may_ask_for_a_bed() {
    let app = spawn_app();
    let x = ward(&app);
    request(&app, &x, &x.doctor, "emergency", &[]).assert(201);
    let secondary = app.as_practitioner(&x.w.doctors[1], &x.w.clinic, &["physician"]);
    request(&app, &x, &secondary, "urgent", &[]).assert(201);
    request(&app, &x, &x.w.coordinator, "urgent", &[]).assert(201);
    // The third doctor is on the base's on-call roster: covering only while both are away.
    let third = app.as_practitioner(&x.w.doctors[2], &x.w.clinic, &["physician"]);
    request(&app, &x, &third, "emergency", &[]).assert_problem(400, "validation_failed");
    let now = Utc::now();
    let (from, to) = (iso(now - Duration::hours(1)), iso(now + Duration::hours(2)));
    let shift = json!({"practitioner_id": x.w.doctors[2], "starts_at": from, "ends_at": to});
    app.post(&format!("/api/v1/organizations/{}/on-call-shifts", x.w.base), &x.w.coordinator, &shift).assert(201);
    request(&app, &x, &third, "emergency", &[]).assert_problem(400, "validation_failed");
    for d in &x.w.doctors[..2] {
        let away = json!({"starts_at": from, "ends_at": to, "reason": "学会"});
        let own = app.as_practitioner(d, &x.w.clinic, &["physician"]);
        app.post(&format!("/api/v1/practitioners/{d}/absences"), &own, &away).assert(201);
    }
    let covered = request(&app, &x, &third, "emergency", &[]);
    covered.assert(201);
    app.get(&format!("/api/v1/bed-requests/{}", covered.id()), &third).assert(200);
    // Team members who are not its physicians may read, not ask.
    let nurse = app.as_practitioner(&x.w.nurse, &x.w.clinic, &["nurse"]);
    app.post(
        &format!("/api/v1/cases/{}/care-team", x.w.case),
        &x.w.coordinator,
        &json!({"practitioner_id": x.w.nurse, "role": "visiting_nurse"}),
    )
    .assert(201);
    request(&app, &x, &nurse, "emergency", &[]).assert_problem(403, "forbidden");
    request(&app, &x, &app.token_for(&x.hospital, &["hospital_bed_manager"]), "emergency", &[])
        .assert_problem(400, "validation_failed");
    let mut bad = json!({"case_id": x.w.case, "kind": "now", "hospital_id": x.w.clinic, "reason": ""});
    app.post("/api/v1/bed-requests", &x.doctor, &bad).assert_problem(400, "validation_failed");
    bad["kind"] = json!("urgent");
    bad["reason"] = json!("x");
    app.post("/api/v1/bed-requests", &x.doctor, &bad).assert_problem(400, "validation_failed");
    let r = request(&app, &x, &x.doctor, "emergency", &["oxygen"]);
    let due: DateTime<Utc> = r.body["response_due_at"].as_str().unwrap().parse().unwrap();
    let created: DateTime<Utc> = r.body["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((due - created).num_minutes(), 30, "an emergency is answered within 30 minutes");
    // A case on hold (in hospital) asks for nothing.
    app.post(&format!("/api/v1/cases/{}/hold", x.w.case), &x.w.coordinator, &json!({})).assert(200);
    request(&app, &x, &x.doctor, "emergency", &[]).assert_problem(409, "case_not_active");
}

#[test]
fn respite_windows_follow_the_hospitals_policy() {
    let app = spawn_app();
    let x = ward(&app);
    let policy = format!("/api/v1/organizations/{}/respite-policy", x.hospital);
    assert_eq!(app.get(&policy, &x.doctor).body["max_stay_days"], 14);
    let rules = json!({"max_stay_days": 7, "min_notice_days": 3, "admission_weekdays": ["mon", "tue"], "yearly_limit_days": 10});
    app.request("PUT", &policy, Some(&x.doctor), &[], Some(&rules.to_string())).assert_problem(403, "forbidden");
    app.request("PUT", &policy, Some(&x.manager), &[], Some("{\"max_stay_days\": 0}"))
        .assert_problem(400, "validation_failed");
    app.request("PUT", &policy, Some(&x.manager), &[], Some(&rules.to_string())).assert(200);
    // Monday 1 March 2027, 10:00 JST: far enough ahead, and the same year as two weeks later.
    let monday = Utc.with_ymd_and_hms(2027, 3, 1, 1, 0, 0).unwrap();
    let ask = |from: DateTime<Utc>, to: Option<DateTime<Utc>>| {
        let mut body = json!({"case_id": x.w.case, "kind": "respite", "hospital_id": x.hospital, "starts_at": iso(from), "reason": "介護者の休息"});
        if let Some(t) = to {
            body["ends_at"] = json!(iso(t));
        }
        app.post("/api/v1/bed-requests", &x.doctor, &body)
    };
    let rule = |r: Resp| {
        r.assert(422);
        r.body["rule"].as_str().unwrap().to_owned()
    };
    assert_eq!(rule(ask(monday, None)), "end_required");
    assert_eq!(rule(ask(monday, Some(monday + Duration::days(8)))), "max_stay");
    assert_eq!(rule(ask(monday + Duration::days(2), Some(monday + Duration::days(4)))), "admission_weekday");
    // Tomorrow is less than 3 days' notice, whatever weekday it is (notice is checked first).
    let tomorrow = Utc::now() + Duration::days(1);
    assert_eq!(rule(ask(tomorrow, Some(tomorrow + Duration::days(1)))), "min_notice");
    let first = ask(monday, Some(monday + Duration::days(7)));
    first.assert(201);
    let b = bed(&app, &x, "R1", &["respite"], &[]);
    accept(&app, &x, &first.id(), &b, monday, monday + Duration::days(7)).assert(200);
    // 7 of the 10 yearly days are booked: 4 more break the limit, 3 fit.
    let later = monday + Duration::days(14);
    assert_eq!(rule(ask(later, Some(later + Duration::days(4)))), "yearly_limit");
    let pending = ask(later, Some(later + Duration::days(3)));
    pending.assert(201);
    // That pending stay counts too: nothing more fits this year.
    let after = monday + Duration::days(21);
    assert_eq!(rule(ask(after, Some(after + Duration::days(1)))), "yearly_limit");
    // The stay a hospital gives follows the policy as well.
    let b2 = bed(&app, &x, "R2", &["respite"], &[]);
    accept(&app, &x, &pending.id(), &b2, later, later + Duration::days(8)).assert(422);
    accept(&app, &x, &pending.id(), &b2, later, later + Duration::days(3)).assert(200);
}

#[test]
fn an_accept_checks_the_bed_and_adjacent_periods_both_fit() {
    let app = spawn_app();
    let x = ward(&app);
    let oxygen = bed(&app, &x, "401", &["emergency", "urgent"], &["oxygen"]);
    let plain = bed(&app, &x, "402", &["emergency"], &[]);
    let (_, other_manager) = hospital(&app, "神田病院");
    let r1 = request(&app, &x, &x.doctor, "emergency", &["oxygen"]).id();
    let (t0, t1, t2) = (hour(), hour() + Duration::days(2), hour() + Duration::days(4));
    let p = format!("/api/v1/bed-requests/{r1}/accept");
    app.post(&p, &other_manager, &json!({"bed_id": oxygen, "ends_at": iso(t1)})).assert_problem(404, "not_found");
    app.post(&p, &x.doctor, &json!({"bed_id": oxygen, "ends_at": iso(t1)})).assert_problem(403, "forbidden");
    app.post(&p, &x.manager, &json!({"bed_id": oxygen})).assert_problem(400, "validation_failed");
    accept(&app, &x, &r1, &plain, t0, t1).assert_problem(409, "bed_unavailable");
    accept(&app, &x, &r1, &uuid::Uuid::now_v7().to_string(), t0, t1).assert_problem(400, "validation_failed");
    let ok = accept(&app, &x, &r1, &oxygen, t0, t1);
    ok.assert(200);
    assert_eq!(ok.body["status"], "accepted");
    assert_eq!(ok.body["allocation"]["bed_id"], oxygen.as_str());
    accept(&app, &x, &r1, &oxygen, t1, t2).assert_problem(409, "invalid_transition");
    let r2 = request(&app, &x, &x.doctor, "urgent", &[]).id();
    accept(&app, &x, &r2, &oxygen, t1 - Duration::minutes(1), t2).assert_problem(409, "bed_unavailable");
    accept(&app, &x, &r2, &oxygen, t1, t2).assert(200);
    // Cancelling gives the bed back.
    app.post(&format!("/api/v1/bed-requests/{r1}/cancel"), &app.token_for(&x.w.clinic, &["physician"]), &json!({}))
        .assert_problem(404, "not_found");
    app.post(&format!("/api/v1/bed-requests/{r1}/cancel"), &x.doctor, &json!({})).assert(200);
    let r3 = request(&app, &x, &x.doctor, "emergency", &[]).id();
    accept(&app, &x, &r3, &oxygen, t0, t1).assert(200);
    app.post(&format!("/api/v1/bed-requests/{r3}/decline"), &x.manager, &json!({"reason_code": "no_bed_available"}))
        .assert_problem(409, "invalid_transition");
}

#[test]
fn fifty_accepts_of_different_requests_for_one_bed_leave_one_allocation() {
    let app = Arc::new(spawn_app());
    let x = Arc::new(ward(&app));
    let b = bed(&app, &x, "501", &["emergency"], &[]);
    let ids: Vec<String> = (0..50).map(|_| request(&app, &x, &x.w.coordinator, "emergency", &[]).id()).collect();
    let (a, xx, ids2, bb) = (app.clone(), x.clone(), Arc::new(ids), b.clone());
    let (from, to) = (hour(), hour() + Duration::days(3));
    let results = race(50, move |i| {
        // Every period overlaps every other one.
        let r = accept(&a, &xx, &ids2[i], &bb, from + Duration::minutes(i as i64), to + Duration::minutes(i as i64));
        (r.status, r.body["code"].as_str().unwrap_or("").to_owned())
    });
    let won = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(won, 1, "{results:?}");
    assert!(results.iter().all(|(s, c)| *s == 200 || (*s == 409 && c == "bed_unavailable")), "{results:?}");
    let avail =
        app.get(&format!("/api/v1/bed-availability?kind=emergency&from={}&to={}", iso(from), iso(to)), &x.doctor);
    assert_eq!(avail.body["items"], json!([]));
}

#[test]
fn fifty_accepts_of_one_request_leave_one_allocation() {
    let app = Arc::new(spawn_app());
    let x = Arc::new(ward(&app));
    let beds: Vec<String> = (0..50).map(|i| bed(&app, &x, &format!("6{i:02}"), &["urgent"], &[])).collect();
    let id = request(&app, &x, &x.doctor, "urgent", &[]).id();
    let (a, xx, beds2, id2) = (app.clone(), x.clone(), Arc::new(beds), id.clone());
    let (from, to) = (hour(), hour() + Duration::days(1));
    let results = race(50, move |i| accept(&a, &xx, &id2, &beds2[i], from, to).status);
    assert_eq!(results.iter().filter(|s| **s == 200).count(), 1, "{results:?}");
    assert!(results.iter().all(|s| *s == 200 || *s == 409), "{results:?}");
    let avail = app.get(&format!("/api/v1/bed-availability?kind=urgent&from={}&to={}", iso(from), iso(to)), &x.doctor);
    assert_eq!(avail.body["items"][0]["free_beds"], 49, "exactly one bed was taken");
}

#[test]
fn admission_holds_the_case_and_discharge_resumes_or_closes_it() {
    let app = spawn_app();
    let x = ward(&app);
    let b = bed(&app, &x, "701", &["emergency"], &[]);
    let case_status = || app.get(&format!("/api/v1/cases/{}", x.w.case), &x.w.coordinator).body["status"].clone();
    let id = request(&app, &x, &x.doctor, "emergency", &[]).id();
    let p = |verb: &str| format!("/api/v1/bed-requests/{id}/{verb}");
    app.post(&p("admit"), &x.manager, &json!({})).assert_problem(409, "invalid_transition");
    accept(&app, &x, &id, &b, Utc::now(), Utc::now() + Duration::days(5)).assert(200);
    app.post(&p("admit"), &x.doctor, &json!({})).assert_problem(403, "forbidden");
    app.post(&p("admit"), &x.manager, &json!({})).assert(200);
    assert_eq!(case_status(), "on_hold");
    // An admitted patient keeps the bed past the planned end, until discharge.
    let after_plan = |q: &str| {
        let (from, to) = (iso(hour() + Duration::days(6)), iso(hour() + Duration::days(7)));
        app.get(&format!("/api/v1/bed-availability?{q}&from={from}&to={to}"), &x.doctor).body["items"].clone()
    };
    assert_eq!(after_plan("kind=emergency"), json!([]));
    app.post(&p("cancel"), &x.doctor, &json!({})).assert_problem(409, "invalid_transition");
    app.post(&p("discharge"), &x.manager, &json!({"disposition": "vanished"})).assert_problem(400, "validation_failed");
    let d = app.post(&p("discharge"), &x.manager, &json!({"disposition": "home"}));
    d.assert(200);
    assert!(d.body["allocation"]["released_at"].is_string());
    assert_eq!(case_status(), "active");
    assert_eq!(after_plan("kind=emergency"), json!([{"hospital_id": x.hospital, "free_beds": 1}]));
    // The bed is free again; a second stay ends in death and closes the case.
    let id2 = request(&app, &x, &x.doctor, "emergency", &[]).id();
    accept(&app, &x, &id2, &b, Utc::now(), Utc::now() + Duration::days(5)).assert(200);
    app.post(&format!("/api/v1/bed-requests/{id2}/admit"), &x.manager, &json!({})).assert(200);
    app.post(&format!("/api/v1/bed-requests/{id2}/discharge"), &x.manager, &json!({"disposition": "died"})).assert(200);
    let case = app.get(&format!("/api/v1/cases/{}", x.w.case), &x.w.coordinator);
    assert_eq!(
        (case.body["status"].as_str(), case.body["close_reason"].as_str()),
        (Some("closed"), Some("died_in_hospital"))
    );
}

#[test]
fn a_decline_names_alternatives_and_one_call_retargets() {
    let app = spawn_app();
    let x = ward(&app);
    let (kanda, kanda_manager) = hospital(&app, "神田病院");
    let kb = app.post(
        &format!("/api/v1/organizations/{kanda}/beds"),
        &kanda_manager,
        &json!({"ward": "2F", "label": "201", "kinds": ["emergency"], "tags": ["oxygen"]}),
    );
    kb.assert(201);
    let id = request(&app, &x, &x.doctor, "emergency", &["oxygen"]).id();
    let p = format!("/api/v1/bed-requests/{id}");
    app.post(&format!("{p}/decline"), &x.manager, &json!({})).assert_problem(400, "validation_failed");
    app.post(&format!("{p}/decline"), &x.manager, &json!({"reason_code": "busy"}))
        .assert_problem(400, "validation_failed");
    app.post(&format!("{p}/retarget"), &x.doctor, &json!({"hospital_id": kanda}))
        .assert_problem(409, "invalid_transition");
    let declined =
        app.post(&format!("{p}/decline"), &x.manager, &json!({"reason_code": "oxygen", "note": "酸素配管工事中"}));
    declined.assert(200);
    assert_eq!(declined.body["decline_reason"], "oxygen");
    assert_eq!(declined.body["alternatives"], json!([{"hospital_id": kanda, "free_beds": 1}]));
    let nurse = app.as_practitioner(&x.w.nurse, &x.w.clinic, &["nurse"]);
    app.post(&format!("{p}/retarget"), &nurse, &json!({"hospital_id": kanda})).assert_problem(404, "not_found");
    let next = app.post(&format!("{p}/retarget"), &x.doctor, &json!({"hospital_id": kanda}));
    next.assert(201);
    assert_eq!(
        (next.body["status"].as_str(), next.body["previous_request_id"].as_str()),
        (Some("pending"), Some(id.as_str()))
    );
    assert_eq!(next.body["hospital_id"], kanda.as_str());
    app.post(&format!("{p}/retarget"), &x.doctor, &json!({"hospital_id": kanda}))
        .assert_problem(409, "already_retargeted");
    // Kanda sees the new request, not the first; Chiyoda sees the first, not the new one.
    app.get(&format!("/api/v1/bed-requests/{}", next.id()), &kanda_manager).assert(200);
    app.get(&p, &kanda_manager).assert_problem(404, "not_found");
    app.get(&format!("/api/v1/bed-requests/{}", next.id()), &x.manager).assert_problem(404, "not_found");
    let listed = app.get(&format!("/api/v1/bed-requests?case_id={}", x.w.case), &x.w.coordinator);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
    app.get("/api/v1/bed-requests", &app.token_for(&x.w.base, &["municipal_viewer"])).assert_problem(403, "forbidden");
    app.get("/api/v1/bed-requests?status=lost", &x.manager).assert_problem(400, "validation_failed");
}

#[test]
fn the_sweeper_expires_unanswered_requests_once_across_instances() {
    let app = spawn_app();
    let x = ward(&app);
    let emergency = request(&app, &x, &x.doctor, "emergency", &[]).id();
    let urgent = request(&app, &x, &x.doctor, "urgent", &[]).id();
    let config = test_config(&app.db);
    let expired: Vec<usize> = actix_web::rt::System::new().block_on(async {
        // Two instances sweeping the same database at the same controlled instant: 31 minutes on.
        let (one, two) = (renkei::db::Db::connect(&config.db).unwrap(), renkei::db::Db::connect(&config.db).unwrap());
        let at = Utc::now() + Duration::minutes(31);
        let (a, b) = tokio::join!(
            renkei::api::bed_requests::expire_due(&one, config.audit_key.clone(), at),
            renkei::api::bed_requests::expire_due(&two, config.audit_key.clone(), at)
        );
        vec![a.unwrap(), b.unwrap()]
    });
    assert_eq!(expired.iter().sum::<usize>(), 1, "the emergency request expired once: {expired:?}");
    let e = app.get(&format!("/api/v1/bed-requests/{emergency}"), &x.doctor);
    assert_eq!(e.body["status"], "expired");
    assert_eq!(e.body["alternatives"], json!([]));
    assert_eq!(app.get(&format!("/api/v1/bed-requests/{urgent}"), &x.doctor).body["status"], "pending");
    app.post(&format!("/api/v1/bed-requests/{emergency}/decline"), &x.manager, &json!({"reason_code": "other"}))
        .assert_problem(409, "invalid_transition");
    let auditor = app.token_for(&app.admin_org, &["auditor"]);
    let log = app.get(&format!("/api/v1/audit-events?patient_id={}", x.w.patient), &auditor);
    let sweeps: Vec<&Value> =
        log.body["items"].as_array().unwrap().iter().filter(|e| e["action"] == "bed_request.expire").collect();
    assert_eq!(sweeps.len(), 1);
    assert_eq!(sweeps[0]["actor_sub"], "system:bed-sweeper");
    let verify = app.get("/api/v1/audit-events/verify", &auditor);
    assert_eq!(verify.body["intact"], true, "{}", verify.text);
}

#[test]
fn answers_are_refused_to_others_late_or_in_the_wrong_state() {
    let app = spawn_app();
    let x = ward(&app);
    let b = bed(&app, &x, "801", &["emergency", "urgent"], &[]);
    let (_, other_manager) = hospital(&app, "神田病院");
    let id = request(&app, &x, &x.doctor, "emergency", &[]).id();
    let p = |verb: &str| format!("/api/v1/bed-requests/{id}/{verb}");
    app.post(&p("decline"), &x.doctor, &json!({"reason_code": "other"})).assert_problem(403, "forbidden");
    app.post(&p("decline"), &other_manager, &json!({"reason_code": "other"})).assert_problem(404, "not_found");
    app.post(&p("admit"), &other_manager, &json!({})).assert_problem(404, "not_found");
    let secondary = app.as_practitioner(&x.w.doctors[1], &x.w.clinic, &["physician"]);
    app.post(&p("cancel"), &secondary, &json!({})).assert_problem(403, "forbidden");
    // Too late: the answer was due already (the sweeper has not run yet).
    app.db.raw(&format!("UPDATE bed_requests SET response_due_at = '2026-01-01 00:00:00' WHERE id = '{id}'")).unwrap();
    accept(&app, &x, &id, &b, hour(), hour() + Duration::days(1)).assert_problem(409, "request_expired");
    app.post(&p("decline"), &x.manager, &json!({"reason_code": "other"})).assert_problem(409, "request_expired");
    // A closed bed is not given.
    let id2 = request(&app, &x, &x.doctor, "urgent", &[]).id();
    let bed_path = format!("/api/v1/organizations/{}/beds/{b}", x.hospital);
    app.patch(&bed_path, &x.manager, "\"1\"", &json!({"status": "closed"})).assert(200);
    accept(&app, &x, &id2, &b, hour(), hour() + Duration::days(1)).assert_problem(409, "bed_unavailable");
    app.post(&format!("/api/v1/bed-requests/{id2}/discharge"), &x.manager, &json!({"disposition": "home"}))
        .assert_problem(409, "invalid_transition");
    let declined = app.post(
        &format!("/api/v1/bed-requests/{id2}/decline"),
        &x.manager,
        &json!({"reason_code": "no_bed_available"}),
    );
    declined.assert(200);
    app.post(&format!("/api/v1/bed-requests/{id2}/cancel"), &x.doctor, &json!({}))
        .assert_problem(409, "invalid_transition");
    // The hospital sees the declined request but may not send it elsewhere.
    app.post(&format!("/api/v1/bed-requests/{id2}/retarget"), &x.manager, &json!({"hospital_id": x.hospital}))
        .assert_problem(403, "forbidden");
}

#[test]
fn a_declined_request_is_retargeted_once_even_under_a_race() {
    let app = Arc::new(spawn_app());
    let x = Arc::new(ward(&app));
    let (kanda, _) = hospital(&app, "神田病院");
    let id = request(&app, &x, &x.doctor, "urgent", &[]).id();
    app.post(&format!("/api/v1/bed-requests/{id}/decline"), &x.manager, &json!({"reason_code": "dementia"}))
        .assert(200);
    let (a, xx, idd, k) = (app.clone(), x.clone(), id.clone(), kanda.clone());
    let results = race(8, move |_| {
        a.post(&format!("/api/v1/bed-requests/{idd}/retarget"), &xx.doctor, &json!({"hospital_id": k})).status
    });
    assert_eq!(results.iter().filter(|s| **s == 201).count(), 1, "{results:?}");
    assert!(results.iter().all(|s| *s == 201 || *s == 409), "{results:?}");
}

#[test]
fn closing_the_case_gives_its_beds_back() {
    let app = spawn_app();
    let x = ward(&app);
    let b = bed(&app, &x, "901", &["urgent"], &[]);
    let id = request(&app, &x, &x.doctor, "urgent", &[]).id();
    let (from, to) = (hour(), hour() + Duration::days(2));
    accept(&app, &x, &id, &b, from, to).assert(200);
    let pending = request(&app, &x, &x.doctor, "urgent", &[]).id();
    app.post(&format!("/api/v1/cases/{}/close", x.w.case), &x.w.coordinator, &json!({"reason": "moved"})).assert(200);
    for r in [&id, &pending] {
        assert_eq!(app.get(&format!("/api/v1/bed-requests/{r}"), &x.w.coordinator).body["status"], "cancelled");
    }
    let avail = app.get(&format!("/api/v1/bed-availability?kind=urgent&from={}&to={}", iso(from), iso(to)), &x.doctor);
    assert_eq!(avail.body["items"][0]["free_beds"], 1);
}

#[test]
fn discharge_to_long_term_care_or_a_move_closes_the_case_with_its_reason() {
    for (disposition, reason) in [("long_term_admission", "long_term_admission"), ("moved", "moved")] {
        let app = spawn_app();
        let x = ward(&app);
        let b = bed(&app, &x, "950", &["urgent"], &[]);
        let id = request(&app, &x, &x.doctor, "urgent", &[]).id();
        accept(&app, &x, &id, &b, Utc::now(), Utc::now() + Duration::days(3)).assert(200);
        app.post(&format!("/api/v1/bed-requests/{id}/admit"), &x.manager, &json!({})).assert(200);
        let d =
            app.post(&format!("/api/v1/bed-requests/{id}/discharge"), &x.manager, &json!({"disposition": disposition}));
        d.assert(200);
        assert_eq!(d.body["disposition"], disposition);
        let case = app.get(&format!("/api/v1/cases/{}", x.w.case), &x.w.coordinator);
        assert_eq!((case.body["status"].as_str(), case.body["close_reason"].as_str()), (Some("closed"), Some(reason)));
    }
}

/// A reader who sees bed requests two ways (managed here, on a team elsewhere) pages through
/// them one at a time: each once, in order (one query per way, merged).
#[test]
fn a_reader_seeing_two_ways_pages_through_bed_requests_once_each() {
    let app = spawn_app();
    let x = ward(&app);
    let here = request(&app, &x, &x.doctor, "emergency", &[]);
    here.assert(201);
    let (case, doctor, both) = app.case_elsewhere_on_the_nurses_team(&x.w);
    let there = app.post(
        "/api/v1/bed-requests",
        &doctor,
        &json!({"case_id": case, "kind": "urgent", "hospital_id": x.hospital, "needs": [], "reason": "発熱"}),
    );
    there.assert(201);
    let mut expected = vec![here.id(), there.id()];
    expected.sort();
    assert_eq!(app.page_through("/api/v1/bed-requests", &both), expected);
    assert_eq!(app.ids_of(&app.get("/api/v1/bed-requests?limit=10", &both)), expected, "one page: each once");
}

/// A request is read by the hospital it is addressed to, its requester, the case's team and the
/// case's base; by no one else (each way of seeing is tested on the row read by id).
#[test]
fn a_request_is_read_by_its_hospital_requester_team_and_base_only() {
    let app = spawn_app();
    let x = ward(&app);
    let id = request(&app, &x, &x.doctor, "emergency", &[]).id();
    app.post(
        &format!("/api/v1/cases/{}/care-team", x.w.case),
        &x.w.coordinator,
        &json!({"practitioner_id": x.w.nurse, "role": "visiting_nurse"}),
    )
    .assert(201);
    let nurse = app.as_practitioner(&x.w.nurse, &x.w.clinic, &["nurse"]);
    let secondary = app.as_practitioner(&x.w.doctors[1], &x.w.clinic, &["physician"]);
    let path = format!("/api/v1/bed-requests/{id}");
    for (who, token) in [
        ("the hospital's bed manager", &x.manager),
        ("the requester", &x.doctor),
        ("a team member who did not ask", &secondary),
        ("a nurse of the team", &nurse),
        ("the base's coordinator", &x.w.coordinator),
    ] {
        assert_eq!(app.get(&path, token).status, 200, "{who} reads the request");
    }
    let (_, other_manager) = hospital(&app, "神田病院");
    let (_, other_coordinator) = app.other_base("港区医師会", "131032");
    let off_team = app.as_practitioner(&x.w.doctors[2], &x.w.clinic, &["physician"]);
    let stranger = app.physician(&x.w.clinic, "高橋 四郎", "タカハシ シロウ", "200004");
    let elsewhere = app.world_for_new_patient(&x.w);
    app.handover(&x.w.coordinator, &elsewhere.case, "primary", &stranger, None).assert(200);
    let doctor_elsewhere = app.as_practitioner(&stranger, &x.w.clinic, &["physician"]);
    for (who, token) in [
        ("another hospital's bed manager", &other_manager),
        ("another base's coordinator", &other_coordinator),
        ("a physician of the clinic off the team", &off_team),
        ("a physician of another case's team", &doctor_elsewhere),
    ] {
        assert_eq!(app.get(&path, token).status, 404, "{who} does not read the request");
        let decline = app.post(&format!("{path}/decline"), token, &json!({"reason_code": "other"}));
        assert_eq!(decline.status, 404, "{who} may not even learn that the request exists");
    }
}

/// Each answer writes its own fields and keeps those of the earlier ones: the hospital's answer
/// survives the admission and the discharge; a decline keeps its reason and note.
#[test]
fn each_answer_keeps_what_the_earlier_answers_wrote() {
    let app = spawn_app();
    let x = ward(&app);
    let b = bed(&app, &x, "901", &["emergency"], &[]);
    let id = request(&app, &x, &x.doctor, "emergency", &[]).id();
    let p = |verb: &str| format!("/api/v1/bed-requests/{id}/{verb}");
    let accepted = accept(&app, &x, &id, &b, Utc::now(), Utc::now() + Duration::days(2));
    accepted.assert(200);
    let answer = |r: &Resp| (r.body["answered_by"].clone(), r.body["answered_at"].clone());
    let given = answer(&accepted);
    assert!(given.0.is_string() && given.1.is_string(), "an accept records who answered and when");
    assert_eq!((&accepted.body["decline_reason"], &accepted.body["disposition"]), (&Value::Null, &Value::Null));
    let admitted = app.post(&p("admit"), &x.manager, &json!({}));
    admitted.assert(200);
    assert_eq!(answer(&admitted), given, "the admission keeps the answer");
    let discharged = app.post(&p("discharge"), &x.manager, &json!({"disposition": "home"}));
    discharged.assert(200);
    assert_eq!(answer(&discharged), given, "the discharge keeps the answer");
    assert_eq!(discharged.body["disposition"], "home");
    assert_eq!(app.get(&format!("/api/v1/bed-requests/{id}"), &x.doctor).body["answered_at"], given.1);

    let other = request(&app, &x, &x.doctor, "emergency", &[]).id();
    let declined = app.post(
        &format!("/api/v1/bed-requests/{other}/decline"),
        &x.manager,
        &json!({"reason_code": "no_bed_available", "note": "満床"}),
    );
    declined.assert(200);
    assert_eq!(
        (&declined.body["decline_reason"], &declined.body["decline_note"], &declined.body["disposition"]),
        (&json!("no_bed_available"), &json!("満床"), &Value::Null)
    );
    assert!(declined.body["answered_by"].is_string() && declined.body["answered_at"].is_string());
    let cancelled = app.post(&format!("/api/v1/bed-requests/{other}/cancel"), &x.doctor, &json!({}));
    cancelled.assert_problem(409, "invalid_transition");
}

/// Availability looks at each bed's live bookings: a bed booked for a later or an adjacent period
/// is free, one booked for an overlapping period is not, and a cancelled booking frees its bed.
#[test]
fn availability_counts_a_bed_free_around_its_bookings() {
    let app = spawn_app();
    let x = ward(&app);
    let booked = bed(&app, &x, "A1", &["emergency"], &[]);
    let cancelled = bed(&app, &x, "A2", &["emergency"], &[]);
    bed(&app, &x, "A3", &["emergency"], &[]);
    let day = |n: i64| hour() + Duration::days(n);
    let id = request(&app, &x, &x.doctor, "emergency", &[]).id();
    accept(&app, &x, &id, &booked, day(2), day(4)).assert(200);
    let id2 = request(&app, &x, &x.doctor, "emergency", &[]).id();
    accept(&app, &x, &id2, &cancelled, day(2), day(4)).assert(200);
    let free = |from: DateTime<Utc>, to: DateTime<Utc>| {
        let q = format!("/api/v1/bed-availability?kind=emergency&from={}&to={}", iso(from), iso(to));
        app.get(&q, &x.doctor).body["items"][0]["free_beds"].as_i64().unwrap_or(0)
    };
    assert_eq!(free(day(0), day(2)), 3, "ending as the bookings start: every bed");
    assert_eq!(free(day(1), day(3)), 1, "overlapping the bookings' start");
    assert_eq!(free(day(3), day(5)), 1, "overlapping their end");
    assert_eq!(free(day(4), day(6)), 3, "starting as they end: every bed");
    app.post(&format!("/api/v1/bed-requests/{id2}/cancel"), &x.doctor, &json!({})).assert(200);
    assert_eq!(free(day(1), day(3)), 2, "a cancelled booking frees its bed");
}
