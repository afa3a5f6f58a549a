//! Optimistic concurrency: every mutable resource has a `version`, sent as a strong `ETag`;
//! a `PATCH` must carry `If-Match` (428 without it, 412 when it is stale).

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest};

use crate::error::ApiError;

/// The ETag of a resource at `version`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// The `If-Match` precondition of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `If-Match: *`: any current version.
    Any,
    /// One or more ETags; the request proceeds if one names the current version.
    Versions(Vec<i64>),
}

impl IfMatch {
    /// Checks the precondition against the current version: 412 `version_mismatch` if it fails.
    pub fn check(&self, current: i64) -> Result<(), ApiError> {
        match self {
            IfMatch::Any => Ok(()),
            IfMatch::Versions(v) if v.contains(&current) => Ok(()),
            IfMatch::Versions(_) => Err(ApiError::version_mismatch(current)),
        }
    }

    fn parse(value: &str) -> Self {
        if value.trim() == "*" {
            return IfMatch::Any;
        }
        // Weak tags never match under If-Match (RFC 9110 §13.1.1): they are ignored.
        IfMatch::Versions(
            value.split(',').filter_map(|tag| tag.trim().strip_prefix('"')?.strip_suffix('"')?.parse().ok()).collect(),
        )
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let values: Vec<&str> = req.headers().get_all(header::IF_MATCH).filter_map(|v| v.to_str().ok()).collect();
        ready(if values.is_empty() {
            Err(ApiError::precondition_required())
        } else {
            Ok(IfMatch::parse(&values.join(",")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_star_and_ignores_weak_tags() {
        assert_eq!(IfMatch::parse("*"), IfMatch::Any);
        assert_eq!(IfMatch::parse("\"3\", \"4\""), IfMatch::Versions(vec![3, 4]));
        assert_eq!(IfMatch::parse("W/\"3\""), IfMatch::Versions(vec![]));
        assert!(IfMatch::parse("\"3\"").check(3).is_ok());
        assert_eq!(IfMatch::parse("garbage").check(3).unwrap_err().code(), "version_mismatch");
    }
}
