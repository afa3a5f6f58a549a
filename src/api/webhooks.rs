//! `/api/v1/webhooks`: partner organizations subscribe a URL to event types; deliveries are
//! signed, retried with backoff, logged per attempt, and can be sent again by hand.

use actix_web::{delete, get, post, web, HttpResponse};
use rand::RngCore;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{Actor, Role, Subject};
use crate::db::events::TYPES;
use crate::db::webhooks::{self, Delivery, Webhook};
use crate::db::Db;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::json::Json;
use crate::webhooks::{check_url, WebhookSettings};

/// The body of `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    #[schema(value_type = String, example = "https://partner.example.jp/renkei/events")]
    pub url: Option<String>,
    /// Event types, or `["*"]` for every event the organization sees.
    #[schema(value_type = Vec<String>, example = json!(["bed_request.accepted", "case.activated"]))]
    pub types: Option<Vec<String>>,
}

/// Admins and API clients of an organization keep its webhooks.
fn manage(actor: &Actor) -> ApiResult<()> {
    if actor.has(Role::Admin) || matches!(actor.subject, Subject::Client(_)) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only the organization's admins and API clients manage webhooks"))
    }
}

/// Subscribes a URL to event types of the caller's organization. The answer carries the signing
/// secret, once.
#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "events",
    request_body = WebhookInput,
    responses(
        (status = 201, description = "Subscribed; `secret` is shown only now", body = Webhook, headers(("Location" = String))),
        (status = 400, description = "Invalid URL (or a private address) or unknown types", body = Problem),
        (status = 403, description = "Not an admin or API client", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("")]
pub async fn create(
    actor: Actor,
    db: web::Data<Db>,
    sequencer: web::Data<crate::sequencer::Sequencer>,
    settings: Option<web::Data<WebhookSettings>>,
    body: Result<Json<WebhookInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    manage(&actor)?;
    let input = body?.0;
    let allow_private = settings.is_some_and(|s| s.allow_private);
    let mut errors = Vec::new();
    let url = match crate::domain::required(&mut errors, "url", input.url) {
        // Resolving the host blocks: off the workers.
        Some(raw) => match web::block(move || check_url(&raw, allow_private)).await {
            Ok(Ok(u)) => Some(u.to_string()),
            Ok(Err(why)) => {
                errors.push(FieldError::new("url", "not_allowed", why));
                None
            }
            Err(e) => return Err(ApiError::internal(e)),
        },
        None => None,
    };
    let types = crate::domain::required(&mut errors, "types", input.types).unwrap_or_default();
    if types.is_empty() && !errors.iter().any(|e| e.field == "types") {
        errors.push(FieldError::new("types", "required", "at least one type, or \"*\""));
    }
    for (i, t) in types.iter().enumerate() {
        if t != "*" && !TYPES.contains(&t.as_str()) {
            errors.push(FieldError::new(format!("types[{i}]"), "unknown_code", format!("'{t}' is not an event type")));
        }
    }
    let Some(url) = url.filter(|_| errors.is_empty()) else { return Err(ApiError::validation(errors)) };
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let secret = format!("whsec_{}", hex::encode(raw));
    // The webhook sees what its subscriber's roles see in the feed (never through team membership).
    let scope = crate::api::events::scope(&actor);
    let sees_org_a = scope.org_a.is_some();
    let org_b_types = scope.org_b_types.clone();
    if !sees_org_a && org_b_types.is_empty() {
        return Err(ApiError::forbidden("Your roles see no events of your organization to deliver"));
    }
    // Events committed before the subscription are numbered first, so it receives only later
    // ones (PostgreSQL numbers events after their commit, §13 of DESIGN.md).
    sequencer.catch_up_events().await?;
    let (org, who, s) = (actor.org, actor.sub(), secret.clone());
    let mut hook = db
        .write(move |c| webhooks::insert(c, org, &url, &types, sees_org_a, &org_b_types, &s, &who))
        .await
        .map_err(ApiError::from)?;
    hook.secret = Some(secret);
    Ok(HttpResponse::Created().insert_header(("Location", format!("/api/v1/webhooks/{}", hook.id))).json(hook))
}

/// The organization's webhooks (without secrets).
#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "events",
    responses(
        (status = 200, description = "The webhooks", body = Vec<Webhook>),
        (status = 403, description = "Not an admin or API client", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("")]
pub async fn list(actor: Actor, db: web::Data<Db>) -> ApiResult<HttpResponse> {
    manage(&actor)?;
    let org = actor.org;
    let items = db.read(move |c| webhooks::list(c, org)).await.map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

/// Stops a webhook: nothing more is delivered; its delivery log stays readable.
#[utoipa::path(
    delete, path = "/api/v1/webhooks/{id}", tag = "events",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Stopped"),
        (status = 403, description = "Not an admin or API client", body = Problem),
        (status = 404, description = "No such webhook of your organization", body = Problem),
    ),
    security(("bearer" = []))
)]
#[delete("/{id}")]
pub async fn remove(
    actor: Actor,
    db: web::Data<Db>,
    sequencer: web::Data<crate::sequencer::Sequencer>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    manage(&actor)?;
    // Events committed while the webhook was active still get their deliveries.
    sequencer.catch_up_events().await?;
    let (org, id) = (actor.org, id.into_inner());
    let found = db.write(move |c| webhooks::deactivate(c, &id, org)).await.map_err(ApiError::from)?;
    if !found {
        return Err(ApiError::not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The latest deliveries of a webhook (newest event first), each with its attempts.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", tag = "events",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "Up to 200 deliveries", body = Vec<Delivery>),
        (status = 403, description = "Not an admin or API client", body = Problem),
        (status = 404, description = "No such webhook of your organization", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/deliveries")]
pub async fn deliveries(
    actor: Actor,
    db: web::Data<Db>,
    sequencer: web::Data<crate::sequencer::Sequencer>,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    manage(&actor)?;
    sequencer.catch_up_events().await?;
    let (org, id) = (actor.org, id.into_inner());
    let items = db
        .read(move |c| {
            webhooks::get(c, &id, org)?;
            webhooks::deliveries(c, &id, 200)
        })
        .await
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}

/// Sends a delivery again (a receiver lost it, or it failed every attempt).
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "events",
    params(("id" = String, Path), ("delivery_id" = String, Path)),
    responses(
        (status = 202, description = "Queued"),
        (status = 403, description = "Not an admin or API client", body = Problem),
        (status = 404, description = "No such webhook or delivery", body = Problem),
        (status = 409, description = "The webhook is stopped", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/deliveries/{delivery_id}/redeliver")]
pub async fn redeliver(actor: Actor, db: web::Data<Db>, path: web::Path<(String, String)>) -> ApiResult<HttpResponse> {
    manage(&actor)?;
    let (org, (hook, delivery)) = (actor.org, path.into_inner());
    db.write(move |c| {
        let w = webhooks::get(c, &hook, org)?;
        if !w.active {
            return Err(ApiError::conflict("webhook_stopped", "The webhook is stopped"));
        }
        match webhooks::redeliver(c, &hook, &delivery) {
            Ok(true) => Ok(()),
            Ok(false) if webhooks::deliveries(c, &hook, 200)?.iter().any(|d| d.id == delivery) => {
                Err(ApiError::conflict("delivery_pending", "The delivery is still on its way"))
            }
            Ok(false) => Err(ApiError::not_found()),
            Err(e) => Err(ApiError::from(e)),
        }
    })
    .await
    .map_err(|e: ApiError| match e.code() {
        "not_found" => ApiError::not_found(),
        _ => e,
    })?;
    Ok(HttpResponse::Accepted().finish())
}
