//! Absences and on-call rosters: who may keep them, and their refusals.

use serde_json::json;

use crate::helpers::spawn_app;

const FROM: &str = "2030-04-01T09:00:00+09:00";
const TO: &str = "2030-04-03T09:00:00+09:00";

#[test]
fn practitioners_keep_their_own_absences_and_their_coordinators_may_too() {
    let app = spawn_app();
    let clinic = app.clinic("A");
    let doctor = app.physician(&clinic, "山田 太郎", "ヤマダ タロウ", "400001");
    let colleague = app.physician(&clinic, "佐藤 次郎", "サトウ ジロウ", "400002");
    let path = format!("/api/v1/practitioners/{doctor}/absences");
    let own = app.as_practitioner(&doctor, &clinic, &["physician"]);
    let r = app.post(&path, &own, &json!({"starts_at": FROM, "ends_at": TO, "reason": "学会"}));
    r.assert(201);
    assert_eq!(r.body["starts_at"], "2030-04-01T00:00:00Z");
    let absence = r.id();
    let other = app.as_practitioner(&colleague, &clinic, &["physician"]);
    app.post(&path, &other, &json!({"starts_at": FROM, "ends_at": TO})).assert_problem(403, "forbidden");
    app.post(&path, &app.coordinator_of(&clinic), &json!({"starts_at": FROM, "ends_at": TO})).assert(201);
    app.post(&path, &app.coordinator_of(&app.clinic("B")), &json!({"starts_at": FROM, "ends_at": TO}))
        .assert_problem(403, "forbidden");
    let list = app.get(&format!("{path}?from=2030-04-02T00:00:00Z&to=2030-04-02T01:00:00Z"), &other);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    let list = app.get(&format!("{path}?from=2030-04-03T00:00:00Z"), &other);
    assert_eq!(list.body["items"], json!([]), "half-open: an absence ending at `from` is not listed");
    app.request("DELETE", &format!("{path}/{absence}"), Some(&other), &[], None).assert_problem(403, "forbidden");
    app.request("DELETE", &format!("{path}/{absence}"), Some(&own), &[], None).assert(204);
    app.request("DELETE", &format!("{path}/{absence}"), Some(&own), &[], None).assert_problem(404, "not_found");
    assert_eq!(app.get(&path, &own).body["items"].as_array().unwrap().len(), 1);
}

#[test]
fn absences_need_an_ordered_bounded_period() {
    let app = spawn_app();
    let clinic = app.clinic("A");
    let doctor = app.physician(&clinic, "山田 太郎", "ヤマダ タロウ", "400001");
    let own = app.as_practitioner(&doctor, &clinic, &["physician"]);
    let path = format!("/api/v1/practitioners/{doctor}/absences");
    let r = app.post(&path, &own, &json!({"starts_at": TO, "ends_at": FROM}));
    assert_eq!(r.field_errors(), [("ends_at".to_owned(), "invalid_period".to_owned())]);
    let r = app.post(&path, &own, &json!({"starts_at": "tomorrow"}));
    assert_eq!(r.field_errors().len(), 2);
    app.post(&path, &own, &json!({"starts_at": FROM, "ends_at": "2032-04-01T00:00:00Z"}))
        .assert_problem(400, "validation_failed");
    app.post(
        &format!("/api/v1/practitioners/{}/absences", uuid::Uuid::now_v7()),
        &app.admin(),
        &json!({"starts_at": FROM, "ends_at": TO}),
    )
    .assert_problem(404, "not_found");
    app.get(&format!("{path}?from=soon"), &own).assert_problem(400, "validation_failed");
}

#[test]
fn on_call_rosters_are_kept_by_their_organization_for_active_physicians() {
    let app = spawn_app();
    let base = app.clinic("拠点");
    let clinic = app.clinic("A");
    let doctor = app.physician(&clinic, "山田 太郎", "ヤマダ タロウ", "400001");
    let nurse = app
        .post(
            "/api/v1/practitioners",
            &app.admin(),
            &json!({"organization_id": clinic, "name": "高橋 看子", "kana": "タカハシ ミコ", "profession": "nurse"}),
        )
        .id();
    let path = format!("/api/v1/organizations/{base}/on-call-shifts");
    let coordinator = app.coordinator_of(&base);
    let r = app.post(
        &path,
        &coordinator,
        &json!({"practitioner_id": doctor, "starts_at": FROM, "ends_at": "2030-04-02T09:00:00+09:00"}),
    );
    r.assert(201);
    let shift = r.id();
    let r = app.post(&path, &coordinator, &json!({"practitioner_id": nurse, "starts_at": FROM, "ends_at": TO}));
    assert_eq!(r.field_errors()[0].1, "not_a_physician");
    let r = app.post(
        &path,
        &coordinator,
        &json!({"practitioner_id": doctor, "starts_at": FROM, "ends_at": "2030-04-20T00:00:00Z"}),
    );
    assert_eq!(r.field_errors()[0], ("ends_at".to_owned(), "invalid_period".to_owned()));
    app.post(
        &path,
        &app.coordinator_of(&clinic),
        &json!({"practitioner_id": doctor, "starts_at": FROM, "ends_at": TO}),
    )
    .assert_problem(403, "forbidden");
    app.post(&format!("/api/v1/organizations/{}/on-call-shifts", uuid::Uuid::now_v7()), &coordinator, &json!({}))
        .assert_problem(404, "not_found");
    let list = app.get(&path, &app.token_for(&clinic, &["nurse"]));
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    app.request("DELETE", &format!("{path}/{shift}"), Some(&app.coordinator_of(&clinic)), &[], None)
        .assert_problem(403, "forbidden");
    app.request("DELETE", &format!("{path}/{shift}"), Some(&coordinator), &[], None).assert(204);
    assert_eq!(app.get(&path, &coordinator).body["items"], json!([]));
}

#[test]
fn absences_and_shifts_can_be_read_where_their_location_points() {
    let app = spawn_app();
    let clinic = app.clinic("A");
    let doctor = app.physician(&clinic, "山田 太郎", "ヤマダ タロウ", "400001");
    let own = app.as_practitioner(&doctor, &clinic, &["physician"]);
    let r =
        app.post(&format!("/api/v1/practitioners/{doctor}/absences"), &own, &json!({"starts_at": FROM, "ends_at": TO}));
    let got = app.get(r.header("location").unwrap(), &own);
    got.assert(200);
    assert_eq!(got.body, r.body);
    let coordinator = app.coordinator_of(&clinic);
    let r = app.post(
        &format!("/api/v1/organizations/{clinic}/on-call-shifts"),
        &coordinator,
        &json!({"practitioner_id": doctor, "starts_at": FROM, "ends_at": TO}),
    );
    let location = r.header("location").unwrap().to_owned();
    assert_eq!(app.get(&location, &own).body, r.body);
    app.request("DELETE", &location, Some(&coordinator), &[], None).assert(204);
    app.get(&location, &own).assert_problem(404, "not_found");
}
