//! `/api/v1/backup-registrations`: a home-care patient pre-registered with exactly one backup
//! hospital (事前登録, DOMAIN.md §5), with consent and a referral summary, and the information
//! exchanges due every 3 months. Registrations are patient data: every access is logged.

use actix_web::{get, post, web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::access::change_resource;
use super::beds::hospital;
use super::{optional_id, required_id};
use crate::audit::{Audit, Target};
use crate::auth::{policy, Actor, Role, Subject};
use crate::db::{care_team, cases, registrations, Db, DbConn, DbError};
use crate::domain::bed::{registration_transition, Registration, RegistrationEvent, RegistrationStatus};
use crate::domain::care_team::TeamRole;
use crate::domain::case::Case;
use crate::domain::ids::{CaseId, OrganizationId, RegistrationId};
use crate::domain::organization::parse_enum;
use crate::domain::text;
use crate::domain::time::{parse_date, today_jst};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::json::Json;
use crate::http::pagination::{Page, PageRequest};
use crate::http::{created, ok_versioned};

/// The body of `POST /api/v1/backup-registrations`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationInput {
    #[schema(value_type = String, format = Uuid)]
    pub case_id: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub hospital_id: Option<String>,
    #[schema(value_type = String, format = Date)]
    pub consent_obtained_on: Option<String>,
    #[schema(value_type = String)]
    pub summary: Option<String>,
}

/// The body of `POST …/reject`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectInput {
    #[schema(value_type = String)]
    pub reason: Option<String>,
}

/// The body of `POST …/info-exchanges`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeInput {
    /// The Japan date of the exchange (default: today).
    #[schema(value_type = Option<String>, format = Date)]
    pub exchanged_on: Option<String>,
    pub note: Option<String>,
}

/// The case's current primary physician or a coordinator of its base (DOMAIN.md §5).
fn may_register(c: &mut DbConn, actor: &Actor, case: &Case) -> ApiResult<()> {
    if policy::manage_case(actor, case.managing_organization_id).is_ok() {
        return Ok(());
    }
    if let (Subject::Practitioner(me), true) = (&actor.subject, actor.has(Role::Physician)) {
        let team = care_team::list(c, case.id, Some(Utc::now()))?;
        if team.iter().any(|m| m.practitioner_id == *me && m.role == TeamRole::PrimaryPhysician) {
            return Ok(());
        }
    }
    Err(ApiError::forbidden("Only the case's primary physician or a coordinator of its base may do this"))
}

fn unknown(field: &str, what: &str) -> ApiError {
    ApiError::invalid_field(field, "unknown_reference", format!("names no {what} you may use"))
}

fn one_active(existing: Option<RegistrationId>) -> ApiError {
    let e = ApiError::conflict(
        "active_registration_exists",
        "The patient is already registered with a backup hospital: withdraw that registration first",
    );
    match existing {
        Some(id) => e.with("existing_id", id.to_string()),
        None => e,
    }
}

/// Asks a hospital to take the case's patient as its backup patient (consent and a referral
/// summary required). The hospital activates or rejects it.
#[utoipa::path(
    post, path = "/api/v1/backup-registrations", tag = "beds",
    request_body = RegistrationInput,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "Requested", body = Registration, headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "Invalid body, or a case or hospital you may not use", body = Problem),
        (status = 403, description = "Not the primary physician or a coordinator", body = Problem),
        (status = 409, description = "The case is closed", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("")]
pub async fn create(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    body: Result<Json<RegistrationInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let parsed = audit.refuse_break_glass().and_then(|()| {
        let input = body?.0;
        let mut errors = Vec::new();
        let e = &mut errors;
        let case_id: Option<CaseId> = required_id("case_id", input.case_id, e);
        let hospital_id: Option<OrganizationId> = required_id("hospital_id", input.hospital_id, e);
        let consent = crate::domain::required(e, "consent_obtained_on", input.consent_obtained_on)
            .and_then(|d| parse_date("consent_obtained_on", &d, e));
        if consent.is_some_and(|d| d > today_jst(Utc::now())) {
            e.push(FieldError::new("consent_obtained_on", "in_the_future", "consent is recorded once obtained"));
        }
        let summary = text::required_text("summary", input.summary, 4000, e);
        match (case_id, hospital_id, consent, summary) {
            (Some(a), Some(b), Some(c), Some(d)) if errors.is_empty() => Ok((a, b, c, d)),
            _ => Err(ApiError::validation(errors)),
        }
    });
    let result = match parsed {
        Err(e) => Err(e),
        Ok((case_id, hospital_id, consent, summary)) => {
            let (tx_audit, tx_actor) = (audit.clone(), actor.clone());
            db.write(move |c| {
                let case = match cases::get(c, case_id) {
                    Err(DbError::NotFound) => return Err(unknown("case_id", "case")),
                    other => other?,
                };
                if let Err(e) = may_register(c, &tx_actor, &case) {
                    let visible = cases::get_visible(c, case_id, &policy::case_scope(&tx_actor)).is_ok();
                    return Err(if visible { e } else { unknown("case_id", "case") });
                }
                if !case.status.is_open() {
                    return Err(ApiError::conflict("case_not_open", "The case is closed or cancelled"));
                }
                hospital(c, hospital_id).map_err(|_| unknown("hospital_id", "hospital"))?;
                let sub = tx_actor.sub();
                let new = registrations::NewRegistration {
                    case_id,
                    patient_id: case.patient_id,
                    hospital_id,
                    consent_obtained_on: consent,
                    summary: &summary,
                    requested_by: &sub,
                };
                let id = registrations::insert(c, &new)?;
                let target =
                    Target::new("registration.create", "backup_registration", id).patient(Some(case.patient_id));
                tx_audit.append(c, &[&tx_audit.entry(&tx_actor, target, 201)])?;
                Ok(registrations::get(c, id)?)
            })
            .await
        }
    };
    let reg =
        audit.after_change(&actor, || Target::collection("registration.create", "backup_registration"), result).await?;
    Ok(created(format!("/api/v1/backup-registrations/{}", reg.id), reg.version, &reg))
}

/// Query of `GET /api/v1/backup-registrations`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(value_type = Option<RegistrationStatus>)]
    status: Option<String>,
    #[param(format = Uuid)]
    hospital_id: Option<String>,
    #[param(format = Uuid)]
    case_id: Option<String>,
    #[param(format = Uuid)]
    patient_id: Option<String>,
    /// `true`: active registrations whose information exchange is overdue.
    overdue: Option<bool>,
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// Lists the registrations visible to the caller (their hospital's, or their cases').
#[utoipa::path(
    get, path = "/api/v1/backup-registrations", tag = "beds",
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = Page<Registration>),
        (status = 400, description = "Invalid filter", body = Problem),
        (status = 403, description = "The role reads no registrations", body = Problem),
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
    let mut scope = policy::bed_scope(&actor);
    scope.requester = None;
    let result = async {
        if scope.is_empty() {
            return Err(ApiError::forbidden("Your role does not read backup registrations"));
        }
        let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
        let mut errors = Vec::new();
        let e = &mut errors;
        let filter = registrations::Filter {
            status: q.status.and_then(|s| parse_enum("status", &s, e)),
            hospital_id: optional_id("hospital_id", q.hospital_id, e),
            case_id: optional_id("case_id", q.case_id, e),
            patient_id: optional_id("patient_id", q.patient_id, e),
            exchange_due_before: q.overdue.unwrap_or(false).then(|| today_jst(Utc::now())),
        };
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        db.read(move |c| Ok::<_, ApiError>(registrations::list(c, &scope, &filter, &page)?)).await
    }
    .await;
    let page = audit.record(&actor, Target::collection("registration.list", "backup_registration"), result).await?;
    Ok(HttpResponse::Ok().json(page))
}

fn scope_of(actor: &Actor) -> policy::BedScope {
    let mut scope = policy::bed_scope(actor);
    scope.requester = None;
    scope
}

/// One registration, if visible.
#[utoipa::path(
    get, path = "/api/v1/backup-registrations/{id}", tag = "beds",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The registration", body = Registration, headers(("ETag" = String))),
        (status = 404, description = "No such registration, or not visible", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}")]
pub async fn get(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<RegistrationId>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let scope = scope_of(&actor);
    let (result, patient) = db
        .read(move |c| {
            let patient = registrations::patient_of(c, id)?;
            Ok::<_, ApiError>((registrations::get_visible(c, id, &scope).map_err(ApiError::from), patient))
        })
        .await?;
    let target = Target::new("registration.read", "backup_registration", id).patient(patient);
    let reg = audit.record(&actor, target, result).await?;
    Ok(ok_versioned(reg.version, &reg))
}

/// Changes one visible registration with its access-log row (see `access::change_resource`).
async fn change<F>(
    db: &Db,
    audit: &Audit,
    actor: &Actor,
    action: &'static str,
    id: RegistrationId,
    f: F,
) -> ApiResult<Registration>
where
    F: FnOnce(&mut DbConn, &Registration) -> ApiResult<Registration> + Send + 'static,
{
    let scope = scope_of(actor);
    let target = (action, "backup_registration", id);
    let result = change_resource(db, audit, actor, target, registrations::patient_of, move |c| {
        let current = registrations::get_visible(c, id, &scope)?;
        Ok((f(c, &current)?, Vec::new()))
    })
    .await;
    match result {
        // A racing activation won the one-active index (the refusal is already in the log):
        // name its registration.
        Err(e) if e.code() == "conflict" => {
            let existing = db
                .read(move |c| {
                    let Some(p) = registrations::patient_of(c, id)? else { return Ok::<_, ApiError>(None) };
                    Ok(registrations::active_of(c, p)?.map(|r| r.id))
                })
                .await?;
            Err(one_active(existing))
        }
        other => other,
    }
}

fn step(c: &mut DbConn, reg: &Registration, event: RegistrationEvent, reason: Option<&str>) -> ApiResult<Registration> {
    let state = |s: RegistrationStatus| crate::db::to_code(&s).unwrap_or_default();
    let invalid = |s: RegistrationStatus| {
        ApiError::conflict("invalid_transition", format!("A registration that is {} cannot {}", state(s), event.name()))
            .with("current_status", state(s))
    };
    let to = registration_transition(reg.status, event).ok_or_else(|| invalid(reg.status))?;
    if to == RegistrationStatus::Active {
        if let Some(existing) = registrations::active_of(c, reg.patient_id)? {
            return Err(one_active(Some(existing.id)));
        }
    }
    if !registrations::transition(c, reg, to, reason)? {
        return Err(invalid(registrations::get(c, reg.id)?.status));
    }
    Ok(registrations::get(c, reg.id)?)
}

/// The hospital takes the patient: `requested → active`. One active registration per patient
/// (409 `active_registration_exists` names it). The first exchange is the registration itself.
#[utoipa::path(
    post, path = "/api/v1/backup-registrations/{id}/activate", tag = "beds",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Active", body = Registration),
        (status = 403, description = "Not the hospital's bed manager", body = Problem),
        (status = 404, description = "No such registration, or not visible", body = Problem),
        (status = 409, description = "Not requested, or the patient already has an active registration", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/activate")]
pub async fn activate(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<RegistrationId>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let reg = change(&db, &audit, &actor, "registration.activate", id.into_inner(), move |c, current| {
        policy::manage_beds(&who, current.hospital_id)?;
        step(c, current, RegistrationEvent::Activate, None)
    })
    .await?;
    Ok(ok_versioned(reg.version, &reg))
}

/// The hospital declines the registration with a reason: `requested → rejected`.
#[utoipa::path(
    post, path = "/api/v1/backup-registrations/{id}/reject", tag = "beds",
    params(("id" = String, Path, format = Uuid)),
    request_body = RejectInput,
    responses(
        (status = 200, description = "Rejected", body = Registration),
        (status = 400, description = "Reason missing", body = Problem),
        (status = 403, description = "Not the hospital's bed manager", body = Problem),
        (status = 404, description = "No such registration, or not visible", body = Problem),
        (status = 409, description = "Not requested", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/reject")]
pub async fn reject(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<RegistrationId>,
    body: Result<Json<RejectInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let reg = change(&db, &audit, &actor, "registration.reject", id.into_inner(), move |c, current| {
        policy::manage_beds(&who, current.hospital_id)?;
        let mut errors = Vec::new();
        let Some(reason) = text::required_text("reason", body?.0.reason, 1000, &mut errors) else {
            return Err(ApiError::validation(errors));
        };
        step(c, current, RegistrationEvent::Reject, Some(&reason))
    })
    .await?;
    Ok(ok_versioned(reg.version, &reg))
}

/// Ends a registration (the primary physician or a coordinator): `requested | active → withdrawn`.
#[utoipa::path(
    post, path = "/api/v1/backup-registrations/{id}/withdraw", tag = "beds",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Withdrawn", body = Registration),
        (status = 403, description = "Not the primary physician or a coordinator", body = Problem),
        (status = 404, description = "No such registration, or not visible", body = Problem),
        (status = 409, description = "Already rejected or withdrawn", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/withdraw")]
pub async fn withdraw(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<RegistrationId>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let reg = change(&db, &audit, &actor, "registration.withdraw", id.into_inner(), move |c, current| {
        let case = cases::get(c, current.case_id)?;
        may_register(c, &who, &case)?;
        step(c, current, RegistrationEvent::Withdraw, None)
    })
    .await?;
    Ok(ok_versioned(reg.version, &reg))
}

/// Records an information exchange between the hospital and the clinic (either side); the
/// next is due 3 months after the latest.
#[utoipa::path(
    post, path = "/api/v1/backup-registrations/{id}/info-exchanges", tag = "beds",
    params(("id" = String, Path, format = Uuid)),
    request_body = ExchangeInput,
    responses(
        (status = 200, description = "Recorded; the registration with its next due date", body = Registration),
        (status = 400, description = "Invalid date", body = Problem),
        (status = 403, description = "Neither the hospital's bed manager nor the case's physician or coordinator", body = Problem),
        (status = 404, description = "No such registration, or not visible", body = Problem),
        (status = 409, description = "Not active", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/info-exchanges")]
pub async fn exchange(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<RegistrationId>,
    body: Result<Json<ExchangeInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let reg = change(&db, &audit, &actor, "registration.exchange", id.into_inner(), move |c, current| {
        if policy::manage_beds(&who, current.hospital_id).is_err() {
            let case = cases::get(c, current.case_id)?;
            may_register(c, &who, &case)?;
        }
        let input = body?.0;
        let mut errors = Vec::new();
        let today = today_jst(Utc::now());
        let on = match input.exchanged_on {
            Some(d) => parse_date("exchanged_on", &d, &mut errors),
            None => Some(today),
        };
        if on.is_some_and(|d| d > today || d < current.consent_obtained_on) {
            errors.push(FieldError::new("exchanged_on", "out_of_range", "must be between the consent and today"));
        }
        let note = text::optional_text("note", input.note, 2000, &mut errors);
        let Some(on) = on.filter(|_| errors.is_empty()) else { return Err(ApiError::validation(errors)) };
        if current.status != RegistrationStatus::Active {
            return Err(ApiError::conflict("invalid_transition", "Exchanges are recorded for active registrations")
                .with("current_status", crate::db::to_code(&current.status).unwrap_or_default()));
        }
        if !registrations::record_exchange(c, current, on, note.as_deref(), &who.sub())? {
            return Err(ApiError::conflict("concurrent_change", "The registration changed meanwhile; try again"));
        }
        Ok(registrations::get(c, current.id)?)
    })
    .await?;
    Ok(ok_versioned(reg.version, &reg))
}
