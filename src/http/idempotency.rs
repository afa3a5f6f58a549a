//! `Idempotency-Key` on every creating `POST` (API.md): the first response is stored per caller
//! and key and replayed to a retry with the same body; the same key with another body is 422; a
//! retry while the first is still running is 409. A concurrent duplicate never runs twice: the
//! key is claimed in the database before the handler runs.

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::auth::jwt::Verifier;
use crate::db::idempotency::{self, Claim, Stored};
use crate::db::{Db, DbError};
use crate::error::ApiError;
use crate::http::json::MAX_BODY_BYTES;

pub const HEADER: &str = "idempotency-key";

/// Headers of the first response that a replay repeats.
const KEPT: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

fn key_of(req: &ServiceRequest) -> Option<Result<String, ApiError>> {
    let value = req.headers().get(HEADER)?;
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    Some(key.map(str::to_owned).ok_or_else(|| {
        ApiError::invalid_field("Idempotency-Key", "invalid_format", "must be 1 to 255 visible ASCII characters")
    }))
}

/// Middleware: only `POST`s that carry the header and a valid token are concerned; anything
/// else passes through untouched (the handler answers missing or bad tokens itself).
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = match (req.method() == Method::POST).then(|| key_of(&req)).flatten() {
        None => return next.call(req).await.map(ServiceResponse::map_into_boxed_body),
        Some(Err(e)) => return Ok(req.error_response(e)),
        Some(Ok(key)) => key,
    };
    let caller = req
        .app_data::<web::Data<Verifier>>()
        .zip(req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
        .and_then(|(verifier, value)| verifier.verify(value.get(7..)?.trim()).ok())
        .map(|actor| actor.sub());
    let (Some(caller), Some(db)) = (caller, req.app_data::<web::Data<Db>>().cloned()) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    // The body is part of the request's identity: read it, hash it, hand it back.
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return Ok(req.error_response(ApiError::bad_request("invalid_body", "The request body could not be read")));
        };
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Ok(req.error_response(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large",
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let hash =
        hex::encode(Sha256::new().chain_update(req.path().as_bytes()).chain_update([0]).chain_update(&body).finalize());
    req.set_payload(actix_web::dev::Payload::from(body));

    let (c2, k2) = (caller.clone(), key.clone());
    let claim = db
        .write(move |c| match idempotency::claim(c, &c2, &k2, &hash) {
            Err(DbError::Unique(_)) => Err(in_flight()),
            other => Ok::<_, ApiError>(other?),
        })
        .await;
    match claim {
        Err(e) => Ok(req.error_response(e)),
        Ok(Claim::InFlight) => Ok(req.error_response(in_flight())),
        Ok(Claim::Mismatch) => Ok(req.error_response(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request",
        ))),
        Ok(Claim::Replay(stored)) => {
            let mut res = HttpResponse::build(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK));
            for (name, value) in &stored.headers {
                res.insert_header((name.as_str(), value.as_str()));
            }
            res.insert_header(("idempotent-replayed", "true"));
            Ok(req.into_response(res.body(stored.body)))
        }
        Ok(Claim::New) => {
            let res = next.call(req).await?;
            let (http_req, res) = res.into_parts();
            let status = res.status();
            let headers: Vec<(String, String)> = KEPT
                .iter()
                .filter_map(|h| Some((h.as_str().to_owned(), res.headers().get(h)?.to_str().ok()?.to_owned())))
                .collect();
            let (res, body) = res.into_parts();
            let bytes = to_bytes(body).await.map_err(|_| ApiError::internal("the response body could not be read"))?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let stored = Stored { status: status.as_u16(), headers, body: text };
            // A server failure is not an answer worth repeating: the retry runs again. Saving is
            // retried while the writer is only busy: a key left in flight would refuse the
            // client's retries, then run the change again once it is taken for abandoned.
            let mut attempt = 0;
            let saved = loop {
                let (caller, key, stored) = (caller.clone(), key.clone(), stored.clone());
                let saved = db
                    .write(move |c| {
                        if status.is_server_error() {
                            idempotency::release(c, &caller, &key)
                        } else {
                            idempotency::complete(c, &caller, &key, &stored)
                        }
                        .map_err(ApiError::from)
                    })
                    .await;
                match saved {
                    Err(e) if e.status() == actix_web::http::StatusCode::SERVICE_UNAVAILABLE && attempt < 3 => {
                        attempt += 1;
                        actix_web::rt::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                    }
                    other => break other,
                }
            };
            if let Err(e) = saved {
                tracing::error!(code = e.code(), "could not store an idempotent response");
            }
            Ok(ServiceResponse::new(http_req, res.set_body(bytes).map_into_boxed_body()))
        }
    }
}

fn in_flight() -> ApiError {
    ApiError::conflict(
        "idempotency_in_flight",
        "A request with this Idempotency-Key is still being processed; retry shortly",
    )
}
