//! One error type for the whole API, rendered as RFC 9457 `application/problem+json`.
//!
//! Every failure a client can see goes through [`ApiError`]: handler errors, extractor errors
//! (JSON, path, query), authentication and database errors. Each carries a stable snake_case
//! `code` that clients may branch on; the human `detail` may change. Internal causes are logged
//! with the request id and never put in a body.

use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::http::request_id;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request, as reported in `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Where the problem is: a JSON path into the body (`answers.poverty`), or a parameter name.
    pub field: String,
    /// Stable machine code (`required`, `invalid_format`, `unknown_field`, `too_long`, ...).
    pub code: String,
    /// A sentence for a person.
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), code: code.into(), message: message.into() }
    }
}

/// The body of every error response (RFC 9457 problem details, with Renkei's extensions).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem: `urn:renkei:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable snake_case code, e.g. `validation_failed`, `not_found`, `version_mismatch`.
    pub code: String,
    /// Field-level problems (validation only; empty otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The `X-Request-Id` of the request, to quote when asking for help.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Extra members specific to a code (e.g. `current_version`, `existing_id`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

/// An error answered to the client (boxed: it travels through many `Result`s).
pub struct ApiError(Box<Parts>);

struct Parts {
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    extra: Map<String, Value>,
    retry_after: Option<u32>,
    www_authenticate: Option<&'static str>,
    /// The internal cause, logged but never shown.
    cause: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self(Box::new(Parts {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            extra: Map::new(),
            retry_after: None,
            www_authenticate: None,
            cause: None,
        }))
    }

    /// 400 `validation_failed` with field-level errors.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        let mut e = Self::new(StatusCode::BAD_REQUEST, "validation_failed", detail);
        e.0.errors = errors;
        e
    }

    /// 400 `validation_failed` for a single field.
    pub fn invalid_field(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, code, message)])
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 401 for a missing or unusable token; `detail` says which, never echoing the token.
    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, code, detail);
        e.0.www_authenticate = Some(if code == "missing_token" {
            "Bearer realm=\"renkei\""
        } else {
            "Bearer realm=\"renkei\", error=\"invalid_token\""
        });
        e
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404: the same answer whether the object is missing or merely invisible to the caller.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such resource, or it is not visible to you")
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// 428: a PATCH without `If-Match`.
    pub fn precondition_required() -> Self {
        Self::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "This request must carry If-Match with the resource's current ETag",
        )
    }

    /// 412: `If-Match` names a version that is no longer current.
    pub fn version_mismatch(current_version: i64) -> Self {
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "version_mismatch",
            format!("The resource has changed; its current version is {current_version}"),
        )
        .with("current_version", current_version)
    }

    /// 503 with `Retry-After`: the database is busy or the pool exhausted; safe to retry.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "service_unavailable", detail);
        e.0.retry_after = Some(1);
        e
    }

    /// 500 with an opaque body; `cause` goes to the log only.
    pub fn internal(cause: impl fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An unexpected error occurred; it has been logged with this request id",
        );
        e.0.cause = Some(cause.to_string());
        e
    }

    /// Adds an extension member to the body.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.extra.insert(key.to_owned(), value.into());
        self
    }

    pub fn code(&self) -> &'static str {
        self.0.code
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn field_errors(&self) -> &[FieldError] {
        &self.0.errors
    }

    fn title(&self) -> String {
        self.0.status.canonical_reason().unwrap_or("Error").to_owned()
    }

    pub fn to_problem(&self) -> Problem {
        Problem {
            type_: format!("urn:renkei:problem:{}", self.0.code),
            title: self.title(),
            status: self.0.status.as_u16(),
            detail: self.0.detail.clone(),
            code: self.0.code.to_owned(),
            errors: self.0.errors.clone(),
            request_id: request_id::current(),
            extra: self.0.extra.clone(),
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.0.status.as_u16())
            .field("code", &self.0.code)
            .field("detail", &self.0.detail)
            .field("cause", &self.0.cause)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.0.status.as_u16(), self.0.code, self.0.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(cause) = &self.0.cause {
            tracing::error!(code = self.0.code, cause = %cause, "request failed");
        } else if self.0.status.is_server_error() {
            tracing::warn!(code = self.0.code, detail = %self.0.detail, "request refused");
        }
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_else(|_| b"{}".to_vec());
        let mut res = HttpResponse::build(self.0.status);
        res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if let Some(secs) = self.0.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(challenge) = self.0.www_authenticate {
            res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge)));
        }
        res.body(body)
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        use crate::db::DbError;
        match e {
            DbError::NotFound => ApiError::not_found(),
            DbError::Busy(why) => ApiError::unavailable(format!("The database is busy ({why}); retry shortly")),
            DbError::Unique(constraint) => {
                ApiError::conflict("conflict", format!("This conflicts with an existing record ({constraint})"))
            }
            DbError::Rule(rule) => {
                ApiError::conflict("conflict", format!("A rule of the data refused this change ({rule})"))
            }
            DbError::ForeignKey => {
                ApiError::conflict("reference_conflict", "A referenced record does not exist or is still in use")
            }
            DbError::Other(cause) => ApiError::internal(cause),
        }
    }
}

/// Result alias for handlers and services.
pub type ApiResult<T> = Result<T, ApiError>;
