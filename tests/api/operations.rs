//! Health, readiness, metrics, request ids and the OpenAPI document.

use crate::helpers::spawn_app;

#[test]
fn healthz_answers_without_a_token_and_carries_a_request_id() {
    let app = spawn_app();
    let r = app.request("GET", "/healthz", None, &[], None);
    r.assert(200);
    assert_eq!(r.body["status"], "ok");
    assert!(r.header("x-request-id").is_some_and(|id| id.len() >= 16));
}

#[test]
fn a_sane_client_request_id_is_echoed_and_a_bad_one_replaced() {
    let app = spawn_app();
    let r = app.request("GET", "/healthz", None, &[("X-Request-Id", "his-batch-42.7")], None);
    assert_eq!(r.header("x-request-id"), Some("his-batch-42.7"));
    let bad = "x".repeat(200);
    let r = app.request("GET", "/healthz", None, &[("X-Request-Id", &bad)], None);
    assert_ne!(r.header("x-request-id"), Some(bad.as_str()));
    let r = app.request("GET", "/api/v1/organizations", None, &[("X-Request-Id", "trace-1")], None);
    assert_eq!(r.body["request_id"], "trace-1", "problem bodies quote the request id");
}

#[test]
fn readyz_reports_the_migrated_backend() {
    let app = spawn_app();
    let r = app.request("GET", "/readyz", None, &[], None);
    r.assert(200);
    assert_eq!(r.body["status"], "ready");
    assert_eq!(r.body["database"], if app.db.is_postgres() { "postgres" } else { "sqlite" });
}

#[test]
fn metrics_count_requests_by_route_and_show_the_pools() {
    let app = spawn_app();
    app.request("GET", "/healthz", None, &[], None);
    app.get("/api/v1/organizations", &app.admin()).assert(200);
    app.request("GET", "/api/v1/organizations", None, &[], None).assert(401);
    let r = app.request("GET", "/metrics", None, &[], None);
    r.assert(200);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/plain")));
    assert!(
        r.text.contains("renkei_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"),
        "{}",
        r.text
    );
    assert!(r.text.contains("route=\"/api/v1/organizations\",status=\"401\"} 1"), "{}", r.text);
    assert!(r.text.contains("renkei_http_request_duration_seconds_bucket"));
    assert!(r.text.contains("renkei_db_pool_connections{pool=\"read\""));
}

#[test]
fn openapi_is_served_and_matches_the_committed_document() {
    let app = spawn_app();
    let r = app.request("GET", "/api/v1/openapi.json", None, &[], None);
    r.assert(200);
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
        .expect("openapi/openapi.json is committed");
    assert_eq!(
        r.text.trim_end(),
        committed.trim_end(),
        "openapi/openapi.json is stale: regenerate it with `cargo run -q -- openapi > openapi/openapi.json`"
    );
    for path in ["/api/v1/organizations", "/api/v1/organizations/{id}", "/api/v1/practitioners/{id}", "/readyz"] {
        assert!(r.body["paths"][path].is_object(), "{path} missing from the document");
    }
    assert_eq!(r.body["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

#[test]
fn the_docs_page_is_self_contained() {
    let app = spawn_app();
    let r = app.request("GET", "/api/v1/docs", None, &[], None);
    r.assert(200);
    assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/html")));
    assert!(r.text.contains("/api/v1/openapi.json"));
    assert!(!r.text.contains("https://"), "the docs page must not load anything from the internet");
}

#[test]
fn benchmark_probes_exist_only_when_configured() {
    let off = crate::helpers::spawn_app();
    off.request("POST", "/_probe/rows", None, &[], Some("{}")).assert(404);
    let on = crate::helpers::spawn_with(crate::helpers::TestDb::create(), |c| c.bench_probes = true);
    on.request("POST", "/_probe/rows", None, &[], Some("{}")).assert(201);
    let org = on.create_org(serde_json::json!({"kind": "clinic", "name": "計測", "municipality_code": "131016"}));
    let id = org["id"].as_str().unwrap();
    on.request("GET", &format!("/_probe/organizations/{id}"), None, &[], None).assert(200);
}
