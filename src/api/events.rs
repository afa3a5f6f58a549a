//! `GET /api/v1/events`: the caller's visible changes in commit order, without gaps or
//! duplicates, waiting for new ones on request (long polling).

use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::{Audit, Target};
use crate::auth::{policy, Actor, Role};
use crate::db::events::{self, Event, EventScope};
use crate::db::Db;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::sequencer::Sequencer;

/// Query of `GET /api/v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The last sequence number seen (`next_after` of the previous answer); 0 from the start.
    #[param(value_type = Option<i64>)]
    after: Option<String>,
    /// Comma-separated event types (e.g. `case.activated,bed_request.accepted`).
    types: Option<String>,
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// Seconds to wait for new events when there are none yet (0–30).
    #[param(value_type = Option<u32>)]
    wait: Option<String>,
}

/// One answer of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    pub items: Vec<Event>,
    /// Pass as `after` to continue.
    pub next_after: i64,
}

/// Which events an actor sees: a base's coordinators those of its cases and of the sheets sent
/// to it; a hospital's discharge staff its sheets, its bed managers its beds' requests and
/// registrations; team members those of their cases now.
pub fn scope(actor: &Actor) -> EventScope {
    let cases = policy::case_scope(actor);
    let mut hospital_types = Vec::new();
    if actor.has(Role::HospitalDischarge) {
        hospital_types.push("screening");
    }
    if actor.has(Role::HospitalBedManager) {
        hospital_types.extend(["bed_request", "backup_registration"]);
    }
    EventScope {
        org_a: cases.managing_org,
        org_b: (!hospital_types.is_empty()).then_some(actor.org),
        org_b_types: hospital_types,
        member: cases.member,
    }
}

fn number(field: &str, raw: Option<String>, default: i64, max: i64, errors: &mut Vec<FieldError>) -> i64 {
    match raw.map(|r| r.parse::<i64>()) {
        None => default,
        Some(Ok(n)) if (0..=max).contains(&n) => n,
        Some(_) => {
            errors.push(FieldError::new(field, "out_of_range", format!("must be a whole number from 0 to {max}")));
            default
        }
    }
}

/// The caller's visible events after `after`, in commit order.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events",
    params(FeedQuery),
    responses(
        (status = 200, description = "Events in commit order (possibly none after waiting)", body = FeedPage),
        (status = 400, description = "Invalid query", body = Problem),
        (status = 403, description = "The role sees no events", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("")]
pub async fn feed(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    sequencer: web::Data<Sequencer>,
    query: web::Query<FeedQuery>,
) -> ApiResult<HttpResponse> {
    let result = read(&actor, &db, &sequencer, query.into_inner()).await;
    let page = audit.record(&actor, Target::collection("event.list", "event"), result).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn read(actor: &Actor, db: &Db, sequencer: &Sequencer, q: FeedQuery) -> ApiResult<FeedPage> {
    let scope = scope(actor);
    if scope.is_empty() {
        return Err(ApiError::forbidden("Your role sees no events"));
    }
    let mut errors = Vec::new();
    let after = number("after", q.after, 0, i64::MAX, &mut errors);
    let limit = number("limit", q.limit, 50, 200, &mut errors).max(1);
    let wait = number("wait", q.wait, 0, 30, &mut errors);
    let types: Vec<String> =
        q.types.unwrap_or_default().split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
    for t in &types {
        if !events::TYPES.contains(&t.as_str()) {
            errors.push(FieldError::new("types", "unknown_code", format!("'{t}' is not an event type")));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.unsigned_abs());
    loop {
        sequencer.catch_up_events().await?;
        let (s, t) = (scope.clone(), types.clone());
        let items = db.read(move |c| Ok::<_, ApiError>(events::list(c, &s, after, &t, limit)?)).await?;
        if !items.is_empty() || tokio::time::Instant::now() >= deadline {
            let next_after = items.last().map_or(after, |e| e.seq);
            return Ok(FeedPage { items, next_after });
        }
        // Poll the database: it is what every instance shares.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
