//! Authentication and authorization: bearer JWTs become an [`Actor`]; `policy` decides what
//! an actor may do. Deny by default.

pub mod jwt;
pub mod policy;

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
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
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
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
