//! The error contract: problem+json everywhere, clear codes, no internals, nothing changed.

use serde_json::json;

use crate::helpers::spawn_app;

#[test]
fn unknown_routes_are_problem_404() {
    let app = spawn_app();
    app.request("GET", "/api/v1/nothing-here", None, &[], None).assert_problem(404, "not_found");
}

#[test]
fn invalid_json_is_400_without_internals_and_creates_nothing() {
    let app = spawn_app();
    let r = app.request("POST", "/api/v1/organizations", Some(&app.admin()), &[], Some("{\"kind\": \"clinic\","));
    r.assert_problem(400, "invalid_json");
    assert!(!r.text.contains("serde") && !r.text.contains("src/"), "{}", r.text);
    let list = app.get("/api/v1/organizations", &app.admin());
    assert_eq!(list.body["items"].as_array().unwrap().len(), 0);
}

#[test]
fn a_body_that_is_not_json_is_415() {
    let app = spawn_app();
    let r = app.request(
        "POST",
        "/api/v1/organizations",
        Some(&app.admin()),
        &[("Content-Type", "text/plain")],
        Some("kind=clinic"),
    );
    r.assert_problem(415, "unsupported_media_type");
}

#[test]
fn bodies_over_256_kib_are_413() {
    let app = spawn_app();
    let big = json!({"kind": "clinic", "name": "x".repeat(300 * 1024), "municipality_code": "131016"}).to_string();
    app.request("POST", "/api/v1/organizations", Some(&app.admin()), &[], Some(&big))
        .assert_problem(413, "payload_too_large");
}

#[test]
fn json_nested_deeper_than_32_is_400() {
    let app = spawn_app();
    let deep = format!("{{\"kind\": {}1{}}}", "[".repeat(40), "]".repeat(40));
    app.request("POST", "/api/v1/organizations", Some(&app.admin()), &[], Some(&deep))
        .assert_problem(400, "json_too_deep");
}

#[test]
fn unknown_fields_and_wrong_types_name_the_field() {
    let app = spawn_app();
    let r = app.post(
        "/api/v1/organizations",
        &app.admin(),
        &json!({"kind": "clinic", "name": "A", "municipality_code": "131016", "colour": "red"}),
    );
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.field_errors(), [("colour".to_owned(), "unknown_field".to_owned())]);
    let r = app.post(
        "/api/v1/organizations",
        &app.admin(),
        &json!({"kind": "clinic", "name": 7, "municipality_code": "131016"}),
    );
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.field_errors(), [("name".to_owned(), "invalid_type".to_owned())]);
}

#[test]
fn malformed_path_ids_and_query_parameters_are_400() {
    let app = spawn_app();
    let admin = app.admin();
    app.get("/api/v1/organizations/not-a-uuid", &admin).assert_problem(400, "validation_failed");
    let r = app.get("/api/v1/organizations?limit=0", &admin);
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.field_errors()[0].0, "limit");
    app.get("/api/v1/organizations?limit=201", &admin).assert_problem(400, "validation_failed");
    app.get("/api/v1/organizations?limit=ten", &admin).assert_problem(400, "validation_failed");
    let r = app.get("/api/v1/organizations?cursor=bogus", &admin);
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.field_errors()[0], ("cursor".to_owned(), "invalid_cursor".to_owned()));
    let r = app.get("/api/v1/organizations?colour=red", &admin);
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.field_errors()[0], ("colour".to_owned(), "unknown_field".to_owned()));
    let r = app.get("/api/v1/organizations?kind=spaceship&active=maybe", &admin);
    assert_eq!(
        r.field_errors(),
        [("kind".to_owned(), "unknown_code".to_owned()), ("active".to_owned(), "invalid_format".to_owned())]
    );
}

#[test]
fn responses_are_not_cached_and_not_sniffed() {
    let app = spawn_app();
    let r = app.get("/api/v1/organizations", &app.admin());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}
