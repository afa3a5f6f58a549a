//! Bearer tokens: HS256 with the configured (or generated) secret. `iss`, `aud` and `exp` are
//! required; `nbf` is checked; leeway is small. The secret never reaches a log.

use std::fmt;

use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{Actor, Role, Subject};
use crate::error::ApiError;

/// Accepted clock skew between Renkei and token issuers.
pub const LEEWAY_SECS: u64 = 30;

/// A shared secret; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Secret(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// What a token must say about where it comes from and whom it is for.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub secret: Secret,
    pub issuer: String,
    pub audience: String,
}

/// The claims Renkei reads and writes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub org: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub iss: String,
    pub aud: serde_json::Value,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Checks tokens; built once at start-up.
pub struct Verifier {
    hs256: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn new(settings: &JwtSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        Verifier { hs256: DecodingKey::from_secret(settings.secret.expose()), validation }
    }

    /// Verifies a token and turns its claims into an [`Actor`]; every failure is a 401.
    pub fn verify(&self, token: &str) -> Result<Actor, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.hs256, &self.validation).map_err(|e| {
            let detail = match e.kind() {
                ErrorKind::ExpiredSignature => "The token has expired",
                ErrorKind::ImmatureSignature => "The token is not valid yet (nbf)",
                ErrorKind::InvalidAudience => "The token is not meant for this API (aud)",
                ErrorKind::InvalidIssuer => "The token comes from an unknown issuer (iss)",
                ErrorKind::MissingRequiredClaim(_) => "The token lacks a required claim (iss, aud, exp)",
                ErrorKind::InvalidAlgorithm => "The token's algorithm is not accepted",
                ErrorKind::InvalidSignature => "The token's signature is invalid",
                _ => "The token is malformed",
            };
            ApiError::unauthorized("invalid_token", detail)
        })?;
        actor_from(data.claims)
    }
}

fn actor_from(claims: Claims) -> Result<Actor, ApiError> {
    let bad = |what: &str| ApiError::unauthorized("invalid_token", format!("The token's {what} claim is invalid"));
    let subject = match claims.sub.strip_prefix("client:") {
        Some(client) if !client.is_empty() => Subject::Client(client.to_owned()),
        Some(_) => return Err(bad("sub")),
        None => Subject::Practitioner(claims.sub.parse().map_err(|_| bad("sub"))?),
    };
    let org = claims.org.parse().map_err(|_| bad("org"))?;
    let roles = claims.roles.iter().filter_map(|r| Role::parse(r)).collect();
    Ok(Actor { subject, org, roles })
}

/// Signs an HS256 token (for `renkei token` and, later, the client-credentials grant).
pub fn sign(
    settings: &JwtSettings,
    sub: &str,
    org: &str,
    roles: &[String],
    ttl: chrono::Duration,
) -> Result<String, String> {
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: sub.to_owned(),
        org: org.to_owned(),
        roles: roles.to_vec(),
        iss: settings.issuer.clone(),
        aud: serde_json::Value::String(settings.audience.clone()),
        exp: now + ttl.num_seconds(),
        iat: Some(now),
        nbf: Some(now),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(settings.secret.expose()))
        .map_err(|e| format!("cannot sign the token: {e}"))
}

/// Parses a time-to-live such as `90s`, `15m`, `1h` or `7d`.
pub fn parse_ttl(value: &str) -> Result<chrono::Duration, String> {
    let value = value.trim();
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let n: i64 = number.parse().map_err(|_| format!("'{value}' is not a duration such as 15m or 1h"))?;
    let d = match unit {
        "s" | "" => chrono::Duration::seconds(n),
        "m" => chrono::Duration::minutes(n),
        "h" => chrono::Duration::hours(n),
        "d" => chrono::Duration::days(n),
        _ => return Err(format!("'{value}' has an unknown unit; use s, m, h or d")),
    };
    if d <= chrono::Duration::zero() || d > chrono::Duration::days(366) {
        return Err("the time-to-live must be between 1 second and 366 days".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> JwtSettings {
        JwtSettings { secret: Secret::new(vec![7; 32]), issuer: "renkei".into(), audience: "renkei".into() }
    }

    #[test]
    fn signed_token_verifies_into_an_actor() {
        let org = uuid::Uuid::now_v7().to_string();
        let sub = uuid::Uuid::now_v7().to_string();
        let token =
            sign(&settings(), &sub, &org, &["admin".into(), "wizard".into()], chrono::Duration::hours(1)).unwrap();
        let actor = Verifier::new(&settings()).verify(&token).unwrap();
        assert_eq!(actor.roles, [Role::Admin]);
        assert_eq!(actor.org.to_string(), org);
    }

    #[test]
    fn client_subjects_and_bad_subjects() {
        let org = uuid::Uuid::now_v7().to_string();
        let token = sign(&settings(), "client:his-01", &org, &[], chrono::Duration::hours(1)).unwrap();
        assert_eq!(Verifier::new(&settings()).verify(&token).unwrap().subject, Subject::Client("his-01".into()));
        let token = sign(&settings(), "nobody", &org, &[], chrono::Duration::hours(1)).unwrap();
        assert_eq!(Verifier::new(&settings()).verify(&token).unwrap_err().code(), "invalid_token");
    }

    #[test]
    fn secret_is_never_printed() {
        assert_eq!(format!("{:?}", settings().secret), "Secret([redacted])");
    }

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("15m").unwrap(), chrono::Duration::minutes(15));
        assert_eq!(parse_ttl("1h").unwrap(), chrono::Duration::hours(1));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("1y").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
