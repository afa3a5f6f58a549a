//! API clients and the client-credentials grant; revocation of clients and practitioners.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

fn register(app: &TestApp, org: &str, roles: &[&str]) -> Value {
    let r = app.post(
        "/api/v1/clients",
        &app.admin(),
        &json!({"name": "病院 退院支援システム", "organization_id": org, "roles": roles}),
    );
    r.assert(201);
    r.body
}

fn form(app: &TestApp, body: &str) -> crate::helpers::Resp {
    app.request(
        "POST",
        "/api/v1/auth/token",
        None,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(body),
    )
}

fn grant(app: &TestApp, client: &Value) -> String {
    let r = form(
        app,
        &format!(
            "grant_type=client_credentials&client_id={}&client_secret={}",
            client["id"].as_str().unwrap(),
            client["client_secret"].as_str().unwrap()
        ),
    );
    r.assert(200);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 900);
    r.body["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn a_client_gets_a_short_lived_token_that_carries_its_organization_and_roles() {
    let app = spawn_app();
    let base = app.clinic("拠点");
    let client = register(&app, &base, &["coordinator", "coordinator", "nurse"]);
    assert_eq!(client["roles"], json!(["coordinator", "nurse"]));
    assert!(client["client_secret"].as_str().unwrap().len() >= 40);
    let token = grant(&app, &client);
    // The token works, as the client, for the client's organization.
    let patient = app.register_patient(&token, "田中 花子", "タナカ ハナコ");
    let row =
        app.get(&format!("/api/v1/audit-events?patient_id={patient}"), &app.token_for(&app.admin_org, &["auditor"]));
    assert_eq!(row.body["items"][0]["client_id"], client["id"]);
    assert_eq!(row.body["items"][0]["actor_sub"], format!("client:{}", client["id"].as_str().unwrap()));
    assert_eq!(row.body["items"][0]["actor_org"], base);
    // Its lifetime is 15 minutes.
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);
}

#[test]
fn secrets_are_shown_once_and_stored_hashed() {
    let app = spawn_app();
    let client = register(&app, &app.clinic("A"), &["hospital_discharge"]);
    let list = app.get("/api/v1/clients", &app.admin());
    list.assert(200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert!(!list.text.contains(client["client_secret"].as_str().unwrap()));
    assert!(list.body["items"][0].get("client_secret").is_none());
    // Basic authentication works as well as form fields.
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        client["id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap()
    ));
    let r = app.request(
        "POST",
        "/api/v1/auth/token",
        None,
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", &format!("Basic {basic}"))],
        Some("grant_type=client_credentials"),
    );
    r.assert(200);
}

#[test]
fn the_token_endpoint_refuses_bad_grants_and_credentials() {
    let app = spawn_app();
    let client = register(&app, &app.clinic("A"), &["hospital_discharge"]);
    let id = client["id"].as_str().unwrap();
    let r = form(&app, &format!("grant_type=client_credentials&client_id={id}&client_secret=wrong"));
    r.assert_problem(401, "invalid_client");
    assert_eq!(r.body["error"], "invalid_client");
    form(&app, "grant_type=client_credentials&client_id=nobody&client_secret=x").assert_problem(401, "invalid_client");
    let r = form(&app, &format!("grant_type=password&client_id={id}&client_secret=x"));
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "unsupported_grant_type");
    assert_eq!(form(&app, "grant_type=client_credentials").body["error"], "invalid_request");
    let json_body =
        json!({"grant_type": "client_credentials", "client_id": id, "client_secret": client["client_secret"]});
    app.request("POST", "/api/v1/auth/token", None, &[], Some(&json_body.to_string())).assert(200);
}

#[test]
fn a_deleted_clients_tokens_stop_working_at_once() {
    let app = spawn_app();
    let client = register(&app, &app.clinic("A"), &["nurse"]);
    let token = grant(&app, &client);
    app.get("/api/v1/organizations", &token).assert(200);
    let id = client["id"].as_str().unwrap();
    app.request("DELETE", &format!("/api/v1/clients/{id}"), Some(&app.admin()), &[], None).assert(204);
    app.get("/api/v1/organizations", &token).assert_problem(401, "invalid_token");
    form(
        &app,
        &format!(
            "grant_type=client_credentials&client_id={id}&client_secret={}",
            client["client_secret"].as_str().unwrap()
        ),
    )
    .assert_problem(401, "invalid_client");
    app.request("DELETE", &format!("/api/v1/clients/{id}"), Some(&app.admin()), &[], None)
        .assert_problem(404, "not_found");
}

#[test]
fn only_admins_manage_clients_and_clients_are_never_admins() {
    let app = spawn_app();
    let org = app.clinic("A");
    let coordinator = app.coordinator_of(&org);
    app.post("/api/v1/clients", &coordinator, &json!({"name": "x", "organization_id": org, "roles": ["nurse"]}))
        .assert_problem(403, "forbidden");
    app.get("/api/v1/clients", &coordinator).assert_problem(403, "forbidden");
    app.request("DELETE", "/api/v1/clients/x", Some(&coordinator), &[], None).assert_problem(403, "forbidden");
    let r = app.post(
        "/api/v1/clients",
        &app.admin(),
        &json!({"name": "x", "organization_id": org, "roles": ["admin", "wizard"]}),
    );
    assert_eq!(
        r.field_errors(),
        [("roles[0]".to_owned(), "not_allowed".to_owned()), ("roles[1]".to_owned(), "unknown_code".to_owned())]
    );
    let r = app.post(
        "/api/v1/clients",
        &app.admin(),
        &json!({"name": "x", "organization_id": uuid::Uuid::now_v7(), "roles": ["nurse"]}),
    );
    assert_eq!(r.field_errors()[0].1, "unknown_reference");
}

#[test]
fn a_deactivated_practitioners_tokens_stop_working() {
    let app = spawn_app();
    let clinic = app.clinic("A");
    let doctor = app.physician(&clinic, "山田 太郎", "ヤマダ タロウ", "500001");
    let token = app.as_practitioner(&doctor, &clinic, &["physician"]);
    app.get("/api/v1/organizations", &token).assert(200);
    app.patch(&format!("/api/v1/practitioners/{doctor}"), &app.admin(), "\"1\"", &json!({"active": false})).assert(200);
    let r = app.get("/api/v1/organizations", &token);
    r.assert_problem(401, "invalid_token");
    assert!(r.body["detail"].as_str().unwrap().contains("deactivated"));
    app.patch(&format!("/api/v1/practitioners/{doctor}"), &app.admin(), "\"2\"", &json!({"active": true})).assert(200);
    app.get("/api/v1/organizations", &token).assert(200);
}
