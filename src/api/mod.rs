//! The HTTP face of Renkei: thin handlers, one file per area, every one in the OpenAPI document.

pub mod docs;
pub mod health;
pub mod organizations;
pub mod practitioners;

use actix_web::web::ServiceConfig;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ApiError, FieldError, Problem};

/// Registers every endpoint. Handlers are registered with `.service(…)` so that each carries
/// its `#[utoipa::path]` and none is missing from the document.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(docs::openapi)
        .service(docs::page)
        .service(organizations::create)
        .service(organizations::list)
        .service(organizations::get)
        .service(organizations::update)
        .service(practitioners::create)
        .service(practitioners::list)
        .service(practitioners::get)
        .service(practitioners::update);
}

/// Anything no route matches.
pub async fn unmatched() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new(actix_web::http::StatusCode::NOT_FOUND, "not_found", "No such endpoint"))
}

/// The OpenAPI document of the whole API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Renkei API",
        description = "The open case-coordination API for home medical care in Japan (在宅医療・介護連携). \
            JSON over HTTP, JWT bearer authentication, RFC 9457 problem details for every error.",
        license(name = "Apache-2.0")
    ),
    paths(
        health::healthz, health::readyz, health::metrics, docs::openapi, docs::page,
        organizations::create, organizations::list, organizations::get, organizations::update,
        practitioners::create, practitioners::list, practitioners::get, practitioners::update,
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Health, readiness, metrics and documentation"),
        (name = "directory", description = "Organizations and practitioners of the region (DOMAIN.md §6)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The document as committed in `openapi/openapi.json` (pretty, with a final newline).
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
