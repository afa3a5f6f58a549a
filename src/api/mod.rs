//! The HTTP face of Renkei: thin handlers, one file per area, every one in the OpenAPI document.

pub mod access;
pub mod audit;
pub mod bed_requests;
pub mod beds;
pub mod care_team;
pub mod cases;
pub mod clients;
pub mod cover;
pub mod docs;
pub mod events;
pub mod health;
pub mod organizations;
pub mod patients;
pub mod practitioners;
pub mod registrations;
pub mod schedule;
pub mod screening_templates;
pub mod screenings;
pub mod webhooks;

use actix_web::web::{self, ServiceConfig};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ApiError, FieldError, Problem};

/// Registers every endpoint. Handlers are registered with `.service(…)` so that each carries
/// its `#[utoipa::path]` and none is missing from the document. They are grouped in one scope per
/// collection: a request is matched against its collection's few patterns, not against all of
/// them in turn (each dynamic pattern is a regular expression; matching a case read against the
/// flat list took 12 % of the server's time in a profile under load).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(docs::openapi)
        .service(docs::page)
        .service(web::scope("/api/v1/auth").service(clients::token))
        .service(web::scope("/api/v1/clients").service(clients::create).service(clients::list).service(clients::remove))
        .service(
            web::scope("/api/v1/organizations")
                .service(organizations::create)
                .service(organizations::list)
                .service(organizations::get)
                .service(organizations::update)
                .service(schedule::add_shift)
                .service(schedule::list_shifts)
                .service(schedule::get_shift)
                .service(schedule::remove_shift)
                .service(beds::create)
                .service(beds::list)
                .service(beds::update)
                .service(beds::get_policy)
                .service(beds::put_policy),
        )
        .service(
            web::scope("/api/v1/practitioners")
                .service(practitioners::create)
                .service(practitioners::list)
                .service(practitioners::get)
                .service(practitioners::update)
                .service(schedule::add_absence)
                .service(schedule::list_absences)
                .service(schedule::get_absence)
                .service(schedule::remove_absence),
        )
        .service(
            web::scope("/api/v1/patients")
                .service(patients::create)
                .service(patients::list)
                .service(patients::get)
                .service(patients::update)
                .service(audit::access_log),
        )
        .service(
            web::scope("/api/v1/cases")
                .service(cases::create)
                .service(cases::list)
                .service(cases::get)
                .service(cases::update)
                .service(cases::activate)
                .service(cases::hold)
                .service(cases::resume)
                .service(cases::close)
                .service(cases::cancel)
                .service(cases::history)
                .service(care_team::team)
                .service(care_team::add)
                .service(care_team::get_member)
                .service(care_team::end)
                .service(care_team::set_primary)
                .service(care_team::set_secondary)
                .service(care_team::remove_secondary)
                .service(cover::cover)
                .service(cover::notice),
        )
        .service(
            web::scope("/api/v1/screening-templates")
                .service(screening_templates::create)
                .service(screening_templates::list)
                .service(screening_templates::get)
                .service(screening_templates::update)
                .service(screening_templates::publish),
        )
        .service(
            web::scope("/api/v1/screenings")
                .service(screenings::create)
                .service(screenings::list)
                .service(screenings::get)
                .service(screenings::update)
                .service(screenings::submit)
                .service(screenings::withdraw)
                .service(screenings::decline)
                .service(screenings::accept)
                .service(screenings::revise)
                .service(screenings::milestone),
        )
        .service(web::scope("/api/v1/bed-availability").service(beds::availability))
        .service(
            web::scope("/api/v1/backup-registrations")
                .service(registrations::create)
                .service(registrations::list)
                .service(registrations::get)
                .service(registrations::activate)
                .service(registrations::reject)
                .service(registrations::withdraw)
                .service(registrations::exchange),
        )
        .service(
            web::scope("/api/v1/bed-requests")
                .service(bed_requests::create)
                .service(bed_requests::list)
                .service(bed_requests::get)
                .service(bed_requests::accept)
                .service(bed_requests::decline)
                .service(bed_requests::cancel)
                .service(bed_requests::admit)
                .service(bed_requests::discharge)
                .service(bed_requests::retarget),
        )
        .service(web::scope("/api/v1/events").service(events::feed))
        .service(
            web::scope("/api/v1/webhooks")
                .service(webhooks::create)
                .service(webhooks::list)
                .service(webhooks::remove)
                .service(webhooks::deliveries)
                .service(webhooks::redeliver),
        )
        .service(web::scope("/api/v1/audit-events").service(audit::verify).service(audit::list));
}

/// A required UUID field of a body: `required` or `invalid_format` when it is not one.
pub(crate) fn required_id<T: std::str::FromStr>(
    field: &str,
    value: Option<String>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    match value {
        None => {
            errors.push(FieldError::new(field, "required", "is required"));
            None
        }
        Some(v) => v.parse().map_err(|_| errors.push(FieldError::new(field, "invalid_format", "must be a UUID"))).ok(),
    }
}

/// An optional UUID field or query parameter.
pub(crate) fn optional_id<T: std::str::FromStr>(
    field: &str,
    value: Option<String>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    value.and_then(|v| required_id(field, Some(v), errors))
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
            JSON over HTTP, JWT bearer authentication, RFC 9457 problem details for every error. \
            Every creating POST accepts an `Idempotency-Key` header (1-255 visible ASCII characters, scoped per \
            caller, kept 24 hours): a retry with the same body gets the first answer again (with \
            `Idempotent-Replayed: true`), the same key with another body is 422 `idempotency_key_reused`, and a \
            retry while the first is still running is 409 `idempotency_in_flight`.",
        license(name = "Apache-2.0")
    ),
    paths(
        health::healthz, health::readyz, health::metrics, docs::openapi, docs::page,
        clients::token, clients::create, clients::list, clients::remove,
        organizations::create, organizations::list, organizations::get, organizations::update,
        practitioners::create, practitioners::list, practitioners::get, practitioners::update,
        schedule::add_absence, schedule::list_absences, schedule::get_absence, schedule::remove_absence,
        schedule::add_shift, schedule::list_shifts, schedule::get_shift, schedule::remove_shift,
        patients::create, patients::list, patients::get, patients::update,
        cases::create, cases::list, cases::get, cases::update, cases::activate, cases::hold, cases::resume,
        cases::close, cases::cancel, cases::history,
        care_team::team, care_team::add, care_team::get_member, care_team::end, care_team::set_primary, care_team::set_secondary,
        care_team::remove_secondary,
        cover::cover, cover::notice,
        screening_templates::create, screening_templates::list, screening_templates::get,
        screening_templates::update, screening_templates::publish,
        screenings::create, screenings::list, screenings::get, screenings::update, screenings::submit,
        screenings::withdraw, screenings::decline, screenings::accept, screenings::revise, screenings::milestone,
        beds::create, beds::list, beds::update, beds::get_policy, beds::put_policy, beds::availability,
        registrations::create, registrations::list, registrations::get, registrations::activate,
        registrations::reject, registrations::withdraw, registrations::exchange,
        bed_requests::create, bed_requests::list, bed_requests::get, bed_requests::accept, bed_requests::decline,
        bed_requests::cancel, bed_requests::admit, bed_requests::discharge, bed_requests::retarget,
                        events::feed, webhooks::create, webhooks::list, webhooks::remove, webhooks::deliveries, webhooks::redeliver,
        audit::list, audit::verify, audit::access_log,
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Health, readiness, metrics and documentation"),
        (name = "auth", description = "API clients and the OAuth 2.0 client-credentials grant"),
        (name = "directory", description = "Organizations and practitioners of the region (DOMAIN.md §6)"),
        (name = "schedule", description = "Absences and on-call rosters, the facts cover resolution walks"),
        (name = "patients", description = "Home-care patients (visible to their teams and bases only)"),
        (name = "cases", description = "Cases of home care and their state machine (DOMAIN.md §1)"),
        (name = "care team", description = "Care teams and the primary/secondary physician handover (DOMAIN.md §2–3)"),
        (name = "cover", description = "Who covers the patient now, and the written coverage notice"),
        (name = "screening", description = "Discharge screening templates and sheets from hospitals (DOMAIN.md §4)"),
        (name = "beds", description = "Backup beds, respite policies and availability (DOMAIN.md §5)"),
        (name = "bed requests", description = "Bed requests: allocation that never double-books, expiry, re-targeting"),
                (name = "events", description = "Changes in commit order for partner systems: the feed and webhooks"),
        (name = "audit", description = "The hash-chained access log (DOMAIN.md §7)"),
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
