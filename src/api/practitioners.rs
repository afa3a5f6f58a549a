//! `/api/v1/practitioners`: the directory's people. Admins write; every role reads.

use actix_web::{get, patch, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::organizations::{parse_bool, search_query};
use crate::auth::{policy, Actor};
use crate::db::{organizations, practitioners, Db, DbConn, DbError};
use crate::domain::ids::PractitionerId;
use crate::domain::organization::parse_enum;
use crate::domain::practitioner::{Practitioner, PractitionerFields, PractitionerInput, PractitionerPatch, Profession};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::conditional::IfMatch;
use crate::http::json::Json;
use crate::http::pagination::{Page, PageRequest};
use crate::http::{created, ok_versioned};

/// Registers a practitioner with an organization of the directory.
///
/// Physicians and dentists need their registration number, unique per profession
/// (409 `duplicate_registration_number` names the holder).
#[utoipa::path(
    post, path = "/api/v1/practitioners", tag = "directory",
    request_body = PractitionerInput,
    responses(
        (status = 201, description = "Created", body = Practitioner,
            headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "Invalid body or unknown organization", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 409, description = "Registration number already registered", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("")]
pub async fn create(
    actor: Actor,
    db: web::Data<Db>,
    body: Result<Json<PractitionerInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    policy::write_directory(&actor)?;
    let fields = PractitionerFields::parse(body?.0).map_err(ApiError::validation)?;
    let p = db
        .write(move |c| {
            check_references(c, &fields, None)?;
            practitioners::insert(c, &fields).map_err(unique_as_duplicate_registration)
        })
        .await?;
    Ok(created(format!("/api/v1/practitioners/{}", p.id), p.version, &p))
}

/// Query of `GET /api/v1/practitioners`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only practitioners of this organization.
    #[param(format = Uuid)]
    organization_id: Option<String>,
    /// Only practitioners of this profession.
    #[param(value_type = Option<Profession>)]
    profession: Option<String>,
    /// `true` or `false`.
    #[param(value_type = Option<bool>)]
    active: Option<String>,
    /// Substring of the name or its reading; width, kana and case are folded.
    q: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists practitioners in registration order, filtered.
#[utoipa::path(
    get, path = "/api/v1/practitioners", tag = "directory",
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = Page<Practitioner>),
        (status = 400, description = "Invalid filter, limit or cursor", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("")]
pub async fn list(actor: Actor, db: web::Data<Db>, query: web::Query<ListQuery>) -> ApiResult<HttpResponse> {
    policy::read_directory(&actor)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let mut errors = Vec::new();
    let filter = practitioners::Filter {
        organization_id: q.organization_id.and_then(|id| match id.parse() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldError::new("organization_id", "invalid_format", "must be a UUID"));
                None
            }
        }),
        profession: q.profession.and_then(|p| parse_enum("profession", &p, &mut errors)),
        active: q.active.and_then(|a| parse_bool("active", &a, &mut errors)),
        q: q.q.and_then(|s| search_query(&s, &mut errors)),
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let page = db.read(move |c| Ok::<_, ApiError>(practitioners::list(c, &filter, &page)?)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One practitioner.
#[utoipa::path(
    get, path = "/api/v1/practitioners/{id}", tag = "directory",
    params(("id" = String, Path, format = Uuid, description = "Practitioner id")),
    responses(
        (status = 200, description = "The practitioner", body = Practitioner, headers(("ETag" = String))),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "No such practitioner", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}")]
pub async fn get(actor: Actor, db: web::Data<Db>, id: web::Path<PractitionerId>) -> ApiResult<HttpResponse> {
    policy::read_directory(&actor)?;
    let id = id.into_inner();
    let p = db.read(move |c| Ok::<_, ApiError>(practitioners::get(c, id)?)).await?;
    Ok(ok_versioned(p.version, &p))
}

/// Changes a practitioner (JSON merge patch; `If-Match` required). Setting `active` to false
/// takes them out of every future assignment.
#[utoipa::path(
    patch, path = "/api/v1/practitioners/{id}", tag = "directory",
    params(
        ("id" = String, Path, format = Uuid, description = "Practitioner id"),
        ("If-Match" = String, Header, description = "The ETag last seen"),
    ),
    request_body = PractitionerPatch,
    responses(
        (status = 200, description = "Changed", body = Practitioner, headers(("ETag" = String))),
        (status = 400, description = "Invalid body or unknown organization", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such practitioner", body = Problem),
        (status = 409, description = "Registration number already registered", body = Problem),
        (status = 412, description = "Stale If-Match", body = Problem),
        (status = 428, description = "If-Match missing", body = Problem),
    ),
    security(("bearer" = []))
)]
#[patch("/{id}")]
pub async fn update(
    actor: Actor,
    db: web::Data<Db>,
    cache: web::Data<crate::auth::ActiveCache>,
    id: web::Path<PractitionerId>,
    if_match: Result<IfMatch, ApiError>,
    body: Result<Json<PractitionerPatch>, ApiError>,
) -> ApiResult<HttpResponse> {
    policy::write_directory(&actor)?;
    let if_match = if_match?;
    let patch = body?.0;
    let id = id.into_inner();
    let p = db
        .write(move |c| {
            let current = practitioners::get(c, id)?;
            if_match.check(current.version)?;
            let next = current.fields().patched(patch).map_err(ApiError::validation)?;
            if next == current.fields() {
                return Ok(current);
            }
            check_references(c, &next, Some(id))?;
            if !practitioners::update(c, id, current.version, &next).map_err(unique_as_duplicate_registration)? {
                return Err(ApiError::version_mismatch(practitioners::get(c, id)?.version));
            }
            Ok(practitioners::get(c, id)?)
        })
        .await?;
    cache.forget(id);
    Ok(ok_versioned(p.version, &p))
}

/// A racing registration that got past the check is caught by the unique index.
fn unique_as_duplicate_registration(e: DbError) -> ApiError {
    match e {
        DbError::Unique(_) => duplicate_registration(),
        e => e.into(),
    }
}

fn duplicate_registration() -> ApiError {
    ApiError::conflict(
        "duplicate_registration_number",
        "This registration number already belongs to another practitioner",
    )
}

/// The organization must exist; the registration number must be nobody else's.
fn check_references(c: &mut DbConn, fields: &PractitionerFields, except: Option<PractitionerId>) -> ApiResult<()> {
    if !organizations::exists(c, fields.organization_id)? {
        return Err(ApiError::invalid_field(
            "organization_id",
            "unknown_reference",
            "names no organization of the directory",
        ));
    }
    let Some(number) = &fields.registration_number else { return Ok(()) };
    match practitioners::holder_of_registration(c, fields.profession, number, except)? {
        None => Ok(()),
        Some(holder) => Err(duplicate_registration().with("existing_id", holder.to_string())),
    }
}
