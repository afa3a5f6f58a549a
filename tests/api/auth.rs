//! Bearer tokens: every refusal is a 401 with a challenge, every token built here by the test.

use serde_json::{json, Value};

use crate::helpers::{claims, spawn_app, TestApp};

fn refused(app: &TestApp, token: &str) {
    let r = app.get("/api/v1/organizations", token);
    r.assert_problem(401, "invalid_token");
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{:?}", r.headers);
}

fn with(app: &TestApp, change: impl FnOnce(&mut Value)) -> String {
    let mut c = claims(&uuid::Uuid::now_v7().to_string(), &app.admin_org, &["admin"]);
    change(&mut c);
    app.sign(&c)
}

#[test]
fn a_missing_token_is_401_with_a_bearer_challenge() {
    let app = spawn_app();
    let r = app.request("GET", "/api/v1/organizations", None, &[], None);
    r.assert_problem(401, "missing_token");
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"renkei\""));
    let r = app.request("GET", "/api/v1/organizations", None, &[("Authorization", "Basic dXNlcjpwYXNz")], None);
    r.assert_problem(401, "invalid_token");
}

#[test]
fn a_valid_token_is_accepted() {
    let app = spawn_app();
    app.get("/api/v1/organizations", &app.admin()).assert(200);
}

#[test]
fn expired_future_and_misaddressed_tokens_are_refused() {
    let app = spawn_app();
    let now = chrono::Utc::now().timestamp();
    refused(&app, &with(&app, |c| c["exp"] = json!(now - 120)));
    refused(&app, &with(&app, |c| c["nbf"] = json!(now + 300)));
    refused(&app, &with(&app, |c| c["aud"] = json!("someone-else")));
    refused(&app, &with(&app, |c| c["iss"] = json!("https://evil.example")));
}

#[test]
fn tokens_missing_a_required_claim_are_refused() {
    let app = spawn_app();
    for claim in ["exp", "iss", "aud", "sub", "org"] {
        let token = with(&app, |c| {
            c.as_object_mut().map(|o| o.remove(claim));
        });
        refused(&app, &token);
    }
}

#[test]
fn malformed_subjects_and_organizations_are_refused() {
    let app = spawn_app();
    refused(&app, &with(&app, |c| c["sub"] = json!("not-a-uuid")));
    refused(&app, &with(&app, |c| c["sub"] = json!("client:")));
    refused(&app, &with(&app, |c| c["org"] = json!("nowhere")));
}

#[test]
fn tampered_foreign_and_unsigned_tokens_are_refused() {
    let app = spawn_app();
    let good = app.admin();
    // Signed with another secret.
    let foreign = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims(&uuid::Uuid::now_v7().to_string(), &app.admin_org, &["admin"]),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-xx"),
    )
    .unwrap();
    refused(&app, &foreign);
    // Payload swapped, signature kept.
    let parts: Vec<&str> = good.split('.').collect();
    let forged = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut c = claims(&uuid::Uuid::now_v7().to_string(), &app.admin_org, &["admin", "auditor"]);
        c["exp"] = json!(chrono::Utc::now().timestamp() + 99_999);
        format!("{}.{}.{}", parts[0], b64.encode(c.to_string()), parts[2])
    };
    refused(&app, &forged);
    // alg: none.
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let c = claims(&uuid::Uuid::now_v7().to_string(), &app.admin_org, &["admin"]);
        format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), b64.encode(c.to_string()))
    };
    refused(&app, &unsigned);
    refused(&app, "garbage");
}

#[test]
fn a_token_without_known_roles_reads_nothing() {
    let app = spawn_app();
    let token = app.token_for(&app.admin_org, &["superuser"]);
    app.get("/api/v1/organizations", &token).assert_problem(403, "forbidden");
}
