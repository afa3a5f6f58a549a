//! `/api/v1/cases`: cases of home care, their transitions and history (DOMAIN.md §1).

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::access::{change_case, read_case};
use super::{optional_id, required_id as parse_id};
use crate::audit::{Audit, Target};
use crate::auth::{policy, Actor};
use crate::db::{care_team, cases, organizations, patients, Db, DbConn, DbError};
use crate::domain::care_team::TeamRole;
use crate::domain::case::{transition, Case, CaseEvent, CaseStatus, CloseReason, StatusChange};
use crate::domain::ids::{CaseId, OrganizationId, PatientId};
use crate::domain::organization::parse_enum;
use crate::domain::text;
use crate::domain::time::today_jst;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::conditional::IfMatch;
use crate::http::json::Json;
use crate::http::pagination::{Page, PageRequest};
use crate::http::{created, ok_versioned};

/// The body of `POST /api/v1/cases`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseInput {
    #[schema(value_type = String, format = Uuid)]
    pub patient_id: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub managing_organization_id: Option<String>,
    pub notes: Option<String>,
}

/// The body of `PATCH /api/v1/cases/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CasePatch {
    #[schema(value_type = Option<String>)]
    pub notes: crate::domain::Patch<String>,
}

/// The body of `POST /api/v1/cases/{id}/close`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseInput {
    #[schema(value_type = CloseReason)]
    pub reason: Option<String>,
}

/// A case the actor may see (404 otherwise) and manage (403 otherwise).
pub(crate) fn managed_case(c: &mut DbConn, actor: &Actor, id: CaseId) -> ApiResult<Case> {
    let case = cases::get_visible(c, id, &policy::case_scope(actor))?;
    policy::manage_case(actor, case.managing_organization_id)?;
    Ok(case)
}

/// Opens a `referred` case for a patient at the caller's organization. At most one open case
/// per patient per managing organization (409 `open_case_exists` names it).
#[utoipa::path(
    post, path = "/api/v1/cases", tag = "cases",
    request_body = CaseInput,
    responses(
        (status = 201, description = "Opened", body = Case, headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "Invalid body or unknown patient", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not a coordinator of the managing organization", body = Problem),
        (status = 409, description = "The patient already has an open case there", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("")]
pub async fn create(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    body: Result<Json<CaseInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let parsed = audit.refuse_break_glass().and_then(|()| parse_case_input(body));
    let patient = parsed.as_ref().ok().map(|p| p.0);
    let result = match parsed {
        Err(e) => Err(e),
        Ok((patient, org, notes)) => open_audited(&db, &audit, &actor, patient, org, notes).await,
    };
    let case =
        audit.after_change(&actor, || Target::collection("case.create", "case").patient(patient), result).await?;
    Ok(created(format!("/api/v1/cases/{}", case.id), case.version, &case))
}

async fn open_audited(
    db: &Db,
    audit: &Audit,
    actor: &Actor,
    patient: PatientId,
    org: OrganizationId,
    notes: Option<String>,
) -> ApiResult<Case> {
    let (tx_audit, tx_actor) = (audit.clone(), actor.clone());
    let result: ApiResult<Case> = db
        .write(move |c| {
            policy::manage_case(&tx_actor, org)?;
            let case = open(c, &tx_actor, patient, org, notes.as_deref())?;
            let target = Target::new("case.create", "case", case.id).patient(Some(patient));
            tx_audit.append(c, &[&tx_audit.entry(&tx_actor, target, 201)])?;
            Ok(case)
        })
        .await;
    match result {
        // A racing creation won; name its case (the failed transaction could not look).
        Err(e) if e.code() == "open_case_exists" => {
            let existing = db.read(move |c| Ok::<_, ApiError>(cases::open_case_of(c, patient, org)?)).await?;
            Err(open_case_exists(existing))
        }
        other => other,
    }
}

type CaseFields = (PatientId, OrganizationId, Option<String>);

fn parse_case_input(body: Result<Json<CaseInput>, ApiError>) -> ApiResult<CaseFields> {
    let input = body?.0;
    let mut errors = Vec::new();
    let patient: Option<PatientId> = parse_id("patient_id", input.patient_id, &mut errors);
    let org: Option<OrganizationId> = parse_id("managing_organization_id", input.managing_organization_id, &mut errors);
    let notes = text::optional_text("notes", input.notes, 2000, &mut errors);
    match (patient, org) {
        (Some(patient), Some(org)) if errors.is_empty() => Ok((patient, org, notes)),
        _ => Err(ApiError::validation(errors)),
    }
}

/// Opens the case after checking the organization, the patient's visibility and the
/// one-open-case rule.
fn open(
    c: &mut DbConn,
    actor: &Actor,
    patient: PatientId,
    org: OrganizationId,
    notes: Option<&str>,
) -> ApiResult<Case> {
    if !organizations::exists(c, org)? {
        return Err(ApiError::invalid_field("managing_organization_id", "unknown_reference", "names no organization"));
    }
    match patients::get_visible(c, patient, &policy::case_scope(actor)) {
        Err(DbError::NotFound) => {
            return Err(ApiError::invalid_field("patient_id", "unknown_reference", "names no patient visible to you"))
        }
        other => other?,
    };
    if let Some(existing) = cases::open_case_of(c, patient, org)? {
        return Err(open_case_exists(Some(existing)));
    }
    cases::insert(c, patient, org, notes, &actor.sub()).map_err(|e| match e {
        DbError::Unique(_) => open_case_exists(None),
        e => e.into(),
    })
}

fn open_case_exists(existing: Option<CaseId>) -> ApiError {
    let e = ApiError::conflict("open_case_exists", "The patient already has an open case at this organization");
    match existing {
        Some(id) => e.with("existing_id", id.to_string()),
        None => e,
    }
}

/// Query of `GET /api/v1/cases`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(value_type = Option<CaseStatus>)]
    status: Option<String>,
    #[param(format = Uuid)]
    managing_organization_id: Option<String>,
    /// Cases whose care team has this practitioner now.
    #[param(format = Uuid)]
    practitioner_id: Option<String>,
    /// The patient's municipality (6 digits).
    municipality_code: Option<String>,
    #[param(format = Uuid)]
    patient_id: Option<String>,
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// Lists the cases visible to the caller.
#[utoipa::path(
    get, path = "/api/v1/cases", tag = "cases",
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = Page<Case>),
        (status = 400, description = "Invalid filter", body = Problem),
        (status = 403, description = "The role reads no cases", body = Problem),
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
    let result = search(&actor, &db, query.into_inner()).await;
    let page = audit.record(&actor, Target::collection("case.list", "case"), result).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn search(actor: &Actor, db: &Db, q: ListQuery) -> ApiResult<Page<Case>> {
    let scope = policy::case_scope(actor);
    if scope.is_empty() {
        return Err(ApiError::forbidden("Your role does not read cases"));
    }
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let mut errors = Vec::new();
    let filter = cases::Filter {
        status: q.status.and_then(|s| parse_enum("status", &s, &mut errors)),
        managing_organization_id: optional_id("managing_organization_id", q.managing_organization_id, &mut errors),
        practitioner_id: optional_id("practitioner_id", q.practitioner_id, &mut errors),
        patient_id: optional_id("patient_id", q.patient_id, &mut errors),
        municipality_code: q.municipality_code,
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    db.read(move |c| Ok::<_, ApiError>(cases::list(c, &scope, &filter, &page)?)).await
}

/// One case, if visible to the caller.
#[utoipa::path(
    get, path = "/api/v1/cases/{id}", tag = "cases",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The case", body = Case, headers(("ETag" = String))),
        (status = 404, description = "No such case, or not visible", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}")]
pub async fn get(actor: Actor, audit: Audit, db: web::Data<Db>, id: web::Path<CaseId>) -> ApiResult<HttpResponse> {
    let case = read_case(&db, &audit, &actor, "case.read", id.into_inner(), |_, case| Ok(case.clone())).await?;
    Ok(ok_versioned(case.version, &case))
}

/// Changes a case's notes (`If-Match` required). Status changes go through the transitions.
#[utoipa::path(
    patch, path = "/api/v1/cases/{id}", tag = "cases",
    params(("id" = String, Path, format = Uuid), ("If-Match" = String, Header)),
    request_body = CasePatch,
    responses(
        (status = 200, description = "Changed", body = Case),
        (status = 400, description = "Invalid body", body = Problem),
        (status = 403, description = "Not a coordinator of the managing organization", body = Problem),
        (status = 404, description = "No such case, or not visible", body = Problem),
        (status = 412, description = "Stale If-Match", body = Problem),
        (status = 428, description = "If-Match missing", body = Problem),
    ),
    security(("bearer" = []))
)]
#[patch("/{id}")]
pub async fn update(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<CaseId>,
    if_match: Result<IfMatch, ApiError>,
    body: Result<Json<CasePatch>, ApiError>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let who = actor.clone();
    let case = change_case(&db, &audit, &actor, "case.update", id, move |c| {
        let current = managed_case(c, &who, id)?;
        let (if_match, patch) = (if_match?, body?.0);
        if_match.check(current.version)?;
        let mut errors = Vec::new();
        let notes = match patch.notes {
            crate::domain::Patch::Absent => return Ok(current),
            crate::domain::Patch::Null => None,
            crate::domain::Patch::Value(n) => text::optional_text("notes", Some(n), 2000, &mut errors),
        };
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        if !cases::update_notes(c, id, current.version, notes.as_deref())? {
            return Err(ApiError::version_mismatch(cases::get(c, id)?.version));
        }
        Ok(cases::get(c, id)?)
    })
    .await?;
    Ok(ok_versioned(case.version, &case))
}

/// Runs one transition as a compare-and-set on the current status.
async fn run(
    db: &Db,
    audit: &Audit,
    actor: Actor,
    id: CaseId,
    event: CaseEvent,
    reason: Option<CloseReason>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let case = change_case(db, audit, &actor, event.action(), id, move |c| {
        let current = managed_case(c, &who, id)?;
        let to = transition(current.status, event).map_err(|e| invalid_transition(e.from, event))?;
        if event == CaseEvent::Activate {
            let now = Utc::now();
            let has_primary = care_team::list(c, id, Some(now))?.iter().any(|m| m.role == TeamRole::PrimaryPhysician);
            if !has_primary {
                return Err(ApiError::conflict(
                    "primary_physician_required",
                    "A case becomes active only with a current primary physician: assign one first",
                ));
            }
        }
        if matches!(to, CaseStatus::Closed | CaseStatus::Cancelled) {
            // The team's work ends with the case: nobody keeps reading it as a member.
            care_team::end_all(c, id, Utc::now())?;
            // Nor does a bed stay promised to it.
            crate::db::beds::cancel_open_for_case(c, id)?;
        }
        let today = today_jst(Utc::now());
        let effects = cases::TransitionEffects {
            started_on: (event == CaseEvent::Activate && current.started_on.is_none()).then_some(today),
            ended_on: matches!(to, CaseStatus::Closed | CaseStatus::Cancelled).then_some(today),
            close_reason: reason,
        };
        if !cases::transition(c, id, current.status, to, &effects, &who.sub())? {
            return Err(invalid_transition(cases::get(c, id)?.status, event));
        }
        Ok(cases::get(c, id)?)
    })
    .await?;
    Ok(ok_versioned(case.version, &case))
}

fn invalid_transition(from: CaseStatus, event: CaseEvent) -> ApiError {
    let state = crate::db::to_code(&from).unwrap_or_default();
    ApiError::conflict("invalid_transition", format!("A case that is {state} cannot {}", event.name()))
        .with("current_status", state)
}

macro_rules! transition_endpoint {
    ($fn:ident, $path:literal, $route:literal, $event:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
                    post, path = $path, tag = "cases",
                    params(("id" = String, Path, format = Uuid)),
                    responses(
                        (status = 200, description = "Done", body = Case),
                        (status = 403, description = "Not a coordinator of the managing organization", body = Problem),
                        (status = 404, description = "No such case, or not visible", body = Problem),
                        (status = 409, description = "Not allowed in the current state", body = Problem),
                    ),
                    security(("bearer" = []))
                )]
        #[post($route)]
        pub async fn $fn(actor: Actor, audit: Audit, db: web::Data<Db>, id: web::Path<CaseId>) -> ApiResult<HttpResponse> {
            run(&db, &audit, actor, id.into_inner(), $event, None).await
        }
    };
}

transition_endpoint!(
    activate,
    "/api/v1/cases/{id}/activate",
    "/{id}/activate",
    CaseEvent::Activate,
    "Starts home care: `referred → active`; needs a current primary physician."
);
transition_endpoint!(
    hold,
    "/api/v1/cases/{id}/hold",
    "/{id}/hold",
    CaseEvent::Hold,
    "The patient is in hospital: `active → on_hold`."
);
transition_endpoint!(
    resume,
    "/api/v1/cases/{id}/resume",
    "/{id}/resume",
    CaseEvent::Resume,
    "The patient is home again: `on_hold → active`."
);
transition_endpoint!(
    cancel,
    "/api/v1/cases/{id}/cancel",
    "/{id}/cancel",
    CaseEvent::Cancel,
    "A referral that will not start: `referred → cancelled`."
);

/// Ends home care with a reason: `active | on_hold → closed`.
#[utoipa::path(
    post, path = "/api/v1/cases/{id}/close", tag = "cases",
    params(("id" = String, Path, format = Uuid)),
    request_body = CloseInput,
    responses(
        (status = 200, description = "Closed", body = Case),
        (status = 400, description = "Missing or unknown reason", body = Problem),
        (status = 403, description = "Not a coordinator of the managing organization", body = Problem),
        (status = 404, description = "No such case, or not visible", body = Problem),
        (status = 409, description = "Not allowed in the current state", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/close")]
pub async fn close(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<CaseId>,
    body: Result<Json<CloseInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let reason = match close_reason(body) {
        Ok(reason) => reason,
        Err(e) => return audit.record(&actor, Target::new("case.close", "case", id), Err(e)).await,
    };
    run(&db, &audit, actor, id, CaseEvent::Close, Some(reason)).await
}

fn close_reason(body: Result<Json<CloseInput>, ApiError>) -> ApiResult<CloseReason> {
    let mut errors = Vec::new();
    let reason = match body?.0.reason {
        None => {
            errors.push(FieldError::new("reason", "required", "is required"));
            None
        }
        Some(r) => parse_enum::<CloseReason>("reason", &r, &mut errors),
    };
    reason.ok_or_else(|| ApiError::validation(errors))
}

/// Every status the case has had, oldest first.
#[utoipa::path(
    get, path = "/api/v1/cases/{id}/history", tag = "cases",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The history", body = Vec<StatusChange>),
        (status = 404, description = "No such case, or not visible", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/history")]
pub async fn history(actor: Actor, audit: Audit, db: web::Data<Db>, id: web::Path<CaseId>) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let items = read_case(&db, &audit, &actor, "case.history", id, move |c, _| Ok(cases::history(c, id)?)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items })))
}
