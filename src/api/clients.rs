//! API clients of partner systems and the OAuth 2.0 client-credentials grant
//! (`POST /api/v1/auth/token`). Secrets are shown once and stored as argon2 hashes.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{delete, get, post, web, HttpMessage, HttpRequest, HttpResponse};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::jwt::{self, JwtSettings};
use crate::auth::{Actor, Role};
use crate::db::clients::{self, Client};
use crate::db::{organizations, Db};
use crate::domain::ids::OrganizationId;
use crate::domain::text;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::json::Json;

/// An argon2 hash of a random value nobody knows, checked when the client id is unknown.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_secret(&uuid::Uuid::now_v7().to_string()).unwrap_or_default())
}

/// An argon2id hash (PHC string) of a secret, with a random salt.
fn hash_secret(secret: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default().hash_password(secret.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// At most this many argon2 hashes run at once in the process. Each takes about 19 MiB and tens of
/// milliseconds of a core, on a worker's bounded blocking pool (DESIGN §16): a burst of token
/// requests would otherwise take every thread of the pool and queue the worker's database calls
/// behind it. Waiting for a turn holds no thread.
const HASHES_AT_ONCE: usize = 2;

/// Runs an argon2 computation on the blocking pool, in turn with the others.
async fn hashing<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    static TURNS: std::sync::LazyLock<tokio::sync::Semaphore> =
        std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(HASHES_AT_ONCE));
    let _turn = TURNS.acquire().await.map_err(ApiError::internal)?;
    web::block(f).await.map_err(ApiError::internal)
}

/// Lifetime of client-credentials tokens.
#[derive(Debug, Clone, Copy)]
pub struct TokenTtl(pub std::time::Duration);

fn admin(actor: &Actor) -> ApiResult<()> {
    if actor.has(Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only admins manage API clients"))
    }
}

/// The body of `POST /api/v1/clients`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    #[schema(value_type = String, example = "千代田中央病院 退院支援システム")]
    pub name: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub organization_id: Option<String>,
    #[schema(value_type = Vec<Role>)]
    pub roles: Option<Vec<String>>,
}

/// A new client, with its secret: shown this once, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientCreated {
    #[serde(flatten)]
    pub client: Client,
    pub client_secret: String,
}

fn parse_input(input: ClientInput) -> ApiResult<(String, OrganizationId, Vec<Role>)> {
    let mut errors = Vec::new();
    let name = text::required_text("name", input.name, 200, &mut errors);
    let org: Option<OrganizationId> = super::required_id("organization_id", input.organization_id, &mut errors);
    let mut roles = Vec::new();
    match input.roles {
        None => errors.push(FieldError::new("roles", "required", "is required")),
        Some(given) if given.is_empty() => errors.push(FieldError::new("roles", "required", "needs at least one role")),
        Some(given) => {
            for (i, r) in given.iter().enumerate() {
                match Role::parse(r) {
                    Some(Role::Admin) => errors.push(FieldError::new(
                        format!("roles[{i}]"),
                        "not_allowed",
                        "an API client cannot be an admin",
                    )),
                    Some(role) if !roles.contains(&role) => roles.push(role),
                    Some(_) => {}
                    None => errors.push(FieldError::new(
                        format!("roles[{i}]"),
                        "unknown_code",
                        format!("'{r}' is not a role"),
                    )),
                }
            }
        }
    }
    match (name, org) {
        (Some(name), Some(org)) if errors.is_empty() => Ok((name, org, roles)),
        _ => Err(ApiError::validation(errors)),
    }
}

/// Registers an API client bound to one organization and a set of roles (admins).
#[utoipa::path(
    post, path = "/api/v1/clients", tag = "auth",
    request_body = ClientInput,
    responses(
        (status = 201, description = "Created; the secret is in this response only", body = ClientCreated),
        (status = 400, description = "Invalid body or unknown organization", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("")]
pub async fn create(
    actor: Actor,
    db: web::Data<Db>,
    body: Result<Json<ClientInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    admin(&actor)?;
    let (name, org, roles) = parse_input(body?.0)?;
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let to_hash = secret.clone();
    let hash = hashing(move || hash_secret(&to_hash)).await?.map_err(ApiError::internal)?;
    let created_by = actor.sub();
    let client = db
        .write(move |c| {
            if !organizations::exists(c, org)? {
                return Err(ApiError::invalid_field("organization_id", "unknown_reference", "names no organization"));
            }
            Ok(clients::insert(c, &name, org, &roles, &hash, &created_by)?)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/clients/{}", client.id)))
        .json(ClientCreated { client, client_secret: secret }))
}

/// The live API clients (admins); secrets are never shown again.
#[utoipa::path(
    get, path = "/api/v1/clients", tag = "auth",
    responses(
        (status = 200, description = "All live clients", body = Vec<Client>),
        (status = 403, description = "Not an admin", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("")]
pub async fn list(actor: Actor, db: web::Data<Db>) -> ApiResult<HttpResponse> {
    admin(&actor)?;
    let items = db.read(|c| Ok::<_, ApiError>(clients::list(c)?)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

/// Deletes a client: its tokens stop working at once.
#[utoipa::path(
    delete, path = "/api/v1/clients/{id}", tag = "auth",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such client", body = Problem),
    ),
    security(("bearer" = []))
)]
#[delete("/{id}")]
pub async fn remove(actor: Actor, db: web::Data<Db>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    admin(&actor)?;
    let id = id.into_inner();
    let deleted = db.write(move |c| Ok::<_, ApiError>(clients::delete(c, &id)?)).await?;
    if !deleted {
        return Err(ApiError::not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The token request (RFC 6749 §4.4), form-encoded or JSON.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TokenRequest {
    /// Must be `client_credentials`.
    pub grant_type: Option<String>,
    /// Or in an HTTP Basic `Authorization` header.
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Ignored: a client's token carries the client's roles.
    pub scope: Option<String>,
}

/// A bearer token for the client.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
}

fn oauth_error(status: StatusCode, error: &'static str, detail: &str) -> ApiError {
    let e = if status == StatusCode::UNAUTHORIZED {
        ApiError::unauthorized("invalid_client", detail.to_owned())
    } else {
        ApiError::new(status, error, detail.to_owned())
    };
    // OAuth clients read `error`; everyone else reads `code`.
    e.with("error", error)
}

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// OAuth 2.0 client credentials → a short-lived JWT carrying the client's organization and roles.
#[utoipa::path(
    post, path = "/api/v1/auth/token", tag = "auth",
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "A token", body = TokenResponse),
        (status = 400, description = "unsupported_grant_type or invalid_request", body = Problem),
        (status = 401, description = "invalid_client", body = Problem),
    )
)]
#[post("/token")]
pub async fn token(
    req: HttpRequest,
    body: web::Bytes,
    db: web::Data<Db>,
    settings: web::Data<JwtSettings>,
    ttl: web::Data<TokenTtl>,
) -> ApiResult<HttpResponse> {
    if body.len() > 16 * 1024 {
        return Err(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "The request is too large"));
    }
    let is_json = req.content_type().contains("json");
    let parsed: Result<TokenRequest, String> =
        if is_json { serde_json::from_slice(&body).map_err(|e| e.to_string()) } else { serde_urlencoded_from(&body) };
    let request = parsed
        .map_err(|_| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "The token request is malformed"))?;
    if request.grant_type.as_deref() != Some("client_credentials") {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only grant_type=client_credentials is supported",
        ));
    }
    let (client_id, secret) = match (basic_credentials(&req), request.client_id, request.client_secret) {
        (Some(pair), _, _) => pair,
        (None, Some(id), Some(secret)) => (id, secret),
        _ => {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "client_id and client_secret are required",
            ))
        }
    };
    let lookup_id = client_id.clone();
    let found = db.read(move |c| Ok::<_, ApiError>(clients::credentials(c, &lookup_id)?)).await?;
    let refused = || oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unknown client or wrong secret");
    // An unknown client costs the same argon2 check as a known one: timing tells nothing.
    let (client, hash) = match found {
        Some((client, hash)) => (Some(client), Some(hash)),
        None => (None, None),
    };
    let ok = hashing(move || {
        let hash = hash.unwrap_or_else(|| dummy_hash().to_owned());
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok())
    })
    .await?;
    let Some(client) = client.filter(|_| ok) else {
        tracing::warn!(client_id = %client_id, "client authentication failed");
        return Err(refused());
    };
    let roles: Vec<String> = client.roles.iter().filter_map(|r| crate::db::to_code(r).ok()).collect();
    let lifetime = chrono::Duration::from_std(ttl.0).map_err(ApiError::internal)?;
    let access_token =
        jwt::sign(&settings, &format!("client:{}", client.id), &client.organization_id.to_string(), &roles, lifetime)
            .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(TokenResponse { access_token, token_type: "Bearer", expires_in: ttl.0.as_secs() }))
}

/// `application/x-www-form-urlencoded` into a token request.
fn serde_urlencoded_from(body: &[u8]) -> Result<TokenRequest, String> {
    web::Query::<TokenRequest>::from_query(std::str::from_utf8(body).map_err(|e| e.to_string())?)
        .map(web::Query::into_inner)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// A burst of hashes runs two at a time, each on a blocking thread, and all of them finish.
    #[test]
    fn hashes_take_turns() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let done = runtime.block_on(async {
            let mut burst = tokio::task::JoinSet::new();
            for i in 0..6 {
                let (running, most) = (running.clone(), most.clone());
                burst.spawn(hashing(move || {
                    most.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(40));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                }));
            }
            let mut done: Vec<usize> = Vec::new();
            while let Some(result) = burst.join_next().await {
                done.push(result.expect("task").expect("hash"));
            }
            done.sort_unstable();
            done
        });
        assert_eq!(done, (0..6).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), HASHES_AT_ONCE);
    }
}
