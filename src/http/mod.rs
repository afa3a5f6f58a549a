//! HTTP plumbing shared by every endpoint: the request-id/metrics middleware, the JSON body
//! extractor, conditional requests and pagination. Nothing here knows the domain.

pub mod conditional;
pub mod idempotency;
pub mod json;
pub mod metrics;
pub mod pagination;
pub mod request_id;

use actix_web::http::header;
use actix_web::HttpResponse;
use serde::Serialize;

/// `201 Created` with `Location`, `ETag` and the resource as JSON.
pub fn created<T: Serialize>(location: String, version: i64, body: &T) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::ETAG, conditional::etag(version)))
        .json(body)
}

/// `200 OK` with `ETag` and the resource as JSON.
pub fn ok_versioned<T: Serialize>(version: i64, body: &T) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::ETAG, conditional::etag(version))).json(body)
}
