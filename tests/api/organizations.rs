//! `/api/v1/organizations`: create, read, list, patch, and every refusal.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;

use crate::helpers::{race, spawn_app};

fn sakura() -> serde_json::Value {
    json!({
        "kind": "clinic",
        "name": "さくら在宅クリニック",
        "kana": "サクラザイタククリニック",
        "medical_institution_code": "1311234567",
        "municipality_code": "131016",
        "postal_code": "1000001",
        "address": "東京都千代田区千代田1-1",
        "phone": "03-1234-5678",
        "services": ["house_calls", "home_visit_care", "round_the_clock"]
    })
}

#[test]
fn admin_creates_and_everyone_reads_an_organization() {
    let app = spawn_app();
    let r = app.post("/api/v1/organizations", &app.admin(), &sakura());
    r.assert(201);
    let id = r.id();
    assert_eq!(r.header("location"), Some(format!("/api/v1/organizations/{id}").as_str()));
    assert_eq!(r.header("etag"), Some("\"1\""));
    assert_eq!(r.body["postal_code"], "100-0001");
    assert_eq!(r.body["services"], json!(["home_visit_care", "house_calls", "round_the_clock"]));
    assert!(r.body["created_at"].as_str().unwrap().ends_with('Z'));
    let nurse = app.token_for(&uuid::Uuid::now_v7().to_string(), &["nurse"]);
    let got = app.get(&format!("/api/v1/organizations/{id}"), &nurse);
    got.assert(200);
    assert_eq!(got.body, r.body);
    assert_eq!(got.header("etag"), Some("\"1\""));
}

#[test]
fn only_admins_write_the_directory() {
    let app = spawn_app();
    let org = app.clinic("A");
    for role in ["coordinator", "physician", "municipal_viewer", "auditor", "hospital_bed_manager"] {
        let token = app.token_for(&org, &[role]);
        app.post("/api/v1/organizations", &token, &sakura()).assert_problem(403, "forbidden");
        app.patch(&format!("/api/v1/organizations/{org}"), &token, "\"1\"", &json!({"name": "B"}))
            .assert_problem(403, "forbidden");
    }
    // A refused write with a bad body is still a 403: the role is checked first.
    let token = app.token_for(&org, &["nurse"]);
    app.request("POST", "/api/v1/organizations", Some(&token), &[], Some("{")).assert_problem(403, "forbidden");
    assert_eq!(app.get(&format!("/api/v1/organizations/{org}"), &app.admin()).body["name"], "A");
}

#[test]
fn every_invalid_field_is_reported_and_nothing_is_stored() {
    let app = spawn_app();
    let r = app.post(
        "/api/v1/organizations",
        &app.admin(),
        &json!({"kind": "spaceship", "municipality_code": "131017", "medical_institution_code": "12",
                "kana": "Sakura", "phone": "12", "services": ["flying"]}),
    );
    r.assert_problem(400, "validation_failed");
    let fields: HashSet<String> = r.field_errors().into_iter().map(|(f, _)| f).collect();
    let expected: HashSet<String> =
        ["kind", "name", "kana", "medical_institution_code", "municipality_code", "phone", "services[0]"]
            .into_iter()
            .map(String::from)
            .collect();
    assert_eq!(fields, expected, "{}", r.text);
    assert_eq!(app.get("/api/v1/organizations", &app.admin()).body["items"], json!([]));
}

#[test]
fn a_medical_institution_code_belongs_to_one_organization() {
    let app = spawn_app();
    let first = app.create_org(sakura());
    let mut second = sakura();
    second["name"] = json!("別のクリニック");
    let r = app.post("/api/v1/organizations", &app.admin(), &second);
    r.assert_problem(409, "duplicate_medical_institution_code");
    assert_eq!(r.body["existing_id"], first["id"]);
    // Moving the code onto another organization by PATCH is refused the same way.
    let other = app.clinic("C");
    let r = app.patch(
        &format!("/api/v1/organizations/{other}"),
        &app.admin(),
        "\"1\"",
        &json!({"medical_institution_code": "1311234567"}),
    );
    r.assert_problem(409, "duplicate_medical_institution_code");
}

#[test]
fn concurrent_registrations_of_one_code_make_one_organization() {
    let app = Arc::new(spawn_app());
    let a = app.clone();
    let statuses = race(10, move |i| {
        let mut body = sakura();
        body["name"] = json!(format!("クリニック{i}"));
        a.post("/api/v1/organizations", &a.admin(), &body).status
    });
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    let list = app.get("/api/v1/organizations", &app.admin());
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[test]
fn get_of_an_unknown_organization_is_404() {
    let app = spawn_app();
    let r = app.get(&format!("/api/v1/organizations/{}", uuid::Uuid::now_v7()), &app.admin());
    r.assert_problem(404, "not_found");
}

#[test]
fn patch_needs_a_current_if_match_and_bumps_the_version() {
    let app = spawn_app();
    let id = app.create_org(sakura())["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/organizations/{id}");
    let admin = app.admin();
    let no_precondition = app.request("PATCH", &path, Some(&admin), &[], Some(&json!({"name": "新名称"}).to_string()));
    no_precondition.assert_problem(428, "precondition_required");
    let r = app.patch(&path, &admin, "\"1\"", &json!({"name": "新名称", "phone": null, "services": ["backup_beds"]}));
    r.assert(200);
    assert_eq!(r.header("etag"), Some("\"2\""));
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["name"], "新名称");
    assert_eq!(r.body["phone"], json!(null));
    assert_eq!(r.body["address"], "東京都千代田区千代田1-1", "absent members are kept");
    let stale = app.patch(&path, &admin, "\"1\"", &json!({"name": "古い"}));
    stale.assert_problem(412, "version_mismatch");
    assert_eq!(stale.body["current_version"], 2);
    app.patch(&path, &admin, "*", &json!({"active": false})).assert(200);
    assert_eq!(app.get(&path, &admin).body["name"], "新名称");
}

#[test]
fn patch_refuses_bad_values_and_changes_nothing() {
    let app = spawn_app();
    let id = app.create_org(sakura())["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/organizations/{id}");
    let r = app.patch(&path, &app.admin(), "\"1\"", &json!({"name": null, "municipality_code": "999999", "kind": "x"}));
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.field_errors().len(), 3, "{}", r.text);
    app.patch(&path, &app.admin(), "\"1\"", &json!({"id": "x"})).assert_problem(400, "validation_failed");
    let after = app.get(&path, &app.admin());
    assert_eq!(after.body["version"], 1);
    assert_eq!(after.body["name"], "さくら在宅クリニック");
}

#[test]
fn a_patch_that_changes_nothing_keeps_the_version() {
    let app = spawn_app();
    let id = app.create_org(sakura())["id"].as_str().unwrap().to_owned();
    let r = app.patch(
        &format!("/api/v1/organizations/{id}"),
        &app.admin(),
        "\"1\"",
        &json!({"name": "さくら在宅クリニック"}),
    );
    r.assert(200);
    assert_eq!(r.body["version"], 1);
}

#[test]
fn patch_of_an_unknown_organization_is_404() {
    let app = spawn_app();
    let r = app.patch(
        &format!("/api/v1/organizations/{}", uuid::Uuid::now_v7()),
        &app.admin(),
        "\"1\"",
        &json!({"name": "x"}),
    );
    r.assert_problem(404, "not_found");
}

#[test]
fn concurrent_patches_with_one_etag_let_exactly_one_win() {
    let app = Arc::new(spawn_app());
    let id = app.create_org(sakura())["id"].as_str().unwrap().to_owned();
    let a = app.clone();
    let path = format!("/api/v1/organizations/{id}");
    let p = path.clone();
    let statuses = race(10, move |i| a.patch(&p, &a.admin(), "\"1\"", &json!({"name": format!("名称{i}")})).status);
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 412).count(), 9, "{statuses:?}");
    assert_eq!(app.get(&path, &app.admin()).body["version"], 2);
}

#[test]
fn lists_filter_and_search_names_and_readings_alike() {
    let app = spawn_app();
    app.create_org(sakura());
    app.create_org(json!({"kind": "hospital", "name": "千代田中央病院", "kana": "チヨダチュウオウビョウイン",
                          "municipality_code": "131016", "services": ["backup_beds"]}));
    app.create_org(json!({"kind": "visiting_nursing_station", "name": "ひまわり訪問看護ステーション",
                          "municipality_code": "271004", "active": false}));
    let admin = app.admin();
    let names = |query: &str| -> Vec<String> {
        let r = app.get(&format!("/api/v1/organizations{query}"), &admin);
        r.assert(200);
        r.body["items"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names("?kind=hospital"), ["千代田中央病院"]);
    assert_eq!(names("?municipality_code=271004"), ["ひまわり訪問看護ステーション"]);
    assert_eq!(names("?service=backup_beds"), ["千代田中央病院"]);
    assert_eq!(names("?active=false"), ["ひまわり訪問看護ステーション"]);
    assert_eq!(names("?kind=clinic&active=true"), ["さくら在宅クリニック"]);
    // The reading in hiragana finds the katakana reading; full-width finds half-width.
    let q = |s: &str| url_encode(s);
    assert_eq!(names(&format!("?q={}", q("ちよだ"))), ["千代田中央病院"]);
    assert_eq!(names(&format!("?q={}", q("ザイタク"))), ["さくら在宅クリニック"]);
    assert_eq!(names(&format!("?q={}", q("訪問看護"))), ["ひまわり訪問看護ステーション"]);
    assert_eq!(names(&format!("?q={}", q("%"))), Vec::<String>::new(), "wildcards are literal");
    app.get("/api/v1/organizations?q=%20", &admin).assert_problem(400, "validation_failed");
}

#[test]
fn pages_walk_every_organization_once() {
    let app = spawn_app();
    for i in 0..7 {
        app.clinic(&format!("クリニック{i}"));
    }
    let admin = app.admin();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/organizations?limit=3&cursor={c}"),
            None => "/api/v1/organizations?limit=3".to_owned(),
        };
        let r = app.get(&path, &admin);
        r.assert(200);
        pages += 1;
        seen.extend(r.body["items"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap().to_owned()));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).map(|i| format!("クリニック{i}")).collect();
    assert_eq!(seen, expected, "creation order, no gaps, no repeats");
}

pub fn url_encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
