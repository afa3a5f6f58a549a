//! Tokens from an identity provider: RS256, ES256 and EdDSA keys from the local JWKS file,
//! chosen by `kid`, one algorithm per key; every other combination refused. Keys are the
//! synthetic ones in tests/fixtures/idp.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{claims, spawn_app, TestApp, IDP_ISSUER};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/idp");

fn pem(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

fn key(name: &str, alg: Algorithm) -> EncodingKey {
    match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem(name)).unwrap(),
        Algorithm::ES256 => EncodingKey::from_ec_pem(&pem(name)).unwrap(),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&pem(name)).unwrap(),
        _ => EncodingKey::from_secret(&pem(name)),
    }
}

fn idp_claims(app: &TestApp) -> Value {
    let mut c = claims(&uuid::Uuid::now_v7().to_string(), &app.admin_org, &["admin"]);
    c["iss"] = json!(IDP_ISSUER);
    c
}

fn sign(alg: Algorithm, kid: Option<&str>, pem_file: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key(pem_file, alg)).unwrap()
}

fn status(app: &TestApp, token: &str) -> u16 {
    app.get("/api/v1/organizations", token).status
}

#[test]
fn rs256_es256_and_eddsa_tokens_verify_by_kid() {
    let app = spawn_app();
    let c = idp_claims(&app);
    assert_eq!(status(&app, &sign(Algorithm::RS256, Some("rsa-2026-a"), "rsa-2026-a.pem", &c)), 200);
    assert_eq!(status(&app, &sign(Algorithm::ES256, Some("ec-2026"), "ec-2026.pem", &c)), 200);
    assert_eq!(status(&app, &sign(Algorithm::EdDSA, Some("ed-2026"), "ed-2026.pem", &c)), 200);
}

#[test]
fn two_live_keys_let_the_provider_rotate() {
    let app = spawn_app();
    let c = idp_claims(&app);
    // Tokens signed with the outgoing and the incoming key both verify while both are listed.
    assert_eq!(status(&app, &sign(Algorithm::RS256, Some("rsa-2026-a"), "rsa-2026-a.pem", &c)), 200);
    assert_eq!(status(&app, &sign(Algorithm::RS256, Some("rsa-2026-b"), "rsa-2026-b.pem", &c)), 200);
    // But a token must be signed by the key it names.
    assert_eq!(status(&app, &sign(Algorithm::RS256, Some("rsa-2026-a"), "rsa-2026-b.pem", &c)), 401);
}

#[test]
fn unknown_keys_other_algorithms_and_key_confusion_are_refused() {
    let app = spawn_app();
    let c = idp_claims(&app);
    let refused_because = |token: String, why: &str| {
        let r = app.get("/api/v1/organizations", &token);
        r.assert_problem(401, "invalid_token");
        assert!(r.body["detail"].as_str().unwrap().contains(why), "{why}: {}", r.text);
    };
    let refused = |token: String| refused_because(token, "");
    refused_because(sign(Algorithm::RS256, Some("rsa-unlisted"), "rsa-unlisted.pem", &c), "unknown key");
    refused_because(sign(Algorithm::RS256, None, "rsa-2026-a.pem", &c), "must name its key");
    // The EC key's kid on an RSA signature.
    refused_because(sign(Algorithm::RS256, Some("ec-2026"), "rsa-2026-a.pem", &c), "not its key's algorithm");
    // HS256 "signed" with the RSA public key as its secret, naming the RSA key, or no key.
    refused_because(sign(Algorithm::HS256, Some("rsa-2026-a"), "rsa-2026-a.pub.pem", &c), "not its key's algorithm");
    refused_because(sign(Algorithm::HS256, None, "rsa-2026-a.pub.pem", &c), "signature");
    // alg: none, naming a real key.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    refused(format!("{}.{}.", b64.encode(r#"{"alg":"none","kid":"rsa-2026-a"}"#), b64.encode(c.to_string())));
    // A jku naming somewhere else is never fetched: the unknown kid is simply refused.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("attacker-key".into());
    header.jku = Some("https://attacker.example.test/jwks.json".into());
    refused(jsonwebtoken::encode(&header, &c, &key("rsa-unlisted.pem", Algorithm::RS256)).unwrap());
}

#[test]
fn a_provider_speaks_neither_as_renkei_nor_for_api_clients() {
    let app = spawn_app();
    let mut c = idp_claims(&app);
    c["iss"] = json!(crate::helpers::ISSUER);
    let r = app.get("/api/v1/organizations", &sign(Algorithm::RS256, Some("rsa-2026-a"), "rsa-2026-a.pem", &c));
    r.assert_problem(401, "invalid_token");
    let mut c = idp_claims(&app);
    c["sub"] = json!("client:partner-system");
    let r = app.get("/api/v1/organizations", &sign(Algorithm::RS256, Some("rsa-2026-a"), "rsa-2026-a.pem", &c));
    assert!(r.body["detail"].as_str().unwrap().contains("API client"), "{}", r.text);
    // And our own secret does not speak for the provider.
    let mut c = idp_claims(&app);
    c["iss"] = json!(IDP_ISSUER);
    app.get("/api/v1/organizations", &app.sign(&c)).assert_problem(401, "invalid_token");
}

#[test]
fn provider_tokens_need_aud_iss_exp_and_a_reached_nbf() {
    let app = spawn_app();
    let now = chrono::Utc::now().timestamp();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = idp_claims(&app);
        f(&mut c);
        sign(Algorithm::ES256, Some("ec-2026"), "ec-2026.pem", &c)
    };
    for token in [
        with(&|c| {
            c.as_object_mut().unwrap().remove("aud");
        }),
        with(&|c| {
            c.as_object_mut().unwrap().remove("iss");
        }),
        with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        }),
        with(&|c| c["aud"] = json!("another-api")),
        with(&|c| c["iss"] = json!("https://other-idp.example.test")),
        with(&|c| c["nbf"] = json!(now + 600)),
        with(&|c| c["exp"] = json!(now - 600)),
    ] {
        app.get("/api/v1/organizations", &token).assert_problem(401, "invalid_token");
    }
}

#[test]
fn an_unusable_key_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("jwks.json");
    std::fs::write(&bad, r#"{"keys": [{"kty": "oct", "kid": "shared", "k": "c2VjcmV0"}]}"#).unwrap();
    let settings = renkei::auth::jwt::JwtSettings {
        secret: renkei::auth::jwt::Secret::new(vec![1; 32]),
        issuers: vec!["renkei".into()],
        audience: "renkei".into(),
        keys_file: Some(bad),
    };
    let err = renkei::auth::jwt::Verifier::new(&settings).err().expect("a symmetric key is refused");
    assert!(err.contains("only RS256"), "{err}");
    let missing = renkei::auth::jwt::JwtSettings { keys_file: Some(dir.path().join("nope.json")), ..settings };
    assert!(renkei::auth::jwt::Verifier::new(&missing).is_err());
}
