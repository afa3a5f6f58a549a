//! The OpenAPI document and a docs page that needs no internet access.

use actix_web::{get, HttpResponse};

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", responses((status = 200, description = "OpenAPI document")))]
#[get("/api/v1/openapi.json")]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(super::openapi_json())
}

/// A human-readable reference rendered in the browser from the OpenAPI document; self-contained.
#[utoipa::path(get, path = "/api/v1/docs", tag = "operations", responses((status = 200, description = "HTML page", content_type = "text/html")))]
#[get("/api/v1/docs")]
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
        ))
        .body(include_str!("docs.html"))
}
