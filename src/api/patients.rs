//! `/api/v1/patients`: registration and scoped reads of home-care patients.

use actix_web::{get, patch, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::access::change_patient;
use super::organizations::search_query;
use crate::audit::{Audit, Target};
use crate::auth::{policy, Actor};
use crate::db::{patients, Db};
use crate::domain::ids::PatientId;
use crate::domain::patient::{Patient, PatientFields, PatientInput, PatientPatch};
use crate::domain::time::{parse_date, today_jst};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::conditional::IfMatch;
use crate::http::json::Json;
use crate::http::pagination::{Page, PageRequest};
use crate::http::{created, ok_versioned};

/// Registers a patient (coordinators). The patient is visible to the registering organization
/// and, later, to the teams and bases of their cases.
#[utoipa::path(
    post, path = "/api/v1/patients", tag = "patients",
    request_body = PatientInput,
    responses(
        (status = 201, description = "Registered", body = Patient, headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "Invalid body", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not a coordinator", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("")]
pub async fn create(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    body: Result<Json<PatientInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let (org, checked) = (actor.org, policy::register_patient(&actor));
    let patient = change_patient(&db, &audit, &actor, "patient.create", None, move |c| {
        checked?;
        let fields = PatientFields::parse(body?.0, today_jst(chrono::Utc::now())).map_err(ApiError::validation)?;
        let patient = patients::insert(c, &fields, org)?;
        let id = patient.id;
        Ok((patient, id))
    })
    .await?;
    Ok(created(format!("/api/v1/patients/{}", patient.id), patient.version, &patient))
}

/// Query of `GET /api/v1/patients`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Substring of the name or its reading (kana, width and spaces folded).
    q: Option<String>,
    /// Exact birth date, `YYYY-MM-DD`.
    #[param(format = Date)]
    birth_date: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Searches the patients visible to the caller.
#[utoipa::path(
    get, path = "/api/v1/patients", tag = "patients",
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = Page<Patient>),
        (status = 400, description = "Invalid filter", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "The role reads no patient data", body = Problem),
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
    let page = audit.record(&actor, Target::collection("patient.list", "patient"), result).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn search(actor: &Actor, db: &Db, q: ListQuery) -> ApiResult<Page<Patient>> {
    let scope = policy::case_scope(actor);
    if scope.is_empty() {
        return Err(ApiError::forbidden("Your role does not read patient data"));
    }
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let mut errors = Vec::new();
    let filter = patients::Filter {
        q: q.q.and_then(|s| search_query(&s, &mut errors)),
        birth_date: q.birth_date.and_then(|d| parse_date("birth_date", &d, &mut errors)),
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    db.read(move |c| Ok::<_, ApiError>(patients::list(c, &scope, &filter, &page)?)).await
}

/// One patient, if visible to the caller.
#[utoipa::path(
    get, path = "/api/v1/patients/{id}", tag = "patients",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The patient", body = Patient, headers(("ETag" = String))),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "No such patient, or not visible", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}")]
pub async fn get(actor: Actor, audit: Audit, db: web::Data<Db>, id: web::Path<PatientId>) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let scope = audit.break_glass().and_then(|bg| policy::case_read_scope(&actor, bg.as_deref()));
    let result = match scope {
        Ok(scope) => db.read(move |c| Ok::<_, ApiError>(patients::get_visible(c, id, &scope)?)).await,
        Err(e) => Err(e),
    };
    let target = Target::new("patient.read", "patient", id).patient(Some(id));
    let patient = audit.record(&actor, target, result).await?;
    Ok(ok_versioned(patient.version, &patient))
}

/// Changes a patient (coordinators who can see them; JSON merge patch; `If-Match` required).
#[utoipa::path(
    patch, path = "/api/v1/patients/{id}", tag = "patients",
    params(("id" = String, Path, format = Uuid), ("If-Match" = String, Header)),
    request_body = PatientPatch,
    responses(
        (status = 200, description = "Changed", body = Patient, headers(("ETag" = String))),
        (status = 400, description = "Invalid body", body = Problem),
        (status = 403, description = "Visible, but not yours to change", body = Problem),
        (status = 404, description = "No such patient, or not visible", body = Problem),
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
    id: web::Path<PatientId>,
    if_match: Result<IfMatch, ApiError>,
    body: Result<Json<PatientPatch>, ApiError>,
) -> ApiResult<HttpResponse> {
    let scope = policy::case_scope(&actor);
    let allowed = policy::register_patient(&actor);
    let id = id.into_inner();
    let today = today_jst(chrono::Utc::now());
    let patient = change_patient(&db, &audit, &actor, "patient.update", Some(id), move |c| {
        let current = patients::get_visible(c, id, &scope)?;
        allowed?;
        let (if_match, patch) = (if_match?, body?.0);
        if_match.check(current.version)?;
        let next = current.fields().patched(patch, today).map_err(ApiError::validation)?;
        if next == current.fields() {
            return Ok((current, id));
        }
        if !patients::update(c, id, current.version, &next)? {
            return Err(ApiError::version_mismatch(patients::get(c, id)?.version));
        }
        Ok((patients::get(c, id)?, id))
    })
    .await?;
    Ok(ok_versioned(patient.version, &patient))
}
