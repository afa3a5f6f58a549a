//! `/api/v1/organizations`: the directory's organizations. Admins write; every role reads.

use actix_web::{get, patch, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{policy, Actor};
use crate::db::{organizations, Db, DbError};
use crate::domain::ids::OrganizationId;
use crate::domain::organization::{Organization, OrganizationFields, OrganizationInput, OrganizationPatch};
use crate::domain::organization::{OrganizationKind, Service};
use crate::domain::text;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::conditional::IfMatch;
use crate::http::json::Json;
use crate::http::pagination::{Page, PageRequest};
use crate::http::{created, ok_versioned};

/// Registers an organization.
///
/// The medical institution code, where given, must be unused (409 `duplicate_medical_institution_code`
/// names the holder).
#[utoipa::path(
    post, path = "/api/v1/organizations", tag = "directory",
    request_body = OrganizationInput,
    responses(
        (status = 201, description = "Created", body = Organization,
            headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "Invalid body", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 409, description = "Medical institution code already registered", body = Problem),
        (status = 413, description = "Body too large", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("")]
pub async fn create(
    actor: Actor,
    db: web::Data<Db>,
    body: Result<Json<OrganizationInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    policy::write_directory(&actor)?;
    let fields = OrganizationFields::parse(body?.0).map_err(ApiError::validation)?;
    let org = db
        .write(move |c| {
            ensure_code_free(c, &fields, None)?;
            organizations::insert(c, &fields).map_err(|e| unique_as_duplicate_code(e, &fields))
        })
        .await?;
    Ok(created(format!("/api/v1/organizations/{}", org.id), org.version, &org))
}

/// Query of `GET /api/v1/organizations`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only organizations of this kind.
    #[param(value_type = Option<OrganizationKind>)]
    kind: Option<String>,
    /// Only organizations in this municipality (6-digit code).
    municipality_code: Option<String>,
    /// Only organizations offering this service.
    #[param(value_type = Option<Service>)]
    service: Option<String>,
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

/// Lists organizations in registration order, filtered.
#[utoipa::path(
    get, path = "/api/v1/organizations", tag = "directory",
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = Page<Organization>),
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
    let filter = organizations::Filter {
        kind: q.kind.and_then(|k| crate::domain::organization::parse_enum("kind", &k, &mut errors)),
        service: q.service.and_then(|s| crate::domain::organization::parse_enum("service", &s, &mut errors)),
        municipality_code: q.municipality_code,
        active: q.active.and_then(|a| parse_bool("active", &a, &mut errors)),
        q: q.q.and_then(|s| search_query(&s, &mut errors)),
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let page = db.read(move |c| Ok::<_, ApiError>(organizations::list(c, &filter, &page)?)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One organization.
#[utoipa::path(
    get, path = "/api/v1/organizations/{id}", tag = "directory",
    params(("id" = String, Path, format = Uuid, description = "Organization id")),
    responses(
        (status = 200, description = "The organization", body = Organization, headers(("ETag" = String))),
        (status = 401, description = "No valid token", body = Problem),
        (status = 404, description = "No such organization", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}")]
pub async fn get(actor: Actor, db: web::Data<Db>, id: web::Path<OrganizationId>) -> ApiResult<HttpResponse> {
    policy::read_directory(&actor)?;
    let id = id.into_inner();
    let org = db.read(move |c| Ok::<_, ApiError>(organizations::get(c, id)?)).await?;
    Ok(ok_versioned(org.version, &org))
}

/// Changes an organization (JSON merge patch; `If-Match` required).
#[utoipa::path(
    patch, path = "/api/v1/organizations/{id}", tag = "directory",
    params(
        ("id" = String, Path, format = Uuid, description = "Organization id"),
        ("If-Match" = String, Header, description = "The ETag last seen"),
    ),
    request_body = OrganizationPatch,
    responses(
        (status = 200, description = "Changed", body = Organization, headers(("ETag" = String))),
        (status = 400, description = "Invalid body", body = Problem),
        (status = 401, description = "No valid token", body = Problem),
        (status = 403, description = "Not an admin", body = Problem),
        (status = 404, description = "No such organization", body = Problem),
        (status = 409, description = "Medical institution code already registered", body = Problem),
        (status = 412, description = "Stale If-Match", body = Problem),
        (status = 428, description = "If-Match missing", body = Problem),
    ),
    security(("bearer" = []))
)]
#[patch("/{id}")]
pub async fn update(
    actor: Actor,
    db: web::Data<Db>,
    id: web::Path<OrganizationId>,
    if_match: Result<IfMatch, ApiError>,
    body: Result<Json<OrganizationPatch>, ApiError>,
) -> ApiResult<HttpResponse> {
    policy::write_directory(&actor)?;
    let if_match = if_match?;
    let patch = body?.0;
    let id = id.into_inner();
    let org = db
        .write(move |c| {
            let current = organizations::get(c, id)?;
            if_match.check(current.version)?;
            let next = current.fields().patched(patch).map_err(ApiError::validation)?;
            if next == current.fields() {
                return Ok(current);
            }
            ensure_code_free(c, &next, Some(id))?;
            if !organizations::update(c, id, current.version, &next).map_err(|e| unique_as_duplicate_code(e, &next))? {
                return Err(ApiError::version_mismatch(organizations::get(c, id)?.version));
            }
            Ok(organizations::get(c, id)?)
        })
        .await?;
    Ok(ok_versioned(org.version, &org))
}

/// A racing registration of the same code that got past the check is caught by the unique
/// index; it is answered the same way, without the holder (unknown inside a failed transaction).
fn unique_as_duplicate_code(e: DbError, fields: &OrganizationFields) -> ApiError {
    match (e, &fields.medical_institution_code) {
        (DbError::Unique(_), Some(code)) => duplicate_code(code),
        (e, _) => e.into(),
    }
}

fn duplicate_code(code: &str) -> ApiError {
    ApiError::conflict(
        "duplicate_medical_institution_code",
        format!("Medical institution code {code} is already registered to another organization"),
    )
}

fn ensure_code_free(
    c: &mut crate::db::DbConn,
    fields: &OrganizationFields,
    except: Option<OrganizationId>,
) -> ApiResult<()> {
    let Some(code) = &fields.medical_institution_code else { return Ok(()) };
    match organizations::holder_of_code(c, code, except)? {
        None => Ok(()),
        Some(holder) => Err(duplicate_code(code).with("existing_id", holder.to_string())),
    }
}

/// Parses `true`/`false` query values.
pub(crate) fn parse_bool(field: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            errors.push(FieldError::new(field, "invalid_format", "must be true or false"));
            None
        }
    }
}

/// Turns `q` into a search key; refuses one that folds to nothing or is unreasonably long.
pub(crate) fn search_query(value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let key = text::search_key(value);
    if key.is_empty() || key.chars().count() > 100 {
        errors.push(FieldError::new("q", "invalid_format", "must have 1 to 100 characters besides spaces"));
        return None;
    }
    Some(key)
}
