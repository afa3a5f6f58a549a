//! Absences (`/api/v1/practitioners/{id}/absences`) and on-call rosters
//! (`/api/v1/organizations/{id}/on-call-shifts`): the facts cover resolution walks.

use actix_web::{delete, get, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{policy, Actor};
use crate::db::{organizations, practitioners, schedule, Db, DbError};
use crate::domain::ids::{AbsenceId, OrganizationId, PractitionerId, ShiftId};
use crate::domain::practitioner::Profession;
use crate::domain::schedule::{Absence, AbsenceInput, NewAbsence, NewShift, Shift, ShiftInput};
use crate::domain::time::parse_instant;
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::json::Json;
use crate::http::pagination::{Page, PageRequest};

/// Query of the schedule lists: entries overlapping `[from, to)`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WindowQuery {
    #[param(format = DateTime)]
    from: Option<String>,
    #[param(format = DateTime)]
    to: Option<String>,
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    cursor: Option<String>,
}

type Window = (Option<chrono::DateTime<chrono::Utc>>, Option<chrono::DateTime<chrono::Utc>>, PageRequest);

fn window(q: WindowQuery) -> ApiResult<Window> {
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let mut errors = Vec::new();
    let from = q.from.and_then(|s| parse_instant("from", &s, &mut errors));
    let to = q.to.and_then(|s| parse_instant("to", &s, &mut errors));
    if errors.is_empty() {
        Ok((from, to, page))
    } else {
        Err(ApiError::validation(errors))
    }
}

/// Records an absence (the practitioner themself, or their organization's coordinators).
#[utoipa::path(
    post, path = "/api/v1/practitioners/{id}/absences", tag = "schedule",
    params(("id" = String, Path, format = Uuid)),
    request_body = AbsenceInput,
    responses(
        (status = 201, description = "Recorded", body = Absence, headers(("Location" = String))),
        (status = 400, description = "Invalid period", body = Problem),
        (status = 403, description = "Not theirs to record", body = Problem),
        (status = 404, description = "No such practitioner", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/absences")]
pub async fn add_absence(
    actor: Actor,
    db: web::Data<Db>,
    id: web::Path<PractitionerId>,
    body: Result<Json<AbsenceInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let absence = db
        .write(move |c| {
            let who = practitioners::get(c, id)?;
            policy::manage_absences(&actor, id, who.organization_id)?;
            let new = NewAbsence::parse(body?.0).map_err(ApiError::validation)?;
            Ok::<_, ApiError>(schedule::insert_absence(c, id, &new)?)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/practitioners/{id}/absences/{}", absence.id)))
        .json(absence))
}

/// A practitioner's absences overlapping a window.
#[utoipa::path(
    get, path = "/api/v1/practitioners/{id}/absences", tag = "schedule",
    params(("id" = String, Path, format = Uuid), WindowQuery),
    responses(
        (status = 200, description = "One page", body = Page<Absence>),
        (status = 400, description = "Invalid window", body = Problem),
        (status = 404, description = "No such practitioner", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/absences")]
pub async fn list_absences(
    actor: Actor,
    db: web::Data<Db>,
    id: web::Path<PractitionerId>,
    query: web::Query<WindowQuery>,
) -> ApiResult<HttpResponse> {
    policy::read_directory(&actor)?;
    let (from, to, page) = window(query.into_inner())?;
    let id = id.into_inner();
    let page = db
        .read(move |c| {
            practitioners::get(c, id)?;
            Ok::<_, ApiError>(schedule::list_absences(c, id, from, to, &page)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One absence.
#[utoipa::path(
    get, path = "/api/v1/practitioners/{id}/absences/{absence_id}", tag = "schedule",
    params(("id" = String, Path, format = Uuid), ("absence_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The absence", body = Absence),
        (status = 404, description = "No such absence", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/absences/{absence_id}")]
pub async fn get_absence(
    actor: Actor,
    db: web::Data<Db>,
    path: web::Path<(PractitionerId, AbsenceId)>,
) -> ApiResult<HttpResponse> {
    policy::read_directory(&actor)?;
    let (id, absence_id) = path.into_inner();
    let absence = db.read(move |c| Ok::<_, ApiError>(schedule::get_absence(c, id, absence_id)?)).await?;
    Ok(HttpResponse::Ok().json(absence))
}

/// Withdraws an absence.
#[utoipa::path(
    delete, path = "/api/v1/practitioners/{id}/absences/{absence_id}", tag = "schedule",
    params(("id" = String, Path, format = Uuid), ("absence_id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 403, description = "Not theirs to change", body = Problem),
        (status = 404, description = "No such absence", body = Problem),
    ),
    security(("bearer" = []))
)]
#[delete("/{id}/absences/{absence_id}")]
pub async fn remove_absence(
    actor: Actor,
    db: web::Data<Db>,
    path: web::Path<(PractitionerId, AbsenceId)>,
) -> ApiResult<HttpResponse> {
    let (id, absence_id) = path.into_inner();
    db.write(move |c| {
        let who = practitioners::get(c, id)?;
        policy::manage_absences(&actor, id, who.organization_id)?;
        if !schedule::cancel_absence(c, id, absence_id)? {
            return Err(ApiError::not_found());
        }
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Adds a shift to the organization's on-call roster (its coordinators); the physician must be
/// active.
#[utoipa::path(
    post, path = "/api/v1/organizations/{id}/on-call-shifts", tag = "schedule",
    params(("id" = String, Path, format = Uuid)),
    request_body = ShiftInput,
    responses(
        (status = 201, description = "Added", body = Shift, headers(("Location" = String))),
        (status = 400, description = "Invalid period; not an active physician", body = Problem),
        (status = 403, description = "Not this organization's coordinator", body = Problem),
        (status = 404, description = "No such organization", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/on-call-shifts")]
pub async fn add_shift(
    actor: Actor,
    db: web::Data<Db>,
    id: web::Path<OrganizationId>,
    body: Result<Json<ShiftInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let shift = db
        .write(move |c| {
            if !organizations::exists(c, id)? {
                return Err(ApiError::not_found());
            }
            policy::manage_roster(&actor, id)?;
            let new = NewShift::parse(body?.0).map_err(ApiError::validation)?;
            match practitioners::get(c, new.practitioner_id) {
                Ok(p) if p.profession == Profession::Physician && p.active => {}
                Ok(_) => {
                    return Err(ApiError::invalid_field(
                        "practitioner_id",
                        "not_a_physician",
                        "on-call shifts are for active physicians",
                    ))
                }
                Err(DbError::NotFound) => {
                    return Err(ApiError::invalid_field(
                        "practitioner_id",
                        "unknown_reference",
                        "names no practitioner",
                    ))
                }
                Err(e) => return Err(e.into()),
            }
            Ok(schedule::insert_shift(c, id, &new)?)
        })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/organizations/{id}/on-call-shifts/{}", shift.id)))
        .json(shift))
}

/// An organization's on-call shifts overlapping a window.
#[utoipa::path(
    get, path = "/api/v1/organizations/{id}/on-call-shifts", tag = "schedule",
    params(("id" = String, Path, format = Uuid), WindowQuery),
    responses(
        (status = 200, description = "One page", body = Page<Shift>),
        (status = 400, description = "Invalid window", body = Problem),
        (status = 404, description = "No such organization", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/on-call-shifts")]
pub async fn list_shifts(
    actor: Actor,
    db: web::Data<Db>,
    id: web::Path<OrganizationId>,
    query: web::Query<WindowQuery>,
) -> ApiResult<HttpResponse> {
    policy::read_directory(&actor)?;
    let (from, to, page) = window(query.into_inner())?;
    let id = id.into_inner();
    let page = db
        .read(move |c| {
            if !organizations::exists(c, id)? {
                return Err(ApiError::not_found());
            }
            Ok(schedule::list_shifts(c, id, from, to, &page)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One on-call shift.
#[utoipa::path(
    get, path = "/api/v1/organizations/{id}/on-call-shifts/{shift_id}", tag = "schedule",
    params(("id" = String, Path, format = Uuid), ("shift_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The shift", body = Shift),
        (status = 404, description = "No such shift", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/on-call-shifts/{shift_id}")]
pub async fn get_shift(
    actor: Actor,
    db: web::Data<Db>,
    path: web::Path<(OrganizationId, ShiftId)>,
) -> ApiResult<HttpResponse> {
    policy::read_directory(&actor)?;
    let (id, shift_id) = path.into_inner();
    let shift = db.read(move |c| Ok::<_, ApiError>(schedule::get_shift(c, id, shift_id)?)).await?;
    Ok(HttpResponse::Ok().json(shift))
}

/// Withdraws an on-call shift.
#[utoipa::path(
    delete, path = "/api/v1/organizations/{id}/on-call-shifts/{shift_id}", tag = "schedule",
    params(("id" = String, Path, format = Uuid), ("shift_id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 403, description = "Not this organization's coordinator", body = Problem),
        (status = 404, description = "No such shift", body = Problem),
    ),
    security(("bearer" = []))
)]
#[delete("/{id}/on-call-shifts/{shift_id}")]
pub async fn remove_shift(
    actor: Actor,
    db: web::Data<Db>,
    path: web::Path<(OrganizationId, ShiftId)>,
) -> ApiResult<HttpResponse> {
    let (id, shift_id) = path.into_inner();
    db.write(move |c| {
        if !organizations::exists(c, id)? {
            return Err(ApiError::not_found());
        }
        policy::manage_roster(&actor, id)?;
        if !schedule::cancel_shift(c, id, shift_id)? {
            return Err(ApiError::not_found());
        }
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
