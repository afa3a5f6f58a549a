//! The JSON body extractor every endpoint uses: content type checked, 256 KiB at most (413),
//! nesting at most 32 deep, unknown fields refused (by the types), and every failure a
//! problem+json with the path of the offending field.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Deepest accepted nesting of arrays and objects.
pub const MAX_DEPTH: usize = 32;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = match req.mime_type() {
            Ok(Some(m)) => {
                m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
            }
            _ => false,
        };
        let declared_too_large = req
            .headers()
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .is_some_and(|n| n > MAX_BODY_BYTES);
        let mut payload = payload.take();
        Box::pin(async move {
            if declared_too_large {
                return Err(too_large());
            }
            if !is_json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "The body must be JSON, sent with Content-Type: application/json",
                ));
            }
            let mut body = Vec::new();
            while let Some(chunk) = payload.next().await {
                let chunk =
                    chunk.map_err(|_| ApiError::bad_request("invalid_body", "The request body could not be read"))?;
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            parse(&body).map(Json)
        })
    }
}

/// A body that may be left out (a transition with optional parameters): `None` when empty,
/// otherwise checked exactly as [`Json`] checks it.
pub fn optional<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let is_json = matches!(req.mime_type(), Ok(Some(m))
        if m.type_() == "application" && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The body must be JSON, sent with Content-Type: application/json",
        ));
    }
    parse(body).map(Some)
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("The request body is larger than {} KiB", MAX_BODY_BYTES / 1024),
    )
}

/// Parses a JSON body into `T`, with the same errors as the extractor.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("invalid_json", "The request body is empty; a JSON document is expected"));
    }
    if nesting_depth_exceeds(body, MAX_DEPTH) {
        return Err(ApiError::bad_request(
            "json_too_deep",
            format!("JSON nested deeper than {MAX_DEPTH} levels is refused"),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        from_serde(&path, e.into_inner())
    })?;
    de.end().map_err(|e| from_serde(".", e))?;
    Ok(value)
}

/// Whether arrays and objects nest deeper than `max` (strings are skipped correctly).
fn nesting_depth_exceeds(body: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn from_serde(path: &str, e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => ApiError::validation(vec![field_error(path, &e.to_string())]),
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
            "invalid_json",
            format!("The body is not valid JSON (line {}, column {})", e.line(), e.column()),
        ),
    }
}

/// Turns a serde message into a field error; `path` is where serde stopped (`.` for the root).
pub fn field_error(path: &str, message: &str) -> FieldError {
    let message = message.split(" at line ").next().unwrap_or(message);
    let join = |name: &str| {
        if path == "." || path.is_empty() {
            name.to_owned()
        } else if path == name || path.ends_with(&format!(".{name}")) {
            // serde_path_to_error already stepped into the unknown field.
            path.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    let quoted = || message.split('`').nth(1).unwrap_or("").to_owned();
    if message.starts_with("missing field") {
        FieldError::new(join(&quoted()), "required", "is required")
    } else if message.starts_with("unknown field") {
        FieldError::new(join(&quoted()), "unknown_field", "is not a field of this resource")
    } else if message.starts_with("unknown variant") {
        FieldError::new(path, "unknown_code", format!("'{}' is not a known code", quoted()))
    } else if message.starts_with("invalid type") {
        FieldError::new(path, "invalid_type", message.replace("invalid type: ", "has the wrong type: "))
    } else if message.starts_with("duplicate field") {
        FieldError::new(join(&quoted()), "duplicate_field", "is given twice")
    } else {
        FieldError::new(path, "invalid_value", message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        tags: Option<Vec<String>>,
    }

    #[test]
    fn depth_counts_only_structure_outside_strings() {
        let deep = "[".repeat(33) + &"]".repeat(33);
        assert!(nesting_depth_exceeds(deep.as_bytes(), 32));
        let ok = "[".repeat(32) + &"]".repeat(32);
        assert!(!nesting_depth_exceeds(ok.as_bytes(), 32));
        let in_string = format!("{{\"a\": \"{}\\\"\"}}", "[".repeat(100));
        assert!(!nesting_depth_exceeds(in_string.as_bytes(), 32));
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse::<Body>(br#"{"name": "x", "colour": 1}"#).unwrap_err();
        assert_eq!(e.field_errors()[0].field, "colour");
        assert_eq!(e.field_errors()[0].code, "unknown_field");
        let e = parse::<Body>(br#"{"tags": []}"#).unwrap_err();
        assert_eq!(e.field_errors()[0].field, "name");
        assert_eq!(e.field_errors()[0].code, "required");
        let e = parse::<Body>(br#"{"name": "x", "tags": ["a", 2]}"#).unwrap_err();
        assert_eq!(e.field_errors()[0].field, "tags[1]");
        assert_eq!(e.field_errors()[0].code, "invalid_type");
        assert_eq!(parse::<Body>(b"{\"name\": ").unwrap_err().code(), "invalid_json");
        assert_eq!(parse::<Body>(b"{\"name\": \"x\"} trailing").unwrap_err().code(), "invalid_json");
        assert_eq!(parse::<Body>(b"  ").unwrap_err().code(), "invalid_json");
    }
}
