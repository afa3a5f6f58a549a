//! `/api/v1/audit-events`: reading and verifying the access log (auditors and admins), and a
//! patient's own access log.

use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::audit::{Audit, AuditLog, Target};
use crate::auth::{policy, Actor, Role};
use crate::db::audit::{self as log, Verification};
use crate::db::{patients, Db};
use crate::domain::audit::{Event, Purpose};
use crate::domain::ids::PatientId;
use crate::domain::organization::parse_enum;
use crate::domain::time::parse_instant;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::pagination::DEFAULT_LIMIT;
use crate::sequencer::Sequencer;

/// A page of the log, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<Event>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Query of `GET /api/v1/audit-events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    #[param(format = Uuid)]
    patient_id: Option<String>,
    /// The token subject (a practitioner id, or `client:<id>`).
    actor: Option<String>,
    #[param(format = DateTime)]
    from: Option<String>,
    #[param(format = DateTime)]
    to: Option<String>,
    #[param(value_type = Option<Purpose>)]
    purpose: Option<String>,
    /// e.g. `case.read`.
    action: Option<String>,
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    cursor: Option<String>,
}

fn auditor(actor: &Actor) -> ApiResult<()> {
    if actor.has_any(&[Role::Auditor, Role::Admin]) {
        Ok(())
    } else {
        Err(ApiError::forbidden("Only auditors and admins read the access log"))
    }
}

/// Parses `limit` (1–200) and a cursor (the last `seq` seen).
fn page(limit: Option<&str>, cursor: Option<&str>) -> ApiResult<(i64, Option<i64>)> {
    let limit = match limit {
        None => i64::from(DEFAULT_LIMIT),
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=200).contains(&n) => n,
            _ => return Err(ApiError::invalid_field("limit", "out_of_range", "must be a whole number from 1 to 200")),
        },
    };
    let after = match cursor {
        None => None,
        Some(c) => {
            Some(c.strip_prefix("s").and_then(|n| n.parse::<i64>().ok()).filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::invalid_field("cursor", "invalid_cursor", "is not a cursor this server issued")
            })?)
        }
    };
    Ok((limit, after))
}

fn finish(mut items: Vec<Event>, limit: i64) -> EventPage {
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more { items.last().map(|e| format!("s{}", e.seq)) } else { None };
    EventPage { items, next_cursor }
}

/// The access log, filtered (auditors and admins).
#[utoipa::path(
    get, path = "/api/v1/audit-events", tag = "audit",
    params(EventQuery),
    responses(
        (status = 200, description = "One page, oldest first", body = EventPage),
        (status = 400, description = "Invalid filter", body = Problem),
        (status = 403, description = "Not an auditor or admin", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("")]
pub async fn list(
    actor: Actor,
    db: web::Data<Db>,
    sequencer: web::Data<Sequencer>,
    query: web::Query<EventQuery>,
) -> ApiResult<HttpResponse> {
    auditor(&actor)?;
    sequencer.catch_up_audit().await?;
    let q = query.into_inner();
    let (limit, after) = page(q.limit.as_deref(), q.cursor.as_deref())?;
    let mut errors = Vec::new();
    let filter = log::Filter {
        patient_id: q.patient_id,
        actor: q.actor,
        from: q.from.and_then(|s| parse_instant("from", &s, &mut errors)),
        to: q.to.and_then(|s| parse_instant("to", &s, &mut errors)),
        purpose: q.purpose.and_then(|p| parse_enum("purpose", &p, &mut errors)),
        action: q.action,
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let items = db.read(move |c| Ok::<_, ApiError>(log::list(c, &filter, after, limit + 1)?)).await?;
    Ok(HttpResponse::Ok().json(finish(items, limit)))
}

/// Recomputes the whole hash chain and reports the first broken link (auditors and admins).
#[utoipa::path(
    get, path = "/api/v1/audit-events/verify", tag = "audit",
    responses(
        (status = 200, description = "The verdict (intact or not)", body = Verification),
        (status = 403, description = "Not an auditor or admin", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/verify")]
pub async fn verify(
    actor: Actor,
    db: web::Data<Db>,
    sequencer: web::Data<Sequencer>,
    audit_log: web::Data<AuditLog>,
) -> ApiResult<HttpResponse> {
    auditor(&actor)?;
    sequencer.catch_up_audit().await?;
    let key = audit_log.key().to_vec();
    let verdict = db.read(move |c| Ok::<_, ApiError>(log::verify(c, &key)?)).await?;
    if !verdict.intact {
        tracing::error!(first_broken_seq = verdict.first_broken_seq, "the access log's hash chain is broken");
    }
    Ok(HttpResponse::Ok().json(verdict))
}

/// Query of `GET /api/v1/patients/{id}/access-log`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccessLogQuery {
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// Who accessed this patient's data: auditors and admins, or coordinators who see the patient.
/// Reading it is itself recorded.
#[utoipa::path(
    get, path = "/api/v1/patients/{id}/access-log", tag = "audit",
    params(("id" = String, Path, format = Uuid), AccessLogQuery),
    responses(
        (status = 200, description = "One page, oldest first", body = EventPage),
        (status = 403, description = "Not allowed", body = Problem),
        (status = 404, description = "No such patient, or not visible", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/access-log")]
pub async fn access_log(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    sequencer: web::Data<Sequencer>,
    id: web::Path<PatientId>,
    query: web::Query<AccessLogQuery>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    sequencer.catch_up_audit().await?;
    let q = query.into_inner();
    let is_auditor = auditor(&actor).is_ok();
    let scope = policy::case_scope(&actor);
    let coordinator = actor.has(Role::Coordinator);
    let result = match page(q.limit.as_deref(), q.cursor.as_deref()) {
        Err(e) => Err(e),
        Ok((limit, after)) => {
            db.read(move |c| {
                if !is_auditor {
                    patients::get_visible(c, id, &scope)?;
                    if !coordinator {
                        return Err(ApiError::forbidden("Only coordinators and auditors read a patient's access log"));
                    }
                }
                let filter = log::Filter { patient_id: Some(id.to_string()), ..Default::default() };
                Ok(finish(log::list(c, &filter, after, limit + 1)?, limit))
            })
            .await
        }
    };
    let page = audit.record(&actor, Target::new("patient.access_log", "patient", id).patient(Some(id)), result).await?;
    Ok(HttpResponse::Ok().json(page))
}
