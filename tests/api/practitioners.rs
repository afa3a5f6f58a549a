//! `/api/v1/practitioners`: create, read, list, patch, and every refusal.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::{race, spawn_app};
use crate::organizations::url_encode;

#[test]
fn admin_registers_a_physician_and_everyone_reads_them() {
    let app = spawn_app();
    let org = app.clinic("さくら在宅クリニック");
    let r = app.post(
        "/api/v1/practitioners",
        &app.admin(),
        &json!({"organization_id": org, "name": "山田 太郎", "kana": "やまだ たろう", "profession": "physician",
                "registration_number": "123456", "phone": "090-1234-5678", "email": "yamada@example.jp"}),
    );
    r.assert(201);
    let id = r.id();
    assert_eq!(r.header("location"), Some(format!("/api/v1/practitioners/{id}").as_str()));
    assert_eq!(r.body["kana"], "ヤマダ タロウ", "readings are kept in katakana");
    assert_eq!(r.body["active"], true);
    let care_manager = app.token_for(&org, &["care_manager"]);
    let got = app.get(&format!("/api/v1/practitioners/{id}"), &care_manager);
    got.assert(200);
    assert_eq!(got.body, r.body);
}

#[test]
fn physicians_and_dentists_need_a_registration_number() {
    let app = spawn_app();
    let org = app.clinic("A");
    for profession in ["physician", "dentist"] {
        let r = app.post(
            "/api/v1/practitioners",
            &app.admin(),
            &json!({"organization_id": org, "name": "佐藤 花子", "kana": "サトウ ハナコ", "profession": profession}),
        );
        r.assert_problem(400, "validation_failed");
        assert_eq!(r.field_errors(), [("registration_number".to_owned(), "required".to_owned())]);
    }
    app.post(
        "/api/v1/practitioners",
        &app.admin(),
        &json!({"organization_id": org, "name": "佐藤 花子", "kana": "サトウ ハナコ", "profession": "nurse"}),
    )
    .assert(201);
}

#[test]
fn a_practitioner_must_belong_to_a_known_organization() {
    let app = spawn_app();
    let r = app.post(
        "/api/v1/practitioners",
        &app.admin(),
        &json!({"organization_id": uuid::Uuid::now_v7(), "name": "鈴木 一郎", "kana": "スズキ イチロウ", "profession": "nurse"}),
    );
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.field_errors(), [("organization_id".to_owned(), "unknown_reference".to_owned())]);
    let r = app.post(
        "/api/v1/practitioners",
        &app.admin(),
        &json!({"organization_id": "x", "name": "", "kana": "Suzuki", "profession": "wizard"}),
    );
    let fields: Vec<String> = r.field_errors().into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["organization_id", "name", "kana", "profession"]);
}

#[test]
fn a_registration_number_names_one_person() {
    let app = spawn_app();
    let org = app.clinic("A");
    let first = app.physician(&org, "山田 太郎", "ヤマダ タロウ", "123456");
    let r = app.post(
        "/api/v1/practitioners",
        &app.admin(),
        &json!({"organization_id": org, "name": "山田 次郎", "kana": "ヤマダ ジロウ", "profession": "physician",
                "registration_number": "123456"}),
    );
    r.assert_problem(409, "duplicate_registration_number");
    assert_eq!(r.body["existing_id"], first);
    // The same number in another profession's register is someone else.
    app.post(
        "/api/v1/practitioners",
        &app.admin(),
        &json!({"organization_id": org, "name": "歯科 太郎", "kana": "シカ タロウ", "profession": "dentist",
                "registration_number": "123456"}),
    )
    .assert(201);
}

#[test]
fn concurrent_registrations_of_one_physician_make_one_entry() {
    let app = Arc::new(spawn_app());
    let org = app.clinic("A");
    let a = app.clone();
    let statuses = race(10, move |i| {
        a.post(
            "/api/v1/practitioners",
            &a.admin(),
            &json!({"organization_id": org, "name": format!("医師{i}"), "kana": "イシ", "profession": "physician",
                    "registration_number": "777777"}),
        )
        .status
    });
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 9, "{statuses:?}");
}

#[test]
fn only_admins_register_or_change_practitioners() {
    let app = spawn_app();
    let org = app.clinic("A");
    let id = app.physician(&org, "山田 太郎", "ヤマダ タロウ", "123456");
    let coordinator = app.token_for(&org, &["coordinator"]);
    app.post(
        "/api/v1/practitioners",
        &coordinator,
        &json!({"organization_id": org, "name": "x", "kana": "エックス", "profession": "nurse"}),
    )
    .assert_problem(403, "forbidden");
    app.patch(&format!("/api/v1/practitioners/{id}"), &coordinator, "\"1\"", &json!({"active": false}))
        .assert_problem(403, "forbidden");
    app.request("POST", "/api/v1/practitioners", None, &[], Some("{}")).assert_problem(401, "missing_token");
}

#[test]
fn patch_moves_deactivates_and_guards_required_fields() {
    let app = spawn_app();
    let a = app.clinic("A");
    let b = app.clinic("B");
    let id = app.physician(&a, "山田 太郎", "ヤマダ タロウ", "123456");
    let path = format!("/api/v1/practitioners/{id}");
    let admin = app.admin();
    app.request("PATCH", &path, Some(&admin), &[], Some("{\"active\": false}"))
        .assert_problem(428, "precondition_required");
    let r = app.patch(&path, &admin, "\"1\"", &json!({"organization_id": b, "active": false}));
    r.assert(200);
    assert_eq!(r.body["organization_id"], b);
    assert_eq!(r.body["active"], false);
    assert_eq!(r.body["version"], 2);
    app.patch(&path, &admin, "\"1\"", &json!({"active": true})).assert_problem(412, "version_mismatch");
    let r = app.patch(&path, &admin, "\"2\"", &json!({"registration_number": null}));
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.field_errors()[0].0, "registration_number");
    let r = app.patch(&path, &admin, "\"2\"", &json!({"organization_id": uuid::Uuid::now_v7()}));
    assert_eq!(r.field_errors(), [("organization_id".to_owned(), "unknown_reference".to_owned())]);
    app.patch(&format!("/api/v1/practitioners/{}", uuid::Uuid::now_v7()), &admin, "\"1\"", &json!({"active": true}))
        .assert_problem(404, "not_found");
    assert_eq!(app.get(&path, &admin).body["version"], 2);
}

#[test]
fn lists_filter_by_organization_profession_activity_and_name() {
    let app = spawn_app();
    let a = app.clinic("A");
    let b = app.clinic("B");
    app.physician(&a, "山田 太郎", "ヤマダ タロウ", "100001");
    app.physician(&b, "田中 一郎", "タナカ イチロウ", "100002");
    let admin = app.admin();
    app.post(
        "/api/v1/practitioners",
        &admin,
        &json!({"organization_id": a, "name": "佐藤 花子", "kana": "サトウ ハナコ", "profession": "nurse", "active": false}),
    )
    .assert(201);
    let names = |query: &str| -> Vec<String> {
        let r = app.get(&format!("/api/v1/practitioners{query}"), &admin);
        r.assert(200);
        r.body["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names(&format!("?organization_id={a}")), ["山田 太郎", "佐藤 花子"]);
    assert_eq!(names("?profession=physician"), ["山田 太郎", "田中 一郎"]);
    assert_eq!(names("?active=false"), ["佐藤 花子"]);
    assert_eq!(names(&format!("?q={}", url_encode("たなか"))), ["田中 一郎"]);
    assert_eq!(names(&format!("?q={}", url_encode("山田太郎"))), ["山田 太郎"], "spaces are folded");
    app.get("/api/v1/practitioners?organization_id=nope", &admin).assert_problem(400, "validation_failed");
    app.get("/api/v1/practitioners?profession=wizard", &admin).assert_problem(400, "validation_failed");
}
