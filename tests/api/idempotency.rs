//! `Idempotency-Key` on creating POSTs: replays, mismatches, per-caller scope, races.

use std::sync::Arc;

use serde_json::json;

use crate::helpers::{race, spawn_app};

fn patient_body(name: &str) -> String {
    json!({"name": name, "kana": "タナカ ハナコ", "birth_date": "1938-05-12", "sex": "female", "municipality_code": "131016"})
        .to_string()
}

#[test]
fn a_retried_creation_gets_the_first_answer_and_creates_nothing_new() {
    let app = spawn_app();
    let coordinator = app.coordinator_of(&app.clinic("拠点"));
    let key = [("Idempotency-Key", "his-7f3a-0001")];
    let first = app.request("POST", "/api/v1/patients", Some(&coordinator), &key, Some(&patient_body("田中 花子")));
    first.assert(201);
    let again = app.request("POST", "/api/v1/patients", Some(&coordinator), &key, Some(&patient_body("田中 花子")));
    again.assert(201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("etag"), first.header("etag"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(app.get("/api/v1/patients", &coordinator).body["items"].as_array().unwrap().len(), 1);
}

#[test]
fn the_same_key_with_another_body_is_422_and_keys_are_per_caller() {
    let app = spawn_app();
    let base = app.clinic("拠点");
    let coordinator = app.coordinator_of(&base);
    let key = [("Idempotency-Key", "k-1")];
    app.request("POST", "/api/v1/patients", Some(&coordinator), &key, Some(&patient_body("田中 花子"))).assert(201);
    let r = app.request("POST", "/api/v1/patients", Some(&coordinator), &key, Some(&patient_body("田中 次郎")));
    r.assert_problem(422, "idempotency_key_reused");
    // Another caller's identical key is another key.
    let colleague = app.coordinator_of(&base);
    let r = app.request("POST", "/api/v1/patients", Some(&colleague), &key, Some(&patient_body("田中 花子")));
    r.assert(201);
    assert!(r.header("idempotent-replayed").is_none());
    let bad = "x".repeat(300);
    app.request("POST", "/api/v1/patients", Some(&coordinator), &[("Idempotency-Key", &bad)], Some(&patient_body("x")))
        .assert_problem(400, "validation_failed");
}

#[test]
fn refusals_are_replayed_too_and_change_nothing() {
    let app = spawn_app();
    let coordinator = app.coordinator_of(&app.clinic("拠点"));
    let key = [("Idempotency-Key", "bad-1")];
    let body = json!({"name": "x"}).to_string();
    let first = app.request("POST", "/api/v1/patients", Some(&coordinator), &key, Some(&body));
    first.assert_problem(400, "validation_failed");
    let again = app.request("POST", "/api/v1/patients", Some(&coordinator), &key, Some(&body));
    assert_eq!(again.status, 400);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}

#[test]
fn concurrent_duplicates_with_one_key_create_one_object() {
    let app = Arc::new(spawn_app());
    let coordinator = app.coordinator_of(&app.clinic("拠点"));
    let (a, c) = (app.clone(), coordinator.clone());
    let results = race(10, move |_| {
        let r = a.request(
            "POST",
            "/api/v1/patients",
            Some(&c),
            &[("Idempotency-Key", "race-1")],
            Some(&patient_body("田中 花子")),
        );
        (r.status, r.code().to_owned())
    });
    assert!(results.iter().all(|(s, code)| *s == 201 || (*s == 409 && code == "idempotency_in_flight")), "{results:?}");
    assert!(results.iter().any(|(s, _)| *s == 201));
    assert_eq!(app.get("/api/v1/patients", &coordinator).body["items"].as_array().unwrap().len(), 1);
}
