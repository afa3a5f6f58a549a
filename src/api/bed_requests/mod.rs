//! `/api/v1/bed-requests`: a bed for a home-care patient, fast, never promised twice (DOMAIN.md
//! §5). Requests are patient data: every access has its row in the access log.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::access::change_resource;
use super::beds::hospital;
use super::{optional_id, required_id};
use crate::audit::{Audit, Target};
use crate::auth::{policy, Actor, Role, Subject};
use crate::db::{beds, care_team, cases, Db, DbConn, DbError};
use crate::domain::bed::{
    transition, BedKind, BedRequest, DeclineReason, Disposition, RequestEvent, RequestStatus, RuleBroken,
};
use crate::domain::care_team::TeamRole;
use crate::domain::case::{Case, CaseStatus, CloseReason};
use crate::domain::ids::{BedId, BedRequestId, CaseId, OrganizationId};
use crate::domain::organization::parse_enum;
use crate::domain::text;
use crate::domain::time::{jst, parse_instant, start_of_day_jst, today_jst};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::json::Json;
use crate::http::pagination::{Page, PageRequest};
use crate::http::{created, ok_versioned};

mod input;

use input::parse_request;
pub use input::{AcceptInput, DeclineInput, DischargeInput, RequestInput, ResponseWindows, RetargetInput};

fn unknown(field: &str, what: &str) -> ApiError {
    ApiError::invalid_field(field, "unknown_reference", format!("names no {what} you may use"))
}

/// DOMAIN.md §5: the case's current primary or secondary physician, the physician cover names
/// right now, or a coordinator of the managing organization.
fn may_request(c: &mut DbConn, actor: &Actor, case: &Case) -> ApiResult<()> {
    if policy::manage_case(actor, case.managing_organization_id).is_ok() {
        return Ok(());
    }
    if let (Subject::Practitioner(me), true) = (&actor.subject, actor.has(Role::Physician)) {
        let now = Utc::now();
        let team = care_team::list(c, case.id, Some(now))?;
        let physician = |m: &&crate::domain::care_team::Member| {
            m.practitioner_id == *me && matches!(m.role, TeamRole::PrimaryPhysician | TeamRole::SecondaryPhysician)
        };
        if team.iter().any(|m| physician(&m)) || super::cover::covering(c, case, now)? == Some(*me) {
            return Ok(());
        }
    }
    Err(ApiError::forbidden(
        "Only the case's primary or secondary physician, the physician covering now, or a coordinator may ask for a bed",
    ))
}

/// The case a request is for: one the caller may ask for (400 if they may not even see it).
fn requestable_case(c: &mut DbConn, actor: &Actor, id: CaseId) -> ApiResult<Case> {
    let case = match cases::get(c, id) {
        Err(DbError::NotFound) => return Err(unknown("case_id", "case")),
        other => other?,
    };
    if let Err(e) = may_request(c, actor, &case) {
        let visible = cases::get_visible(c, id, &policy::case_scope(actor)).is_ok();
        return Err(if visible { e } else { unknown("case_id", "case") });
    }
    if case.status != CaseStatus::Active {
        return Err(ApiError::conflict("case_not_active", "Beds are requested for active cases")
            .with("current_status", crate::db::to_code(&case.status).unwrap_or_default()));
    }
    Ok(case)
}

fn rule_broken(r: RuleBroken) -> ApiError {
    ApiError::new(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, "respite_rule_broken", r.message.clone())
        .with("rule", r.rule)
        .with("errors", serde_json::json!([{"field": r.field, "code": r.rule, "message": r.message}]))
}

/// The Japan calendar year around `at`, as instants.
fn japan_year(at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    use chrono::Datelike;
    let y = at.with_timezone(&jst()).year();
    let first = |y| chrono::NaiveDate::from_ymd_opt(y, 1, 1).unwrap_or_default();
    (start_of_day_jst(first(y)), start_of_day_jst(first(y + 1)))
}

/// Checks a respite window against the hospital's policy. The yearly limit counts the
/// patient's stays there (allocated, or asked for and still pending) other than `this`.
fn check_respite(
    c: &mut DbConn,
    hospital_id: OrganizationId,
    case: &Case,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    this: Option<BedRequestId>,
    with_notice: bool,
) -> ApiResult<()> {
    let mut p = beds::get_policy(c, hospital_id)?;
    if !with_notice {
        // Notice is judged when the stay is asked for; at acceptance only its shape matters.
        p.min_notice_days = 0;
    }
    let (from, to) = japan_year(starts_at);
    let used = beds::respite_days(c, case.patient_id, hospital_id, from, to, this)?;
    let now = if with_notice { Utc::now() } else { starts_at.min(Utc::now()) };
    p.check(starts_at, ends_at, now, used).map_err(rule_broken)
}

/// Asks a hospital for a bed. The hospital must answer before `response_due_at` (emergency 30
/// minutes, urgent 2 hours, respite 3 days by default), or the request expires.
#[utoipa::path(
    post, path = "/api/v1/bed-requests", tag = "bed requests",
    request_body = RequestInput,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "Sent", body = BedRequest, headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "Invalid body, or a case or hospital you may not use", body = Problem),
        (status = 403, description = "Not the case's physician, the covering physician or a coordinator", body = Problem),
        (status = 409, description = "The case is not active, or the organization is not a hospital", body = Problem),
        (status = 422, description = "The respite window breaks the hospital's policy (`rule` names it)", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("")]
pub async fn create(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    windows: Option<web::Data<ResponseWindows>>,
    body: Result<Json<RequestInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let windows = windows.map(|w| **w).unwrap_or_default();
    let now = Utc::now();
    let parsed = audit.refuse_break_glass().and_then(|()| parse_request(body?.0, now));
    let case_of_body = parsed.as_ref().ok().map(|p| p.case_id);
    let result = match parsed {
        Err(e) => Err(e),
        Ok(p) => {
            let (tx_audit, tx_actor) = (audit.clone(), actor.clone());
            db.write(move |c| {
                let case = requestable_case(c, &tx_actor, p.case_id)?;
                let hospital_id = match p.hospital_id {
                    Some(h) => h,
                    // The target defaults to the patient's registered backup hospital.
                    None => match crate::db::registrations::active_of(c, case.patient_id)? {
                        Some(reg) => reg.hospital_id,
                        None => {
                            return Err(ApiError::invalid_field(
                                "hospital_id",
                                "required",
                                "the patient has no active backup registration: name a hospital",
                            ))
                        }
                    },
                };
                hospital(c, hospital_id).map_err(|_| unknown("hospital_id", "hospital"))?;
                if p.kind == BedKind::Respite {
                    check_respite(c, hospital_id, &case, p.starts_at, p.ends_at, None, true)?;
                }
                let new = beds::NewRequest {
                    case_id: case.id,
                    patient_id: case.patient_id,
                    hospital_id,
                    kind: p.kind,
                    needs: &p.needs,
                    starts_at: p.starts_at,
                    ends_at: p.ends_at,
                    reason: &p.reason,
                    response_window: windows.of(p.kind),
                    requested_by: &tx_actor.sub(),
                    previous: None,
                };
                let id = beds::insert_request(c, &new)?;
                let target = Target::new("bed_request.create", "bed_request", id).patient(Some(case.patient_id));
                tx_audit.append(c, &[&tx_audit.entry(&tx_actor, target, 201)])?;
                Ok(beds::get_request(c, id)?)
            })
            .await
        }
    };
    let patient = match (&result, case_of_body) {
        (Err(_), Some(case)) => db.read(move |c| Ok::<_, ApiError>(cases::patient_of(c, case)?)).await.ok().flatten(),
        _ => None,
    };
    let req = audit
        .after_change(&actor, || Target::collection("bed_request.create", "bed_request").patient(patient), result)
        .await?;
    Ok(created(format!("/api/v1/bed-requests/{}", req.id), req.version, &req))
}

/// Other hospitals with free matching beds for the request's window, after a decline or expiry.
fn with_alternatives(c: &mut DbConn, mut req: BedRequest) -> ApiResult<BedRequest> {
    if matches!(req.status, RequestStatus::Declined | RequestStatus::Expired) {
        let to = req.ends_at.unwrap_or(req.starts_at + Duration::days(1));
        let all = beds::availability(c, req.kind, &req.needs, req.starts_at, to)?;
        req.alternatives = Some(all.into_iter().filter(|a| a.hospital_id != req.hospital_id).collect());
    }
    Ok(req)
}

fn scope_of(actor: &Actor) -> policy::BedScope {
    policy::bed_scope(actor)
}

async fn read_request(db: &Db, audit: &Audit, actor: &Actor, id: BedRequestId) -> ApiResult<BedRequest> {
    let scope = scope_of(actor);
    let (result, patient) = db
        .read(move |c| {
            let patient = beds::patient_of(c, id)?;
            let result =
                beds::get_visible_request(c, id, &scope).map_err(ApiError::from).and_then(|r| with_alternatives(c, r));
            Ok::<_, ApiError>((result, patient))
        })
        .await?;
    audit.record(actor, Target::new("bed_request.read", "bed_request", id).patient(patient), result).await
}

/// Changes one visible request with its access-log rows (see `access::change_resource`); the
/// answer names alternatives after a decline.
async fn change_request<F>(
    db: &Db,
    audit: &Audit,
    actor: &Actor,
    action: &'static str,
    id: BedRequestId,
    f: F,
) -> ApiResult<BedRequest>
where
    F: FnOnce(&mut DbConn, &BedRequest) -> ApiResult<(BedRequest, Vec<Target>)> + Send + 'static,
{
    let scope = scope_of(actor);
    let req = change_resource(db, audit, actor, (action, "bed_request", id), beds::patient_of, move |c| {
        let current = beds::get_visible_request(c, id, &scope)?;
        f(c, &current)
    })
    .await?;
    // The alternatives after the commit, on a read connection: they read every open bed of the
    // region, which the write transaction need not do (on SQLite it holds the one writer: they
    // were a third of its time when hospitals answer). The change is durable by now, so a failed
    // read answers it without them (a read of the request names them) rather than as failed.
    if !matches!(req.status, RequestStatus::Declined | RequestStatus::Expired) {
        return Ok(req);
    }
    let kept = req.clone();
    match db.read(move |c| with_alternatives(c, kept)).await {
        Ok(req) => Ok(req),
        Err(e) => {
            tracing::warn!(error = %e, request = %id, "the alternatives of an answered bed request could not be read");
            Ok(req)
        }
    }
}

/// A hospital answers before `response_due_at`; after it the request is expired (by the
/// sweeper, if it has not run yet).
fn answerable(req: &BedRequest) -> ApiResult<()> {
    if req.status == RequestStatus::Pending && Utc::now() >= req.response_due_at {
        return Err(ApiError::conflict("request_expired", "The answer was due before now: the request has expired")
            .with("response_due_at", req.response_due_at.to_rfc3339()));
    }
    Ok(())
}

fn invalid_transition(from: RequestStatus, event: RequestEvent) -> ApiError {
    let state = crate::db::to_code(&from).unwrap_or_default();
    ApiError::conflict("invalid_transition", format!("A request that is {state} cannot {}", event.name()))
        .with("current_status", state)
}

/// Moves the request on as a compare-and-set on its status (the caller reads it back once it has
/// done the rest).
fn step(c: &mut DbConn, req: &BedRequest, event: RequestEvent, ans: &beds::Answer) -> ApiResult<()> {
    let to = transition(req.status, event).ok_or_else(|| invalid_transition(req.status, event))?;
    if !beds::transition(c, req.id, req.status, to, ans)? {
        return Err(invalid_transition(beds::get_request(c, req.id)?.status, event));
    }
    Ok(())
}

/// Query of `GET /api/v1/bed-requests`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(value_type = Option<RequestStatus>)]
    status: Option<String>,
    #[param(format = Uuid)]
    hospital_id: Option<String>,
    #[param(format = Uuid)]
    case_id: Option<String>,
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// Lists the requests visible to the caller: those addressed to their hospital (bed managers),
/// and those of the cases they may read.
#[utoipa::path(
    get, path = "/api/v1/bed-requests", tag = "bed requests",
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = Page<BedRequest>),
        (status = 400, description = "Invalid filter", body = Problem),
        (status = 403, description = "The role reads no requests", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("")]
pub async fn list(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let scope = scope_of(&actor);
    let result = async {
        if scope.is_empty() {
            return Err(ApiError::forbidden("Your role does not read bed requests"));
        }
        let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
        let mut errors = Vec::new();
        let e = &mut errors;
        let filter = beds::Filter {
            status: q.status.and_then(|s| parse_enum("status", &s, e)),
            hospital_id: optional_id("hospital_id", q.hospital_id, e),
            case_id: optional_id("case_id", q.case_id, e),
        };
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        db.read(move |c| Ok::<_, ApiError>(beds::list(c, &scope, &filter, &page)?)).await
    }
    .await;
    let page = audit.record(&actor, Target::collection("bed_request.list", "bed_request"), result).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One request; after a decline or expiry it names other hospitals with free matching beds.
#[utoipa::path(
    get, path = "/api/v1/bed-requests/{id}", tag = "bed requests",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The request", body = BedRequest, headers(("ETag" = String))),
        (status = 404, description = "No such request, or not visible", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}")]
pub async fn get(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<BedRequestId>,
) -> ApiResult<HttpResponse> {
    let req = read_request(&db, &audit, &actor, id.into_inner()).await?;
    Ok(ok_versioned(req.version, &req))
}

/// Accepts with a bed and a period `[starts_at, ends_at)`: the bed must be the hospital's, open,
/// take the kind, carry the needs and be free for the whole period. A bed is never allocated
/// twice for overlapping periods, whatever the concurrency (409 `bed_unavailable`).
#[utoipa::path(
    post, path = "/api/v1/bed-requests/{id}/accept", tag = "bed requests",
    params(("id" = String, Path, format = Uuid)),
    request_body = AcceptInput,
    responses(
        (status = 200, description = "Accepted, with its allocation", body = BedRequest),
        (status = 400, description = "Invalid body or a bed of another hospital", body = Problem),
        (status = 403, description = "Not the hospital's bed manager", body = Problem),
        (status = 404, description = "No such request, or not visible", body = Problem),
        (status = 409, description = "Not pending, or the bed is unavailable", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/accept")]
pub async fn accept(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<BedRequestId>,
    body: Result<Json<AcceptInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let req = change_request(&db, &audit, &actor, "bed_request.accept", id.into_inner(), move |c, current| {
        policy::manage_beds(&who, current.hospital_id)?;
        let input = body?.0;
        let mut errors = Vec::new();
        let e = &mut errors;
        let bed_id: Option<BedId> = required_id("bed_id", input.bed_id, e);
        let starts_at = match input.starts_at {
            Some(s) => parse_instant("starts_at", &s, e),
            None => Some(current.starts_at),
        };
        let ends_at =
            crate::domain::required(e, "ends_at", input.ends_at).and_then(|s| parse_instant("ends_at", &s, e));
        if let (Some(s), Some(t)) = (starts_at, ends_at) {
            crate::domain::time::check_order(s, t, e);
        }
        let (Some(bed_id), Some(starts_at), Some(ends_at), true) = (bed_id, starts_at, ends_at, errors.is_empty())
        else {
            return Err(ApiError::validation(errors));
        };
        if current.status != RequestStatus::Pending {
            return Err(invalid_transition(current.status, RequestEvent::Accept));
        }
        answerable(current)?;
        // Lock first, then read: a bed closed or changed meanwhile is seen as it is now.
        match beds::lock_bed(c, bed_id) {
            Err(DbError::NotFound) => return Err(unknown("bed_id", "bed of this hospital")),
            other => other?,
        }
        let bed = beds::get_bed(c, bed_id)?;
        if bed.hospital_id != current.hospital_id {
            return Err(unknown("bed_id", "bed of this hospital"));
        }
        let unavailable =
            |why: &str| ApiError::conflict("bed_unavailable", why.to_owned()).with("bed_id", bed_id.to_string());
        if !bed.suits(current.kind, &current.needs) {
            return Err(unavailable(
                "The bed is closed, does not take this kind of request or lacks a needed capability",
            ));
        }
        if current.kind == BedKind::Respite {
            // The stay actually given follows the policy too (notice was checked when asked).
            let case = cases::get(c, current.case_id)?;
            check_respite(c, current.hospital_id, &case, starts_at, Some(ends_at), Some(current.id), false)?;
        }
        if beds::overlaps(c, bed_id, starts_at, ends_at)? {
            return Err(unavailable("The bed is already allocated for an overlapping period"));
        }
        step(c, current, RequestEvent::Accept, &beds::Answer { answered_by: Some(who.sub()), ..Default::default() })?;
        beds::allocate(c, bed_id, current.id, current.patient_id, starts_at, ends_at).map_err(|e| match e {
            DbError::Rule(_) => unavailable("The bed is already allocated for an overlapping period"),
            e => e.into(),
        })?;
        Ok((beds::get_request(c, current.id)?, Vec::new()))
    })
    .await?;
    Ok(ok_versioned(req.version, &req))
}

/// Declines with a reason code (the MHLW survey's list) and an optional note.
#[utoipa::path(
    post, path = "/api/v1/bed-requests/{id}/decline", tag = "bed requests",
    params(("id" = String, Path, format = Uuid)),
    request_body = DeclineInput,
    responses(
        (status = 200, description = "Declined, with alternatives", body = BedRequest),
        (status = 400, description = "Missing or unknown reason code", body = Problem),
        (status = 403, description = "Not the hospital's bed manager", body = Problem),
        (status = 404, description = "No such request, or not visible", body = Problem),
        (status = 409, description = "Not pending", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/decline")]
pub async fn decline(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<BedRequestId>,
    body: Result<Json<DeclineInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let req = change_request(&db, &audit, &actor, "bed_request.decline", id.into_inner(), move |c, current| {
        policy::manage_beds(&who, current.hospital_id)?;
        let input = body?.0;
        let mut errors = Vec::new();
        let e = &mut errors;
        let reason: Option<DeclineReason> =
            crate::domain::required(e, "reason_code", input.reason_code).and_then(|r| parse_enum("reason_code", &r, e));
        let note = text::optional_text("note", input.note, 1000, e);
        let Some(reason) = reason.filter(|_| errors.is_empty()) else { return Err(ApiError::validation(errors)) };
        answerable(current)?;
        let ans = beds::Answer {
            decline_reason: Some(reason),
            decline_note: note,
            answered_by: Some(who.sub()),
            ..Default::default()
        };
        step(c, current, RequestEvent::Decline, &ans)?;
        Ok((beds::get_request(c, current.id)?, Vec::new()))
    })
    .await?;
    Ok(ok_versioned(req.version, &req))
}

/// Withdraws a pending or accepted request (the requester, or a coordinator of the case's base):
/// an allocated bed is given back.
#[utoipa::path(
    post, path = "/api/v1/bed-requests/{id}/cancel", tag = "bed requests",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Cancelled", body = BedRequest),
        (status = 403, description = "Not the requester or a coordinator", body = Problem),
        (status = 404, description = "No such request, or not visible", body = Problem),
        (status = 409, description = "Already answered otherwise, or admitted", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/cancel")]
pub async fn cancel(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<BedRequestId>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let req = change_request(&db, &audit, &actor, "bed_request.cancel", id.into_inner(), move |c, current| {
        let case = cases::get(c, current.case_id)?;
        if current.requested_by != who.sub() && policy::manage_case(&who, case.managing_organization_id).is_err() {
            return Err(ApiError::forbidden("Only the requester or a coordinator of the case's base may cancel"));
        }
        step(c, current, RequestEvent::Cancel, &beds::Answer::default())?;
        beds::release(c, current.id, Utc::now())?;
        Ok((beds::get_request(c, current.id)?, Vec::new()))
    })
    .await?;
    Ok(ok_versioned(req.version, &req))
}

/// Changes the case's status alongside the request (history kept); a case not in `from` is
/// left as it is.
fn move_case(
    c: &mut DbConn,
    case: CaseId,
    from: CaseStatus,
    to: CaseStatus,
    reason: Option<CloseReason>,
    who: &str,
) -> ApiResult<bool> {
    let closing = to == CaseStatus::Closed;
    let effects = cases::TransitionEffects {
        started_on: None,
        ended_on: closing.then(|| today_jst(Utc::now())),
        close_reason: reason,
    };
    let moved = cases::transition(c, case, from, to, &effects, who)?;
    if moved && closing {
        care_team::end_all(c, case, Utc::now())?;
        beds::cancel_open_for_case(c, case)?;
    }
    Ok(moved)
}

/// The patient is in the bed: `accepted → admitted`; an active case goes on hold.
#[utoipa::path(
    post, path = "/api/v1/bed-requests/{id}/admit", tag = "bed requests",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Admitted", body = BedRequest),
        (status = 403, description = "Not the hospital's bed manager", body = Problem),
        (status = 404, description = "No such request, or not visible", body = Problem),
        (status = 409, description = "Not accepted", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/admit")]
pub async fn admit(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<BedRequestId>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let req = change_request(&db, &audit, &actor, "bed_request.admit", id.into_inner(), move |c, current| {
        policy::manage_beds(&who, current.hospital_id)?;
        step(c, current, RequestEvent::Admit, &beds::Answer::default())?;
        let held = move_case(c, current.case_id, CaseStatus::Active, CaseStatus::OnHold, None, &who.sub())?;
        let rows = if held {
            vec![Target::new("case.hold", "case", current.case_id).patient(Some(current.patient_id))]
        } else {
            Vec::new()
        };
        Ok((beds::get_request(c, current.id)?, rows))
    })
    .await?;
    Ok(ok_versioned(req.version, &req))
}

/// The patient left the bed: `admitted → discharged`; the allocation ends now; the case resumes
/// (`home`) or closes (`died`, `long_term_admission`, `moved`).
#[utoipa::path(
    post, path = "/api/v1/bed-requests/{id}/discharge", tag = "bed requests",
    params(("id" = String, Path, format = Uuid)),
    request_body = DischargeInput,
    responses(
        (status = 200, description = "Discharged", body = BedRequest),
        (status = 400, description = "Missing or unknown disposition", body = Problem),
        (status = 403, description = "Not the hospital's bed manager", body = Problem),
        (status = 404, description = "No such request, or not visible", body = Problem),
        (status = 409, description = "Not admitted", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/discharge")]
pub async fn discharge(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<BedRequestId>,
    body: Result<Json<DischargeInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let req = change_request(&db, &audit, &actor, "bed_request.discharge", id.into_inner(), move |c, current| {
        policy::manage_beds(&who, current.hospital_id)?;
        let mut errors = Vec::new();
        let e = &mut errors;
        let disposition: Option<Disposition> = crate::domain::required(e, "disposition", body?.0.disposition)
            .and_then(|d| parse_enum("disposition", &d, e));
        let Some(disposition) = disposition else { return Err(ApiError::validation(errors)) };
        let ans = beds::Answer { disposition: Some(disposition), ..Default::default() };
        step(c, current, RequestEvent::Discharge, &ans)?;
        beds::release(c, current.id, Utc::now())?;
        let (to, reason, action) = match disposition {
            Disposition::Home => (CaseStatus::Active, None, "case.resume"),
            Disposition::Died => (CaseStatus::Closed, Some(CloseReason::DiedInHospital), "case.close"),
            Disposition::LongTermAdmission => (CaseStatus::Closed, Some(CloseReason::LongTermAdmission), "case.close"),
            Disposition::Moved => (CaseStatus::Closed, Some(CloseReason::Moved), "case.close"),
        };
        // A case its base resumed meanwhile is closed from where it is.
        let mut moved = move_case(c, current.case_id, CaseStatus::OnHold, to, reason, &who.sub())?;
        if !moved && to == CaseStatus::Closed {
            moved = move_case(c, current.case_id, CaseStatus::Active, to, reason, &who.sub())?;
        }
        let rows = if moved {
            vec![Target::new(action, "case", current.case_id).patient(Some(current.patient_id))]
        } else {
            Vec::new()
        };
        Ok((beds::get_request(c, current.id)?, rows))
    })
    .await?;
    Ok(ok_versioned(req.version, &req))
}

/// After a decline or expiry, asks another hospital in one call: a new pending request linked to
/// this one (`previous_request_id`), with the same case, kind, needs, window and reason.
#[utoipa::path(
    post, path = "/api/v1/bed-requests/{id}/retarget", tag = "bed requests",
    params(("id" = String, Path, format = Uuid)),
    request_body = RetargetInput,
    responses(
        (status = 201, description = "The new request", body = BedRequest, headers(("Location" = String))),
        (status = 400, description = "Invalid body or not a hospital", body = Problem),
        (status = 403, description = "Not the case's physician, the covering physician or a coordinator", body = Problem),
        (status = 404, description = "No such request, or not visible", body = Problem),
        (status = 409, description = "Neither declined nor expired, or already re-targeted", body = Problem),
        (status = 422, description = "The respite window breaks the new hospital's policy", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/retarget")]
pub async fn retarget(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    windows: Option<web::Data<ResponseWindows>>,
    id: web::Path<BedRequestId>,
    body: Result<Json<RetargetInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let windows = windows.map(|w| **w).unwrap_or_default();
    let who = actor.clone();
    let req = change_request(&db, &audit, &actor, "bed_request.retarget", id.into_inner(), move |c, current| {
        let mut errors = Vec::new();
        let Some(hospital_id) = required_id::<OrganizationId>("hospital_id", body?.0.hospital_id, &mut errors) else {
            return Err(ApiError::validation(errors));
        };
        if !matches!(current.status, RequestStatus::Declined | RequestStatus::Expired) {
            return Err(ApiError::conflict("invalid_transition", "Only a declined or expired request is re-targeted")
                .with("current_status", crate::db::to_code(&current.status).unwrap_or_default()));
        }
        if beds::successor_of(c, current.id)?.is_some() {
            return Err(ApiError::conflict("already_retargeted", "This request was already sent elsewhere"));
        }
        // The caller sees the request: one who may not ask for this case is refused, not misled.
        let of_case = cases::get(c, current.case_id)?;
        may_request(c, &who, &of_case)?;
        let case = requestable_case(c, &who, current.case_id)?;
        hospital(c, hospital_id).map_err(|_| unknown("hospital_id", "hospital"))?;
        if current.kind == BedKind::Respite {
            check_respite(c, hospital_id, &case, current.starts_at, current.ends_at, Some(current.id), true)?;
        }
        let new = beds::NewRequest {
            case_id: case.id,
            patient_id: case.patient_id,
            hospital_id,
            kind: current.kind,
            needs: &current.needs,
            starts_at: current.starts_at.max(Utc::now()),
            ends_at: current.ends_at,
            reason: &current.reason,
            response_window: windows.of(current.kind),
            requested_by: &who.sub(),
            previous: Some(current.id),
        };
        let new_id = beds::insert_request(c, &new).map_err(|e| match e {
            DbError::Unique(_) => ApiError::conflict("already_retargeted", "This request was already sent elsewhere"),
            e => e.into(),
        })?;
        let row = Target::new("bed_request.create", "bed_request", new_id).patient(Some(case.patient_id));
        Ok((beds::get_request(c, new_id)?, vec![row]))
    })
    .await?;
    Ok(created(format!("/api/v1/bed-requests/{}", req.id), req.version, &req))
}

/// Expires every pending request whose answer is overdue at `at`. Safe when several instances
/// sweep at once: each expiry is a compare-and-set, and only the winner writes its audit row.
pub async fn expire_due(db: &Db, key: crate::auth::jwt::Secret, at: DateTime<Utc>) -> ApiResult<usize> {
    let due = db.read(move |c| Ok::<_, ApiError>(beds::overdue_pending(c, at, 500)?)).await?;
    let mut expired = 0;
    for id in due {
        let key = key.clone();
        let done: ApiResult<bool> = db
            .write(move |c| {
                let req = beds::get_request(c, id)?;
                let ans = beds::Answer { answered_by: Some(crate::audit::SYSTEM_SWEEPER.into()), ..Default::default() };
                if req.status != RequestStatus::Pending
                    || !beds::transition(c, id, RequestStatus::Pending, RequestStatus::Expired, &ans)?
                {
                    return Ok::<_, ApiError>(false);
                }
                let target = Target::new("bed_request.expire", "bed_request", id).patient(Some(req.patient_id));
                let entry = crate::audit::system_entry(target, 200);
                crate::db::audit::append(c, key.expose(), &[&entry])?;
                crate::audit::emit_events(c, &[&entry])?;
                Ok(true)
            })
            .await;
        match done {
            Ok(done) => expired += usize::from(done),
            // One request that cannot be expired does not hold up the others.
            Err(e) => tracing::warn!(error = %e, "a bed request could not be expired"),
        }
    }
    Ok(expired)
}
