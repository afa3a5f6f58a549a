//! Authentication and authorization: bearer JWTs become an [`Actor`]; `policy` decides what
//! an actor may do. Deny by default.

pub mod jwt;
pub mod policy;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::ids::{OrganizationId, PractitionerId};
use crate::error::ApiError;

/// A role a token may carry (API.md). Unknown role names in a token grant nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Coordinator,
    Physician,
    Nurse,
    CareManager,
    Pharmacist,
    Therapist,
    Msw,
    HospitalDischarge,
    HospitalBedManager,
    MunicipalViewer,
    Auditor,
}

impl Role {
    pub fn parse(name: &str) -> Option<Role> {
        serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
    }
}

/// Who is calling: a practitioner of the directory, or an API client of a partner system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Practitioner(PractitionerId),
    Client(String),
}

/// The authenticated caller, from the verified token's claims.
#[derive(Debug, Clone)]
pub struct Actor {
    pub subject: Subject,
    pub org: OrganizationId,
    pub roles: Vec<Role>,
}

impl Actor {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    /// The token subject as written in history and logs of changes.
    pub fn sub(&self) -> String {
        match &self.subject {
            Subject::Practitioner(id) => id.to_string(),
            Subject::Client(id) => format!("client:{id}"),
        }
    }
}

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verified = authenticate(req);
        let db = req.app_data::<web::Data<crate::db::Db>>().cloned();
        let cache = req.app_data::<web::Data<ActiveCache>>().cloned();
        Box::pin(async move {
            let actor = verified?;
            match (db, cache) {
                (Some(db), Some(cache)) => still_valid(&db, &cache, &actor).await.map(|()| actor),
                _ => Err(ApiError::internal("authentication is not configured")),
            }
        })
    }
}

/// How long an instance may keep believing a practitioner is active.
const ACTIVE_TTL: Duration = Duration::from_secs(60);

/// Per-instance memory of practitioners' `active` flag (at most a minute old), so that a
/// deactivated practitioner's tokens stop working without a query per request.
#[derive(Default)]
pub struct ActiveCache {
    seen: Mutex<HashMap<PractitionerId, (Option<bool>, Instant)>>,
}

impl ActiveCache {
    fn get(&self, who: PractitionerId) -> Option<Option<bool>> {
        let seen = self.seen.lock().ok()?;
        seen.get(&who).filter(|(_, at)| at.elapsed() < ACTIVE_TTL).map(|(active, _)| *active)
    }

    fn put(&self, who: PractitionerId, active: Option<bool>) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() > 50_000 {
                seen.clear();
            }
            seen.insert(who, (active, Instant::now()));
        }
    }

    /// Forgets a practitioner at once (this instance changed them).
    pub fn forget(&self, who: PractitionerId) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(&who);
        }
    }
}

/// A deleted API client's tokens stop working at once (checked on every request); a
/// deactivated practitioner's within a minute (cached), at once on the instance that did it.
async fn still_valid(db: &crate::db::Db, cache: &ActiveCache, actor: &Actor) -> Result<(), ApiError> {
    match &actor.subject {
        Subject::Client(id) => {
            let id = id.clone();
            let live = db.read(move |c| Ok::<_, ApiError>(crate::db::clients::is_live(c, &id)?)).await?;
            if !live {
                return Err(ApiError::unauthorized("invalid_token", "The API client of this token has been deleted"));
            }
        }
        Subject::Practitioner(who) => {
            let who = *who;
            let active = match cache.get(who) {
                Some(active) => active,
                None => {
                    let active = db.read(move |c| Ok::<_, ApiError>(crate::db::practitioners::active(c, who)?)).await?;
                    cache.put(who, active);
                    active
                }
            };
            if active == Some(false) {
                return Err(ApiError::unauthorized(
                    "invalid_token",
                    "The practitioner of this token has been deactivated",
                ));
            }
        }
    }
    Ok(())
}

fn authenticate(req: &HttpRequest) -> Result<Actor, ApiError> {
    let Some(verifier) = req.app_data::<web::Data<jwt::Verifier>>() else {
        return Err(ApiError::internal("the token verifier is not configured"));
    };
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing_token", "This endpoint needs Authorization: Bearer <token>"))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "The Authorization header must be: Bearer <token>"))?;
    verifier.verify(token)
}
