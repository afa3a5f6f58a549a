//! `/api/v1/patients`: registration, validation, scoped search and reads, patches.

use serde_json::json;

use crate::helpers::{race, spawn_app};
use crate::organizations::url_encode;

#[test]
fn a_coordinator_registers_a_patient_with_everything_disaster_planning_needs() {
    let app = spawn_app();
    let base = app.clinic("拠点");
    let coordinator = app.coordinator_of(&base);
    let r = app.post(
        "/api/v1/patients",
        &coordinator,
        &json!({"name": "田中 花子", "kana": "たなか はなこ", "birth_date": "1938-05-12", "sex": "female",
                "municipality_code": "131016", "postal_code": "1000001", "address": "東京都千代田区千代田1-1",
                "phone": "03-1111-2222", "care_level": "care_3",
                "key_person": {"name": "田中 一子", "relation": "長女", "phone": "090-1111-2222"},
                "devices": ["oxygen", "ventilator"], "consent": {"information_sharing": true, "disaster_registry": true}}),
    );
    r.assert(201);
    assert_eq!(r.body["kana"], "タナカ ハナコ");
    assert_eq!(r.body["care_level"], "care_3");
    assert_eq!(r.body["devices"], json!(["ventilator", "oxygen"]));
    assert_eq!(r.body["registered_by"], base);
    assert_eq!(r.header("location"), Some(format!("/api/v1/patients/{}", r.id()).as_str()));
    let got = app.get(&format!("/api/v1/patients/{}", r.id()), &coordinator);
    got.assert(200);
    assert_eq!(got.body, r.body);
}

#[test]
fn registration_reports_every_bad_field_and_stores_nothing() {
    let app = spawn_app();
    let coordinator = app.coordinator_of(&app.clinic("拠点"));
    let r = app.post(
        "/api/v1/patients",
        &coordinator,
        &json!({"name": "田中 花子", "kana": "Tanaka", "birth_date": "2999-01-01", "sex": "x",
                "municipality_code": "131017", "care_level": "care_6", "devices": ["toaster"],
                "key_person": {"name": "", "relation": "長女"}}),
    );
    r.assert_problem(400, "validation_failed");
    let fields: Vec<String> = r.field_errors().into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        ["kana", "birth_date", "sex", "municipality_code", "care_level", "key_person.name", "devices[0]"],
        "{}",
        r.text
    );
    let r = app.post("/api/v1/patients", &coordinator, &json!({"name": "x", "key_person": {"nickname": "y"}}));
    r.assert_problem(400, "validation_failed");
    assert_eq!(app.get("/api/v1/patients", &coordinator).body["items"], json!([]));
}

#[test]
fn only_coordinators_register_patients() {
    let app = spawn_app();
    let org = app.clinic("A");
    for role in ["physician", "nurse", "municipal_viewer", "hospital_bed_manager", "auditor"] {
        let r = app.post(
            "/api/v1/patients",
            &app.token_for(&org, &[role]),
            &json!({"name": "x", "kana": "エックス", "birth_date": "1940-01-01", "sex": "male", "municipality_code": "131016"}),
        );
        r.assert_problem(403, "forbidden");
    }
    app.request("POST", "/api/v1/patients", None, &[], Some("{}")).assert_problem(401, "missing_token");
}

#[test]
fn patients_are_invisible_outside_their_organization_and_teams() {
    let app = spawn_app();
    let w = app.world();
    let other_base = app.clinic("別の拠点");
    let stranger = app.coordinator_of(&other_base);
    let path = format!("/api/v1/patients/{}", w.patient);
    app.get(&path, &stranger).assert_problem(404, "not_found");
    assert_eq!(app.get("/api/v1/patients", &stranger).body["items"], json!([]));
    // A physician sees the patient only while on the team.
    let doctor = app.as_practitioner(&w.doctors[0], &w.clinic, &["physician"]);
    app.get(&path, &doctor).assert_problem(404, "not_found");
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    app.get(&path, &doctor).assert(200);
    assert_eq!(app.get("/api/v1/patients", &doctor).body["items"].as_array().unwrap().len(), 1);
    // Roles without patient data get a plain refusal on lists.
    app.get("/api/v1/patients", &app.token_for(&w.base, &["municipal_viewer"])).assert_problem(403, "forbidden");
    app.get(&path, &app.token_for(&w.base, &["municipal_viewer"])).assert_problem(404, "not_found");
}

#[test]
fn search_by_name_reading_and_birth_date() {
    let app = spawn_app();
    let coordinator = app.coordinator_of(&app.clinic("拠点"));
    app.register_patient(&coordinator, "田中 花子", "タナカ ハナコ");
    app.post(
        "/api/v1/patients",
        &coordinator,
        &json!({"name": "田中 次郎", "kana": "タナカ ジロウ", "birth_date": "1941-02-03", "sex": "male", "municipality_code": "131016"}),
    )
    .assert(201);
    let names = |query: &str| -> Vec<String> {
        let r = app.get(&format!("/api/v1/patients{query}"), &coordinator);
        r.assert(200);
        r.body["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&format!("?q={}", url_encode("たなか"))), ["田中 花子", "田中 次郎"]);
    assert_eq!(names(&format!("?q={}", url_encode("ハナコ"))), ["田中 花子"]);
    assert_eq!(names(&format!("?q={}&birth_date=1941-02-03", url_encode("田中"))), ["田中 次郎"]);
    app.get("/api/v1/patients?birth_date=1941-13-01", &coordinator).assert_problem(400, "validation_failed");
    // One character is below the index's pairs: found all the same.
    assert_eq!(names(&format!("?q={}", url_encode("郎"))), ["田中 次郎"]);
    // A key whose pairs all occur, but not together, is not a match.
    assert_eq!(names(&format!("?q={}", url_encode("なかた"))), Vec::<String>::new());
}

#[test]
fn a_renamed_patient_is_found_by_the_new_name_only() {
    let app = spawn_app();
    let w = app.world();
    app.rename_patient(&w.coordinator, &w.patient, "改名 太郎", "カイメイ タロウ");
    let found = |q: &str| app.search_patients(&w.coordinator, q).len();
    assert_eq!(found("かいめい"), 1, "the search index follows the change");
    assert_eq!(found("改名"), 1);
    assert_eq!(found("はなこ"), 0, "nor by the old one");
}

/// A search of a base's coordinator starts from the base's own pair index: a patient registered
/// elsewhere enters it when a case managed by the base opens, and follows a rename there too.
#[test]
fn a_base_finds_the_patients_of_the_cases_it_manages_by_name() {
    let app = spawn_app();
    let w = app.world();
    let (other, other_coordinator) = app.other_base("隣の拠点", "131016");
    let patient = app.register_patient(&w.coordinator, "検索 花子", "ケンサク ハナコ");
    // The other base's coordinator who nurses the patient on this base's team opens a case there.
    let case = app.open_case(&w.coordinator, &patient, &w.base);
    app.join_as_nurse(&w.coordinator, &case, &w.nurse);
    let bridge = app.as_practitioner(&w.nurse, &other, &["nurse", "coordinator"]);
    let found = |token: &str, q: &str| app.search_patients(token, q);
    assert_eq!(found(&other_coordinator, "けんさく"), Vec::<String>::new(), "not the other base's patient yet");
    let elsewhere = app.open_case(&bridge, &patient, &other);
    assert_eq!(found(&other_coordinator, "けんさく"), vec![patient.clone()], "the managing base's index has it");
    assert_eq!(found(&other_coordinator, "検"), vec![patient.clone()], "a one-character key too");
    assert_eq!(found(&w.coordinator, "けんさく"), vec![patient.clone()], "and the registering base still does");

    // The base still sees the patient of a case it cancelled, and still finds it.
    app.post(&format!("/api/v1/cases/{elsewhere}/cancel"), &other_coordinator, &json!({})).assert(200);
    assert_eq!(found(&other_coordinator, "けんさく"), vec![patient.clone()], "a closed case keeps it found");
    app.rename_patient(&w.coordinator, &patient, "改名 花子", "カイメイ ハナコ");
    assert_eq!(found(&other_coordinator, "かいめい"), vec![patient.clone()], "the rename reaches every base's index");
    assert_eq!(found(&other_coordinator, "けんさく"), Vec::<String>::new());
    assert_eq!(found(&w.coordinator, "かいめい"), vec![patient.clone()]);
}

/// A physician's search starts from the physician's teams: patients of the team are found, the
/// base's other patients are not.
#[test]
fn a_physician_finds_the_patients_of_their_teams_by_name() {
    let app = spawn_app();
    let w = app.world();
    let other = app.register_patient(&w.coordinator, "鈴木 花子", "スズキ ハナコ");
    app.open_case(&w.coordinator, &other, &w.base);
    let doctor = app.as_practitioner(&w.doctors[0], &w.clinic, &["physician"]);
    let found = |q: &str| app.search_patients(&doctor, q).len();
    assert_eq!(found("はなこ"), 0, "on no team yet");
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    assert_eq!(found("はなこ"), 1, "the team's patient only, not the base's other Hanako");
    assert_eq!(found("たなか"), 1);
    assert_eq!(found("すずき"), 0);
}

/// Renames and case openings at another base, all at once: whichever commits first, the other
/// base's index ends with the new name (on PostgreSQL the case locks the patient's row first).
#[test]
fn a_rename_racing_a_case_opening_elsewhere_leaves_the_new_name_indexed() {
    let app = std::sync::Arc::new(spawn_app());
    let w = app.world();
    let (other, other_coordinator) = app.other_base("隣の拠点", "131016");
    const N: usize = 8;
    let patients: Vec<String> = (0..N)
        .map(|i| {
            let patient = app.register_patient(&w.coordinator, &format!("旧姓 {i}"), "キュウセイ ハナコ");
            let case = app.open_case(&w.coordinator, &patient, &w.base);
            app.join_as_nurse(&w.coordinator, &case, &w.nurse);
            patient
        })
        .collect();
    let bridge = app.as_practitioner(&w.nurse, &other, &["nurse", "coordinator"]);
    let (a, ps, coordinator) = (app.clone(), patients.clone(), w.coordinator.clone());
    let statuses = race(2 * N, move |i| {
        let patient = &ps[i / 2];
        if i % 2 == 0 {
            let r = a.patch(
                &format!("/api/v1/patients/{patient}"),
                &coordinator,
                "\"1\"",
                &json!({"name": format!("新姓 {}", i / 2), "kana": "シンセイ ハナコ"}),
            );
            r.status
        } else {
            a.post("/api/v1/cases", &bridge, &json!({"patient_id": patient, "managing_organization_id": other})).status
        }
    });
    assert!(statuses.iter().enumerate().all(|(i, s)| *s == if i % 2 == 0 { 200 } else { 201 }), "{statuses:?}");
    let mut found = app.search_patients(&other_coordinator, "しんせい");
    found.sort();
    let mut expected = patients.clone();
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(app.search_patients(&other_coordinator, "きゅうせい"), Vec::<String>::new());
}

#[test]
fn patch_needs_if_match_and_the_right_role() {
    let app = spawn_app();
    let w = app.world();
    let path = format!("/api/v1/patients/{}", w.patient);
    app.request("PATCH", &path, Some(&w.coordinator), &[], Some("{\"phone\": \"03-9999-0000\"}"))
        .assert_problem(428, "precondition_required");
    let r = app.patch(&path, &w.coordinator, "\"1\"", &json!({"devices": ["suction"], "care_level": null}));
    r.assert(200);
    assert_eq!(r.body["devices"], json!(["suction"]));
    assert_eq!(r.body["version"], 2);
    app.patch(&path, &w.coordinator, "\"1\"", &json!({"phone": "03-9999-0000"}))
        .assert_problem(412, "version_mismatch");
    app.patch(&path, &w.coordinator, "\"2\"", &json!({"birth_date": null})).assert_problem(400, "validation_failed");
    // A team member sees the patient but does not change their record.
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    let doctor = app.as_practitioner(&w.doctors[0], &w.clinic, &["physician"]);
    app.patch(&path, &doctor, "\"2\"", &json!({"phone": "03-9999-0000"})).assert_problem(403, "forbidden");
    // Someone else's patient is not found, not forbidden.
    let stranger = app.coordinator_of(&app.clinic("別の拠点"));
    app.patch(&path, &stranger, "\"2\"", &json!({"phone": "03-9999-0000"})).assert_problem(404, "not_found");
}

/// A reader who sees a patient two ways (managed here and on its team) finds it once; a patient
/// seen only from a team elsewhere is found through the team.
#[test]
fn a_reader_seeing_two_ways_finds_each_patient_once() {
    let app = spawn_app();
    let w = app.world();
    let (_, _, both) = app.case_elsewhere_on_the_nurses_team(&w);
    assert_eq!(app.search_patients(&both, "たなか"), vec![w.patient.clone()]);
    assert_eq!(app.search_patients(&both, "きむら").len(), 1);
}

/// Cases opening at once for one patient at two organizations that did not register it: each
/// organization ends with one open case, the others are refused as duplicates, and none fails
/// (on PostgreSQL each case locks the patient's row to index it; a lock that conflicted with
/// the case's own foreign-key lock deadlocked).
#[test]
fn cases_opening_at_once_at_two_organizations_for_one_patient_do_not_deadlock() {
    let app = std::sync::Arc::new(spawn_app());
    let w = app.world();
    let patient = app.register_patient(&w.coordinator, "同時 花子", "ドウジ ハナコ");
    let case = app.open_case(&w.coordinator, &patient, &w.base);
    app.join_as_nurse(&w.coordinator, &case, &w.nurse);
    let orgs: Vec<(String, String)> = ["北の拠点", "南の拠点"]
        .iter()
        .map(|name| {
            let (org, _) = app.other_base(name, "131016");
            let bridge = app.as_practitioner(&w.nurse, &org, &["nurse", "coordinator"]);
            (org, bridge)
        })
        .collect();
    let (a, p, o) = (app.clone(), patient.clone(), orgs.clone());
    let statuses = race(12, move |i| {
        let (org, token) = &o[i % 2];
        a.post("/api/v1/cases", token, &json!({"patient_id": p, "managing_organization_id": org})).status
    });
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 2, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    for (_, token) in &orgs {
        assert_eq!(app.search_patients(token, "どうじ"), vec![patient.clone()]);
    }
}
