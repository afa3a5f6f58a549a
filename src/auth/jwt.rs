//! Bearer tokens. Our own are HS256 with the configured (or generated) secret and carry no
//! `kid`; an identity provider's are RS256, ES256 or EdDSA, signed with a key of the local JWKS
//! file (`RENKEI_JWT_KEYS`) named by `kid`, one algorithm per key. `iss`, `aud` and `exp` are
//! required, `nbf` is checked, leeway is small. Nothing a token names (`jku`, `x5u`) is ever
//! fetched, and the secret never reaches a log.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

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
    /// Accepted issuers. The first is Renkei's own (HS256 tokens: `renkei token`, the token
    /// endpoint); the others are identity providers', accepted only on tokens signed with a key
    /// of the JWKS file.
    pub issuers: Vec<String>,
    pub audience: String,
    /// A local JWKS file with identity providers' public keys.
    pub keys_file: Option<PathBuf>,
}

impl JwtSettings {
    pub fn issuer(&self) -> &str {
        self.issuers.first().map_or("renkei", String::as_str)
    }
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
    /// Our own HS256 secret.
    own: Key,
    /// Identity-provider keys by `kid`.
    keys: HashMap<String, Key>,
    /// Tokens already verified, by their exact text, with what they said and when they expire.
    verified: Mutex<HashMap<String, (Actor, i64)>>,
}

/// How many verified tokens are remembered; when full, the memory is emptied and fills again.
/// A client sends the same token with every request for its lifetime, and checking its signature
/// and claims again each time was 7 % of the instructions of a case creation (callgrind, round 8).
const VERIFIED_TOKENS: usize = 4096;

/// A key with the one algorithm it verifies and what a token signed with it must say, built once
/// rather than at every request.
struct Key {
    alg: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

impl Key {
    fn new(alg: Algorithm, key: DecodingKey, settings: &JwtSettings) -> Self {
        let mut validation = Validation::new(alg);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // Our own secret speaks for Renkei only; a provider's key never does.
        let (own, providers) =
            settings.issuers.split_first().map_or((&[][..], &[][..]), |(o, p)| (std::slice::from_ref(o), p));
        validation.set_issuer(if alg == Algorithm::HS256 { own } else { providers });
        validation.set_audience(&[settings.audience.as_str()]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        Key { alg, key, validation }
    }
}

fn invalid(detail: &str) -> ApiError {
    ApiError::unauthorized("invalid_token", detail.to_owned())
}

impl Verifier {
    /// Builds the verifier; an unreadable or unusable JWKS file is a start-up error.
    pub fn new(settings: &JwtSettings) -> Result<Self, String> {
        let keys = match &settings.keys_file {
            None => HashMap::new(),
            Some(path) => load_jwks(path)?,
        };
        Ok(Verifier {
            own: Key::new(Algorithm::HS256, DecodingKey::from_secret(settings.secret.expose()), settings),
            keys: keys.into_iter().map(|(kid, (alg, key))| (kid, Key::new(alg, key, settings))).collect(),
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Verifies a token and turns its claims into an [`Actor`]; every failure is a 401.
    ///
    /// A token seen before, to the byte, is not checked again except for its expiry: everything
    /// else a check reads (signature, issuer, audience, `nbf` once passed, the claims) is in its
    /// text and cannot have changed. Only tokens that passed are remembered.
    pub fn verify(&self, token: &str) -> Result<Actor, ApiError> {
        self.verify_at(token, Utc::now().timestamp())
    }

    fn verify_at(&self, token: &str, now: i64) -> Result<Actor, ApiError> {
        let expired = |exp: i64| exp.saturating_add(LEEWAY_SECS as i64) < now;
        if let Some((actor, exp)) = self.remembered(token) {
            return if expired(exp) { Err(invalid("The token has expired")) } else { Ok(actor) };
        }
        let (actor, exp) = self.check(token)?;
        let mut verified = self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.to_owned(), (actor.clone(), exp));
        Ok(actor)
    }

    fn remembered(&self, token: &str) -> Option<(Actor, i64)> {
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(token).cloned()
    }

    /// The whole check, by `jsonwebtoken`: the actor and the token's `exp`.
    fn check(&self, token: &str) -> Result<(Actor, i64), ApiError> {
        // `alg: none` and unknown algorithms fail here: they are not in the algorithm enum.
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("The token is malformed"))?;
        let key = match &header.kid {
            Some(kid) => {
                let key = self.keys.get(kid).ok_or_else(|| invalid("The token names an unknown key (kid)"))?;
                if header.alg != key.alg {
                    return Err(invalid("The token's algorithm is not its key's algorithm"));
                }
                key
            }
            None if header.alg == Algorithm::HS256 => &self.own,
            None => return Err(invalid("A token signed with a public-key algorithm must name its key (kid)")),
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &key.validation).map_err(|e| {
            invalid(match e.kind() {
                ErrorKind::ExpiredSignature => "The token has expired",
                ErrorKind::ImmatureSignature => "The token is not valid yet (nbf)",
                ErrorKind::InvalidAudience => "The token is not meant for this API (aud)",
                ErrorKind::InvalidIssuer => "The token comes from an unknown issuer (iss)",
                ErrorKind::MissingRequiredClaim(_) => "The token lacks a required claim (iss, aud, exp)",
                ErrorKind::InvalidAlgorithm => "The token's algorithm is not accepted",
                ErrorKind::InvalidSignature => "The token's signature is invalid",
                _ => "The token is malformed",
            })
        })?;
        // API clients get their tokens from our token endpoint only.
        if key.alg != Algorithm::HS256 && data.claims.sub.starts_with("client:") {
            return Err(invalid("An identity provider cannot speak for an API client"));
        }
        let exp = data.claims.exp;
        Ok((actor_from(data.claims)?, exp))
    }
}

/// Reads a JWKS file: every key needs a `kid`, and is bound to one of RS256, ES256 (P-256) or
/// EdDSA (Ed25519), from its `alg` or, when absent, from its key type.
fn load_jwks(path: &std::path::Path) -> Result<HashMap<String, (Algorithm, DecodingKey)>, String> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read RENKEI_JWT_KEYS {}: {e}", path.display()))?;
    let set: JwkSet =
        serde_json::from_str(&text).map_err(|e| format!("RENKEI_JWT_KEYS {} is not a JWKS: {e}", path.display()))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let kid = jwk.common.key_id.clone().ok_or("every key of RENKEI_JWT_KEYS needs a kid")?;
        let inferred = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Some(Algorithm::ES256),
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => Some(Algorithm::EdDSA),
            _ => None,
        };
        let declared = jwk
            .common
            .key_algorithm
            .map(Algorithm::try_from)
            .transpose()
            .map_err(|_| format!("key {kid}: unsupported alg"))?;
        let alg = match (declared, inferred) {
            (Some(d), Some(i)) if d == i => d,
            (None, Some(i)) => i,
            _ => {
                return Err(format!("key {kid}: only RS256 (RSA), ES256 (P-256) and EdDSA (Ed25519) keys are accepted"))
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {kid}: {e}"))?;
        if keys.insert(kid.clone(), (alg, key)).is_some() {
            return Err(format!("RENKEI_JWT_KEYS names kid {kid} twice"));
        }
    }
    Ok(keys)
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
        iss: settings.issuer().to_owned(),
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
        JwtSettings {
            secret: Secret::new(vec![7; 32]),
            issuers: vec!["renkei".into()],
            audience: "renkei".into(),
            keys_file: None,
        }
    }

    #[test]
    fn signed_token_verifies_into_an_actor() {
        let org = uuid::Uuid::now_v7().to_string();
        let sub = uuid::Uuid::now_v7().to_string();
        let token =
            sign(&settings(), &sub, &org, &["admin".into(), "wizard".into()], chrono::Duration::hours(1)).unwrap();
        let actor = Verifier::new(&settings()).unwrap().verify(&token).unwrap();
        assert_eq!(actor.roles, [Role::Admin]);
        assert_eq!(actor.org.to_string(), org);
    }

    #[test]
    fn client_subjects_and_bad_subjects() {
        let org = uuid::Uuid::now_v7().to_string();
        let token = sign(&settings(), "client:his-01", &org, &[], chrono::Duration::hours(1)).unwrap();
        assert_eq!(
            Verifier::new(&settings()).unwrap().verify(&token).unwrap().subject,
            Subject::Client("his-01".into())
        );
        let token = sign(&settings(), "nobody", &org, &[], chrono::Duration::hours(1)).unwrap();
        assert_eq!(Verifier::new(&settings()).unwrap().verify(&token).unwrap_err().code(), "invalid_token");
    }

    #[test]
    fn a_remembered_token_still_expires_and_a_changed_one_is_checked_again() {
        let org = uuid::Uuid::now_v7().to_string();
        let sub = uuid::Uuid::now_v7().to_string();
        let token = sign(&settings(), &sub, &org, &["physician".into()], chrono::Duration::minutes(1)).unwrap();
        let verifier = Verifier::new(&settings()).unwrap();
        let now = Utc::now().timestamp();
        assert_eq!(verifier.verify_at(&token, now).unwrap().roles, [Role::Physician]);
        assert!(verifier.remembered(&token).is_some());
        assert_eq!(verifier.verify_at(&token, now + 60).unwrap().roles, [Role::Physician], "within the leeway");
        let late = verifier.verify_at(&token, now + 60 + LEEWAY_SECS as i64 + 2).unwrap_err();
        assert_eq!(late.code(), "invalid_token");
        assert!(format!("{late:?}").contains("expired"));
        // One character of the signature changed: not the remembered token, and not valid.
        let mut forged = token[..token.len() - 2].to_owned();
        forged.push_str(if token.ends_with("AA") { "BB" } else { "AA" });
        assert_eq!(verifier.verify_at(&forged, now).unwrap_err().code(), "invalid_token");
        assert!(verifier.remembered(&forged).is_none(), "failures are not remembered");
    }

    #[test]
    fn the_memory_of_verified_tokens_is_bounded() {
        let verifier = Verifier::new(&settings()).unwrap();
        let org = uuid::Uuid::now_v7().to_string();
        for _ in 0..VERIFIED_TOKENS + 10 {
            let sub = uuid::Uuid::now_v7().to_string();
            let token = sign(&settings(), &sub, &org, &[], chrono::Duration::hours(1)).unwrap();
            verifier.verify(&token).unwrap();
        }
        let remembered = verifier.verified.lock().unwrap().len();
        assert!(remembered <= VERIFIED_TOKENS && remembered > 0, "{remembered}");
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
