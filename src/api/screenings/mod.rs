//! `/api/v1/screenings`: discharge screening sheets (DOMAIN.md §4). Hospitals send them (and
//! retry: one encounter is one sheet), the base reviews the positive ones into cases. Sheets are
//! patient data: every access has its row in the access log.

use actix_web::{get, patch, post, web, HttpResponse};
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;

use super::access::change_resource;
use super::{optional_id, required_id};
use crate::audit::{Audit, Target};
use crate::auth::{policy, Actor};
use crate::db::{cases, organizations, patients, screenings, Db, DbConn, DbError};
use crate::domain::ids::{CaseId, OrganizationId, PatientId, ScreeningId};
use crate::domain::organization::{parse_enum, OrganizationKind};
use crate::domain::screening::{
    due_at, transition, Demographics, Evaluation, PatientCandidate, Sheet, SheetContent, SheetEvent, SheetStatus,
    Template, SCREENING_DAYS, WEEK_DAYS,
};
use crate::domain::text;
use crate::domain::time::parse_instant;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::conditional::IfMatch;
use crate::http::json::Json;
use crate::http::pagination::{Page, PageRequest};
use crate::http::{created, ok_versioned};

mod input;

use input::{parse_create, parse_revision, patched, Parsed, PatientChoice, TemplateChoice};
pub use input::{AcceptInput, DeclineInput, MilestoneInput, MilestoneKind, RevisionInput, SheetInput, SheetPatch};

/// The caller's organization, if it is a hospital whose discharge staff the caller is.
fn sending_hospital(c: &mut DbConn, actor: &Actor) -> ApiResult<OrganizationId> {
    policy::send_screening(actor, actor.org)?;
    match organizations::get(c, actor.org) {
        Ok(org) if org.kind == OrganizationKind::Hospital => Ok(actor.org),
        Ok(_) | Err(DbError::NotFound) => Err(ApiError::forbidden("Only hospitals send screening sheets")),
        Err(e) => Err(e.into()),
    }
}

fn resolve_template(c: &mut DbConn, choice: &TemplateChoice, hospital: OrganizationId) -> ApiResult<Template> {
    let unusable =
        |field: &str| ApiError::invalid_field(field, "unknown_reference", "names no published template you may use");
    match choice {
        TemplateChoice::Id(id) => match screenings::get_template(c, *id) {
            Ok(t) if t.status == crate::domain::screening::TemplateStatus::Published => Ok(t),
            Ok(_) | Err(DbError::NotFound) => Err(unusable("template_id")),
            Err(e) => Err(e.into()),
        },
        TemplateChoice::Code(code, version) => {
            screenings::find_published(c, code, *version, hospital)?.ok_or_else(|| unusable("template"))
        }
    }
}

/// Checks the references and the answers against the template, and derives the rest.
fn build(c: &mut DbConn, p: Parsed, template: &Template, complete: bool) -> ApiResult<(SheetContent, Evaluation)> {
    let mut errors = Vec::new();
    if !organizations::exists(c, p.base)? {
        errors.push(FieldError::new("base_organization_id", "unknown_reference", "names no organization"));
    }
    if let PatientChoice::Record(id) = p.patient {
        // Only "no such patient" is the client's error; any other failure ends the change (a
        // failed statement may have rolled the transaction back).
        match patients::get(c, id) {
            Ok(_) => {}
            Err(DbError::NotFound) => {
                errors.push(FieldError::new("patient_id", "unknown_reference", "names no patient"));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let (answers, emergency) = template.check_answers(p.answers, p.emergency_admission, &mut errors);
    if emergency.is_none() {
        errors.push(FieldError::new("emergency_admission", "required", "is required"));
    }
    if complete {
        errors.extend(template.missing(&answers));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let evaluation = template.evaluate(&answers);
    let (patient_id, patient) = match p.patient {
        PatientChoice::Record(id) => (Some(id), None),
        PatientChoice::Described(d) => (None, Some(d)),
    };
    let content = SheetContent {
        template_id: template.id,
        base_organization_id: p.base,
        patient_id,
        patient,
        admitted_at: p.admitted_at,
        emergency_admission: emergency.unwrap_or(false),
        expected_discharge_on: p.expected_discharge_on,
        answers,
        notes: p.notes,
    };
    Ok((content, evaluation))
}

/// What a post for an encounter that already has sheets finds.
enum Repeat {
    /// The same content again: that sheet.
    Same(ScreeningId),
    /// Other content: the encounter's current sheet.
    Different(ScreeningId),
}

fn repeat_of(c: &mut DbConn, hospital: OrganizationId, encounter_ref: &str, hash: &str) -> ApiResult<Option<Repeat>> {
    let revisions = screenings::encounter_revisions(c, hospital, encounter_ref)?;
    if let Some((id, _, _)) = revisions.iter().find(|(_, _, h)| h == hash) {
        return Ok(Some(Repeat::Same(*id)));
    }
    let current = revisions.iter().find(|(_, s, _)| *s != SheetStatus::Superseded).or(revisions.first());
    Ok(current.map(|(id, _, _)| Repeat::Different(*id)))
}

fn duplicate_encounter(existing: ScreeningId) -> ApiError {
    ApiError::conflict(
        "duplicate_encounter",
        "This hospital already sent another sheet for this encounter: correct it with a revision",
    )
    .with("existing_id", existing.to_string())
}

enum Created {
    New(Sheet),
    Existing(Sheet),
}

/// Sends a sheet for one of the caller's hospital's admissions. The server validates the
/// answers against the template and derives factors, score, result and deadlines. The same
/// encounter is one sheet: a repeat with the same content answers the existing sheet (200),
/// with other content 409 `duplicate_encounter` naming it.
#[utoipa::path(
    post, path = "/api/v1/screenings", tag = "screening",
    request_body = SheetInput,
    params(("Idempotency-Key" = Option<String>, Header)),
    responses(
        (status = 201, description = "Sent", body = Sheet, headers(("Location" = String), ("ETag" = String))),
        (status = 200, description = "The same content was already sent: the existing sheet", body = Sheet),
        (status = 400, description = "Invalid body or answers (field-level errors)", body = Problem),
        (status = 403, description = "Not a hospital's discharge staff", body = Problem),
        (status = 409, description = "Another sheet exists for this encounter", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("")]
pub async fn create(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    body: Result<Json<SheetInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let now = Utc::now();
    let parsed = audit.refuse_break_glass().and_then(|()| parse_create(body?.0, now));
    let patient = parsed.as_ref().ok().and_then(|(p, _, _)| match p.patient {
        PatientChoice::Record(id) => Some(id),
        PatientChoice::Described(_) => None,
    });
    let result = match parsed {
        Err(e) => Err(e),
        Ok((parsed, encounter_ref, status)) => intake(&db, &audit, &actor, parsed, encounter_ref, status).await,
    };
    let result = audit
        .after_change(&actor, || Target::collection("screening.create", "screening").patient(patient), result)
        .await?;
    Ok(match result {
        Created::New(sheet) => created(format!("/api/v1/screenings/{}", sheet.id), sheet.version, &sheet),
        Created::Existing(sheet) => ok_versioned(sheet.version, &sheet),
    })
}

async fn intake(
    db: &Db,
    audit: &Audit,
    actor: &Actor,
    parsed: Parsed,
    encounter_ref: String,
    status: SheetStatus,
) -> ApiResult<Created> {
    let mut attempt = 0;
    loop {
        let (tx_audit, tx_actor, tx_encounter, tx_parsed) =
            (audit.clone(), actor.clone(), encounter_ref.clone(), parsed.clone());
        let result = db.write(move |c| intake_tx(c, &tx_audit, &tx_actor, tx_parsed, &tx_encounter, status)).await;
        match result {
            // A concurrent post of this encounter won the unique index: once it has committed,
            // the same write sees its sheet and answers as a repeat.
            Err(e) if e.code() == "conflict" && attempt < 2 => attempt += 1,
            other => return other,
        }
    }
}

fn intake_tx(
    c: &mut DbConn,
    audit: &Audit,
    actor: &Actor,
    parsed: Parsed,
    encounter_ref: &str,
    status: SheetStatus,
) -> ApiResult<Created> {
    let hospital = sending_hospital(c, actor)?;
    let Some(choice) = parsed.template.clone() else { return Err(ApiError::internal("template missing")) };
    let template = resolve_template(c, &choice, hospital)?;
    let (content, evaluation) = build(c, parsed, &template, status == SheetStatus::Submitted)?;
    match repeat_of(c, hospital, encounter_ref, &content.hash())? {
        Some(Repeat::Same(id)) => {
            let sheet = screenings::get_sheet(c, id)?;
            if sheet.status == SheetStatus::Draft && status == SheetStatus::Submitted {
                return Err(ApiError::conflict(
                    "duplicate_encounter",
                    "This encounter's sheet is still a draft: submit it with POST /api/v1/screenings/{id}/submit",
                )
                .with("existing_id", id.to_string()));
            }
            let target = Target::new("screening.create", "screening", id).patient(sheet.patient_id);
            audit.append(c, &[&audit.entry(actor, target, 200)])?;
            return Ok(Created::Existing(sheet));
        }
        Some(Repeat::Different(id)) => return Err(duplicate_encounter(id)),
        None => {}
    }
    let now = Utc::now();
    let new = screenings::NewSheet {
        hospital,
        encounter_ref,
        revision: 1,
        supersedes: None,
        content: &content,
        evaluation: &evaluation,
        status,
        screening_due_at: due_at(content.admitted_at, SCREENING_DAYS),
        week_due_at: due_at(content.admitted_at, WEEK_DAYS),
        submitted_at: (status == SheetStatus::Submitted).then_some(now),
        interview_held_at: None,
        conference_held_at: None,
    };
    let id = screenings::insert_sheet(c, &new)?;
    let target = Target::new("screening.create", "screening", id).patient(content.patient_id);
    audit.append(c, &[&audit.entry(actor, target, 201)])?;
    Ok(Created::New(screenings::get_sheet(c, id)?))
}

/// Likely patient records for the base's reviewer of a submitted sheet without one.
fn with_candidates(c: &mut DbConn, actor: &Actor, mut sheet: Sheet) -> ApiResult<Sheet> {
    let reviewer = policy::review_screening(actor, sheet.base_organization_id).is_ok();
    if let (true, SheetStatus::Submitted, None, Some(d)) = (reviewer, sheet.status, sheet.patient_id, &sheet.patient) {
        sheet.patient_candidates = Some(candidates(c, actor, d)?);
    }
    Ok(sheet)
}

fn candidates(c: &mut DbConn, actor: &Actor, d: &Demographics) -> ApiResult<Vec<PatientCandidate>> {
    let found = patients::born_on(c, &policy::case_scope(actor), d.birth_date, &d.kana)?;
    Ok(found
        .into_iter()
        .filter(|p| d.likely_same(&p.kana, p.birth_date))
        .map(|p| PatientCandidate {
            id: p.id,
            name: p.name,
            kana: p.kana,
            birth_date: p.birth_date,
            municipality_code: p.municipality_code,
        })
        .collect())
}

/// Reads one sheet if visible; the access is recorded with the sheet's patient, refused or not.
async fn read_sheet(db: &Db, audit: &Audit, actor: &Actor, id: ScreeningId) -> ApiResult<Sheet> {
    let (scope, who) = (policy::sheet_scope(actor), actor.clone());
    let refused = match audit.break_glass() {
        Ok(None) => Ok(()),
        Ok(Some(_)) | Err(_) => Err(ApiError::bad_request(
            "break_glass_not_applicable",
            "Break-glass opens cases only; sheets are read by their hospital, their base and the case's team",
        )),
    };
    let (result, patient) = db
        .read(move |c| {
            let patient = screenings::patient_of(c, id)?;
            let result = refused
                .and_then(|()| Ok(screenings::get_visible_sheet(c, id, &scope)?))
                .and_then(|sheet| with_candidates(c, &who, sheet));
            Ok::<_, ApiError>((result, patient))
        })
        .await?;
    // Likely patient records shown to the reviewer are accesses to those patients' data too.
    let disclosed: Vec<Target> = match &result {
        Ok(sheet) => sheet
            .patient_candidates
            .iter()
            .flatten()
            .map(|p| Target::new("screening.candidate", "patient", p.id).patient(Some(p.id)))
            .collect(),
        Err(_) => Vec::new(),
    };
    let target = Target::new("screening.read", "screening", id).patient(patient);
    audit.record_disclosing(actor, target, disclosed, result).await
}

/// Changes one visible sheet with its access-log rows (see `access::change_resource`).
async fn change_sheet<F>(
    db: &Db,
    audit: &Audit,
    actor: &Actor,
    action: &'static str,
    id: ScreeningId,
    f: F,
) -> ApiResult<Sheet>
where
    F: FnOnce(&mut DbConn, &Sheet) -> ApiResult<(Sheet, Vec<Target>)> + Send + 'static,
{
    let scope = policy::sheet_scope(actor);
    change_resource(db, audit, actor, (action, "screening", id), screenings::patient_of, move |c| {
        let current = screenings::get_visible_sheet(c, id, &scope)?;
        f(c, &current)
    })
    .await
}

fn concurrent_change() -> ApiError {
    ApiError::conflict("concurrent_change", "The sheet changed while this request ran; read it again and retry")
}

fn invalid_transition(from: SheetStatus, event: SheetEvent) -> ApiError {
    let state = crate::db::to_code(&from).unwrap_or_default();
    ApiError::conflict("invalid_transition", format!("A sheet that is {state} cannot {}", event.name()))
        .with("current_status", state)
}

/// Runs a status change as a compare-and-set on the current status.
fn step(c: &mut DbConn, sheet: &Sheet, event: SheetEvent, d: &screenings::Decision) -> ApiResult<Sheet> {
    let to = transition(sheet.status, event).ok_or_else(|| invalid_transition(sheet.status, event))?;
    if !screenings::transition(c, sheet.id, (sheet.status, sheet.version), to, d)? {
        let now = screenings::get_sheet(c, sheet.id)?;
        if now.status != sheet.status {
            return Err(invalid_transition(now.status, event));
        }
        return Err(concurrent_change());
    }
    Ok(screenings::get_sheet(c, sheet.id)?)
}

/// Query of `GET /api/v1/screenings`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(format = Uuid)]
    hospital_id: Option<String>,
    #[param(format = Uuid)]
    base_organization_id: Option<String>,
    #[param(value_type = Option<SheetStatus>)]
    status: Option<String>,
    #[param(value_type = Option<crate::domain::screening::ScreeningResult>)]
    result: Option<String>,
    #[param(format = Uuid)]
    case_id: Option<String>,
    #[param(format = Uuid)]
    patient_id: Option<String>,
    encounter_ref: Option<String>,
    /// Sheets (draft, submitted or accepted) with a deadline not met and due before this time.
    due_before: Option<String>,
    /// `true`: sheets (draft, submitted or accepted) with a deadline not met and already past.
    overdue: Option<bool>,
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// Lists the sheets visible to the caller: their hospital's, those sent to their base, and
/// those of the cases whose team they are on.
#[utoipa::path(
    get, path = "/api/v1/screenings", tag = "screening",
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = Page<Sheet>),
        (status = 400, description = "Invalid filter", body = Problem),
        (status = 403, description = "The role reads no sheets", body = Problem),
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
    let page = audit.record(&actor, Target::collection("screening.list", "screening"), result).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn search(actor: &Actor, db: &Db, q: ListQuery) -> ApiResult<Page<Sheet>> {
    let scope = policy::sheet_scope(actor);
    if scope.is_empty() {
        return Err(ApiError::forbidden("Your role does not read screening sheets"));
    }
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let mut errors = Vec::new();
    let e = &mut errors;
    let filter = screenings::Filter {
        hospital_id: optional_id("hospital_id", q.hospital_id, e),
        base_organization_id: optional_id("base_organization_id", q.base_organization_id, e),
        status: q.status.and_then(|s| parse_enum("status", &s, e)),
        result: q.result.and_then(|s| parse_enum("result", &s, e)),
        case_id: optional_id("case_id", q.case_id, e),
        patient_id: optional_id("patient_id", q.patient_id, e),
        encounter_ref: q.encounter_ref,
        due_before: q.due_before.and_then(|t| parse_instant("due_before", &t, e)),
        overdue_at: q.overdue.unwrap_or(false).then(Utc::now),
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    db.read(move |c| Ok::<_, ApiError>(screenings::list(c, &scope, &filter, &page)?)).await
}

/// One sheet, with its deadlines' states now; the base's reviewers also see likely patient
/// records for a sheet that names none.
#[utoipa::path(
    get, path = "/api/v1/screenings/{id}", tag = "screening",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The sheet", body = Sheet, headers(("ETag" = String))),
        (status = 404, description = "No such sheet, or not visible", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}")]
pub async fn get(actor: Actor, audit: Audit, db: web::Data<Db>, id: web::Path<ScreeningId>) -> ApiResult<HttpResponse> {
    let sheet = read_sheet(&db, &audit, &actor, id.into_inner()).await?;
    Ok(ok_versioned(sheet.version, &sheet))
}

/// Changes a draft (`If-Match` required). Submitted sheets are corrected by a revision.
#[utoipa::path(
    patch, path = "/api/v1/screenings/{id}", tag = "screening",
    params(("id" = String, Path, format = Uuid), ("If-Match" = String, Header)),
    request_body = SheetPatch,
    responses(
        (status = 200, description = "Changed", body = Sheet),
        (status = 400, description = "Invalid body or answers", body = Problem),
        (status = 403, description = "Not the hospital's discharge staff", body = Problem),
        (status = 404, description = "No such sheet, or not visible", body = Problem),
        (status = 409, description = "Not a draft", body = Problem),
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
    id: web::Path<ScreeningId>,
    if_match: Result<IfMatch, ApiError>,
    body: Result<Json<SheetPatch>, ApiError>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let who = actor.clone();
    let sheet = change_sheet(&db, &audit, &actor, "screening.update", id, move |c, current| {
        policy::send_screening(&who, current.hospital_id)?;
        if current.status != SheetStatus::Draft {
            return Err(ApiError::conflict(
                "invalid_transition",
                "Only a draft is changed; correct a submitted sheet with a revision",
            )
            .with("current_status", crate::db::to_code(&current.status).unwrap_or_default()));
        }
        let (if_match, patch) = (if_match?, body?.0);
        if_match.check(current.version)?;
        let parsed = patched(current, patch, Utc::now())?;
        let template = screenings::get_template(c, current.template.id)?;
        let (content, evaluation) = build(c, parsed, &template, false)?;
        let due = (due_at(content.admitted_at, SCREENING_DAYS), due_at(content.admitted_at, WEEK_DAYS));
        if !screenings::update_draft(c, id, current.version, &content, &evaluation, due)? {
            return Err(ApiError::version_mismatch(screenings::get_sheet(c, id)?.version));
        }
        Ok((screenings::get_sheet(c, id)?, Vec::new()))
    })
    .await?;
    Ok(ok_versioned(sheet.version, &sheet))
}

/// Sends a draft to the base: `draft → submitted`; every required item must be answered.
#[utoipa::path(
    post, path = "/api/v1/screenings/{id}/submit", tag = "screening",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Submitted", body = Sheet),
        (status = 400, description = "Required answers missing", body = Problem),
        (status = 403, description = "Not the hospital's discharge staff", body = Problem),
        (status = 404, description = "No such sheet, or not visible", body = Problem),
        (status = 409, description = "Not a draft", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/submit")]
pub async fn submit(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<ScreeningId>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let sheet = change_sheet(&db, &audit, &actor, "screening.submit", id.into_inner(), move |c, current| {
        policy::send_screening(&who, current.hospital_id)?;
        if current.status == SheetStatus::Draft {
            let missing = screenings::get_template(c, current.template.id)?.missing(&current.answers);
            if !missing.is_empty() {
                return Err(ApiError::validation(missing));
            }
        }
        let d = screenings::Decision { submitted: true, ..Default::default() };
        Ok((step(c, current, SheetEvent::Submit, &d)?, Vec::new()))
    })
    .await?;
    Ok(ok_versioned(sheet.version, &sheet))
}

/// Takes a sheet back before the base decided: `draft | submitted → withdrawn`.
#[utoipa::path(
    post, path = "/api/v1/screenings/{id}/withdraw", tag = "screening",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Withdrawn", body = Sheet),
        (status = 403, description = "Not the hospital's discharge staff", body = Problem),
        (status = 404, description = "No such sheet, or not visible", body = Problem),
        (status = 409, description = "Already decided", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/withdraw")]
pub async fn withdraw(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<ScreeningId>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let sheet = change_sheet(&db, &audit, &actor, "screening.withdraw", id.into_inner(), move |c, current| {
        policy::send_screening(&who, current.hospital_id)?;
        let d = screenings::Decision { decided_by: Some(who.sub()), ..Default::default() };
        Ok((step(c, current, SheetEvent::Withdraw, &d)?, Vec::new()))
    })
    .await?;
    Ok(ok_versioned(sheet.version, &sheet))
}

/// Declines a submitted sheet with a reason: `submitted → declined`.
#[utoipa::path(
    post, path = "/api/v1/screenings/{id}/decline", tag = "screening",
    params(("id" = String, Path, format = Uuid)),
    request_body = DeclineInput,
    responses(
        (status = 200, description = "Declined", body = Sheet),
        (status = 400, description = "Reason missing", body = Problem),
        (status = 403, description = "Not a coordinator of the addressed base", body = Problem),
        (status = 404, description = "No such sheet, or not visible", body = Problem),
        (status = 409, description = "Not submitted", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/decline")]
pub async fn decline(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<ScreeningId>,
    body: Result<Json<DeclineInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let sheet = change_sheet(&db, &audit, &actor, "screening.decline", id.into_inner(), move |c, current| {
        policy::review_screening(&who, current.base_organization_id)?;
        let mut errors = Vec::new();
        let reason = text::required_text("reason", body?.0.reason, 500, &mut errors);
        let Some(reason) = reason else { return Err(ApiError::validation(errors)) };
        let d =
            screenings::Decision { decline_reason: Some(reason), decided_by: Some(who.sub()), ..Default::default() };
        Ok((step(c, current, SheetEvent::Decline, &d)?, Vec::new()))
    })
    .await?;
    Ok(ok_versioned(sheet.version, &sheet))
}

/// The patient an accepted sheet is about, and whether the acceptance registers them.
enum AcceptedPatient {
    Existing(PatientId),
    New(Demographics),
}

fn unknown(field: &str, what: &str) -> ApiError {
    ApiError::invalid_field(field, "unknown_reference", format!("names no {what} visible to you"))
}

fn mismatch(detail: &str) -> ApiError {
    ApiError::conflict("patient_mismatch", detail.to_owned())
}

/// A patient record the reviewer chose (or the case's) must be the sheet's: its own record, or
/// one born on the day the hospital gave.
fn check_same(sheet: &Sheet, patient: &crate::domain::patient::Patient) -> ApiResult<()> {
    match (sheet.patient_id, &sheet.patient) {
        (Some(own), _) if own != patient.id => Err(mismatch("The sheet names another patient record")),
        (None, Some(d)) if d.birth_date != patient.birth_date => {
            Err(mismatch("The patient record's birth date is not the one on the sheet"))
        }
        _ => Ok(()),
    }
}

/// Decides the patient of an acceptance without a case: the sheet's record, the reviewer's
/// choice, or a new record — never a silent merge into a likely match.
fn accepted_patient(c: &mut DbConn, actor: &Actor, sheet: &Sheet, input: &AcceptInput) -> ApiResult<AcceptedPatient> {
    let chosen: Option<PatientId> = match &input.patient_id {
        None => None,
        Some(raw) => {
            let mut errors = Vec::new();
            match required_id("patient_id", Some(raw.clone()), &mut errors) {
                Some(id) => Some(id),
                None => return Err(ApiError::validation(errors)),
            }
        }
    };
    if let Some(id) = chosen {
        let patient = match patients::get_visible(c, id, &policy::case_scope(actor)) {
            Err(DbError::NotFound) => return Err(unknown("patient_id", "patient")),
            other => other?,
        };
        check_same(sheet, &patient)?;
        return Ok(AcceptedPatient::Existing(id));
    }
    match (sheet.patient_id, &sheet.patient) {
        (Some(id), _) => Ok(AcceptedPatient::Existing(id)),
        (None, Some(d)) => {
            let found = candidates(c, actor, d)?;
            if !found.is_empty() && input.new_patient != Some(true) {
                let ids: Vec<String> = found.iter().map(|p| p.id.to_string()).collect();
                return Err(ApiError::conflict(
                    "patient_match_required",
                    "Patient records like this one exist: accept with patient_id, or with new_patient: true",
                )
                .with("candidates", ids));
            }
            Ok(AcceptedPatient::New(d.clone()))
        }
        (None, None) => Err(ApiError::internal("a sheet without a patient")),
    }
}

/// Accepts a positive sheet: `submitted → accepted`, linked to an open case of the base
/// (`case_id`), or opening a new `referred` case — for the sheet's patient record, the one
/// the reviewer chose, or a new one registered from the sheet.
#[utoipa::path(
    post, path = "/api/v1/screenings/{id}/accept", tag = "screening",
    params(("id" = String, Path, format = Uuid)),
    request_body = AcceptInput,
    responses(
        (status = 200, description = "Accepted", body = Sheet),
        (status = 400, description = "Invalid body, or a case or patient not visible", body = Problem),
        (status = 403, description = "Not a coordinator of the addressed base", body = Problem),
        (status = 404, description = "No such sheet, or not visible", body = Problem),
        (status = 409, description = "Not submitted, negative, patient mismatch, a choice of patient needed, or an open case exists", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/accept")]
pub async fn accept(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<ScreeningId>,
    req: actix_web::HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let input = crate::http::json::optional::<AcceptInput>(&req, &body);
    let sheet = change_sheet(&db, &audit, &actor, "screening.accept", id.into_inner(), move |c, current| {
        policy::review_screening(&who, current.base_organization_id)?;
        let input = input?.unwrap_or_default();
        if current.status != SheetStatus::Submitted {
            return Err(invalid_transition(current.status, SheetEvent::Accept));
        }
        if current.result != Some(crate::domain::screening::ScreeningResult::Positive) {
            return Err(ApiError::conflict(
                "screening_negative",
                "Only a positive sheet is accepted into a case; decline a negative one",
            ));
        }
        let base = current.base_organization_id;
        let mut created = Vec::new();
        let (case_id, patient_id) = if let Some(raw) = &input.case_id {
            let mut errors = Vec::new();
            let Some(case_id) = required_id::<CaseId>("case_id", Some(raw.clone()), &mut errors) else {
                return Err(ApiError::validation(errors));
            };
            let case = match cases::get_visible(c, case_id, &policy::case_scope(&who)) {
                Err(DbError::NotFound) => return Err(unknown("case_id", "case")),
                other => other?,
            };
            if case.managing_organization_id != base {
                return Err(ApiError::invalid_field(
                    "case_id",
                    "other_organization",
                    "is not a case of the addressed base",
                ));
            }
            if !case.status.is_open() {
                return Err(ApiError::conflict("case_not_open", "The case is closed or cancelled"));
            }
            check_same(current, &patients::get(c, case.patient_id)?)?;
            if input.patient_id.as_deref().is_some_and(|p| p.parse::<PatientId>().ok() != Some(case.patient_id)) {
                return Err(mismatch("patient_id is not the case's patient"));
            }
            (case_id, case.patient_id)
        } else {
            let patient = match accepted_patient(c, &who, current, &input)? {
                AcceptedPatient::Existing(id) => id,
                AcceptedPatient::New(d) => {
                    let p = patients::insert(c, &d.to_patient(), base)?;
                    created.push(Target::new("patient.create", "patient", p.id).patient(Some(p.id)));
                    p.id
                }
            };
            if let Some(existing) = cases::open_case_of(c, patient, base)? {
                return Err(ApiError::conflict(
                    "open_case_exists",
                    "The patient already has an open case at this base: accept with its case_id",
                )
                .with("existing_id", existing.to_string()));
            }
            let case = cases::insert(c, patient, base, None, &who.sub()).map_err(|e| match e {
                DbError::Unique(_) => ApiError::conflict(
                    "open_case_exists",
                    "The patient already has an open case at this base: accept with its case_id",
                ),
                e => e.into(),
            })?;
            created.push(Target::new("case.create", "case", case.id).patient(Some(patient)));
            (case.id, patient)
        };
        let d = screenings::Decision {
            case_id: Some(case_id),
            patient_id: Some(patient_id),
            decided_by: Some(who.sub()),
            ..Default::default()
        };
        Ok((step(c, current, SheetEvent::Accept, &d)?, created))
    })
    .await?;
    Ok(ok_versioned(sheet.version, &sheet))
}

/// Corrects a submitted sheet: the new revision (`revision + 1`, submitted) supersedes it; the
/// old one is kept, `superseded`, and points at the new one. Deadlines already met stay met.
#[utoipa::path(
    post, path = "/api/v1/screenings/{id}/revisions", tag = "screening",
    params(("id" = String, Path, format = Uuid)),
    request_body = RevisionInput,
    responses(
        (status = 201, description = "The new revision", body = Sheet, headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "Invalid body or answers", body = Problem),
        (status = 403, description = "Not the hospital's discharge staff", body = Problem),
        (status = 404, description = "No such sheet, or not visible", body = Problem),
        (status = 409, description = "Not submitted (drafts are patched; decided sheets stay)", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/revisions")]
pub async fn revise(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<ScreeningId>,
    body: Result<Json<RevisionInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let sheet = change_sheet(&db, &audit, &actor, "screening.revise", id.into_inner(), move |c, current| {
        policy::send_screening(&who, current.hospital_id)?;
        if transition(current.status, SheetEvent::Revise).is_none() {
            return Err(invalid_transition(current.status, SheetEvent::Revise));
        }
        let mut parsed = parse_revision(body?.0, Utc::now())?;
        let choice = parsed.template.take().unwrap_or(TemplateChoice::Id(current.template.id));
        let template = resolve_template(c, &choice, current.hospital_id)?;
        let (content, evaluation) = build(c, parsed, &template, true)?;
        step(c, current, SheetEvent::Revise, &screenings::Decision::default())?;
        let new = screenings::NewSheet {
            hospital: current.hospital_id,
            encounter_ref: &current.encounter_ref,
            revision: current.revision + 1,
            supersedes: Some(current.id),
            content: &content,
            evaluation: &evaluation,
            status: SheetStatus::Submitted,
            screening_due_at: due_at(content.admitted_at, SCREENING_DAYS),
            week_due_at: due_at(content.admitted_at, WEEK_DAYS),
            submitted_at: current.submitted_at,
            interview_held_at: current.interview_held_at,
            conference_held_at: current.conference_held_at,
        };
        let new_id = screenings::insert_sheet(c, &new)?;
        let target = Target::new("screening.create", "screening", new_id).patient(content.patient_id);
        Ok((screenings::get_sheet(c, new_id)?, vec![target]))
    })
    .await?;
    Ok(created(format!("/api/v1/screenings/{}", sheet.id), sheet.version, &sheet))
}

/// Records that the interview or the conference was held (once each), which meets its
/// deadline.
#[utoipa::path(
    post, path = "/api/v1/screenings/{id}/milestones", tag = "screening",
    params(("id" = String, Path, format = Uuid)),
    request_body = MilestoneInput,
    responses(
        (status = 200, description = "Recorded", body = Sheet),
        (status = 400, description = "Invalid kind or time", body = Problem),
        (status = 403, description = "Not the hospital's discharge staff", body = Problem),
        (status = 404, description = "No such sheet, or not visible", body = Problem),
        (status = 409, description = "Already recorded, or the sheet is closed", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/milestones")]
pub async fn milestone(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<ScreeningId>,
    body: Result<Json<MilestoneInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let who = actor.clone();
    let sheet = change_sheet(&db, &audit, &actor, "screening.milestone", id.into_inner(), move |c, current| {
        policy::send_screening(&who, current.hospital_id)?;
        let input = body?.0;
        let mut errors = Vec::new();
        let e = &mut errors;
        let kind: Option<MilestoneKind> =
            crate::domain::required(e, "kind", input.kind).and_then(|k| parse_enum("kind", &k, e));
        let held_at =
            crate::domain::required(e, "held_at", input.held_at).and_then(|t| parse_instant("held_at", &t, e));
        if let Some(t) = held_at {
            if t < current.admitted_at || t > Utc::now() + chrono::Duration::minutes(5) {
                e.push(FieldError::new("held_at", "out_of_range", "must be between the admission and now"));
            }
        }
        let (Some(kind), Some(held_at), true) = (kind, held_at, errors.is_empty()) else {
            return Err(ApiError::validation(errors));
        };
        if !SheetStatus::LIVE.contains(&current.status) {
            return Err(ApiError::conflict("invalid_transition", "The sheet is closed")
                .with("current_status", crate::db::to_code(&current.status).unwrap_or_default()));
        }
        let recorded = match kind {
            MilestoneKind::Interview => current.interview_held_at,
            MilestoneKind::Conference => current.conference_held_at,
        };
        if recorded.is_some() {
            return Err(ApiError::conflict("already_recorded", "This milestone is already recorded"));
        }
        if !screenings::record_milestone(c, current.id, current.version, kind == MilestoneKind::Conference, held_at)? {
            return Err(concurrent_change());
        }
        Ok((screenings::get_sheet(c, current.id)?, Vec::new()))
    })
    .await?;
    Ok(ok_versioned(sheet.version, &sheet))
}
