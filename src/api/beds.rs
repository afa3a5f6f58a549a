//! Backup beds (`/api/v1/organizations/{id}/beds`), a hospital's respite policy, and bed
//! availability (DOMAIN.md §5). Beds are not patient data: no access-log rows.

use actix_web::{get, patch, post, put, web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{policy, Actor};
use crate::db::{beds, organizations, Db, DbConn, DbError};
use crate::domain::bed::{Alternative, Bed, BedFields, BedInput, BedKind, BedPatch, RespitePolicy, RespitePolicyInput};
use crate::domain::ids::{BedId, OrganizationId};
use crate::domain::organization::{parse_enum, OrganizationKind};
use crate::domain::time::parse_instant;
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::conditional::IfMatch;
use crate::http::json::Json;
use crate::http::pagination::{Page, PageRequest};
use crate::http::{created, ok_versioned};

/// The organization, which must be a hospital (404 when there is no such organization).
pub(crate) fn hospital(c: &mut DbConn, id: OrganizationId) -> ApiResult<()> {
    let org = organizations::get(c, id)?;
    if org.kind != OrganizationKind::Hospital {
        return Err(ApiError::conflict("not_a_hospital", "Only hospitals hold backup beds"));
    }
    Ok(())
}

/// Publishes a backup bed of the caller's hospital.
#[utoipa::path(
    post, path = "/api/v1/organizations/{id}/beds", tag = "beds",
    params(("id" = String, Path, format = Uuid)),
    request_body = BedInput,
    responses(
        (status = 201, description = "Published", body = Bed, headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "Invalid bed", body = Problem),
        (status = 403, description = "Not the hospital's bed manager", body = Problem),
        (status = 404, description = "No such organization", body = Problem),
        (status = 409, description = "Not a hospital, or the ward already has this label", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/beds")]
pub async fn create(
    actor: Actor,
    db: web::Data<Db>,
    id: web::Path<OrganizationId>,
    body: Result<Json<BedInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let org = id.into_inner();
    let bed = db
        .write(move |c| {
            hospital(c, org)?;
            policy::manage_beds(&actor, org)?;
            let fields = BedFields::parse(body?.0).map_err(ApiError::validation)?;
            beds::insert_bed(c, org, &fields).map_err(|e| match e {
                DbError::Unique(_) => ApiError::conflict("duplicate_bed", "The ward already has a bed with this label"),
                e => e.into(),
            })
        })
        .await?;
    Ok(created(format!("/api/v1/organizations/{org}/beds/{}", bed.id), bed.version, &bed))
}

/// Query of `GET /api/v1/organizations/{id}/beds`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// Lists a hospital's backup beds (everyone authenticated: the region plans with them).
#[utoipa::path(
    get, path = "/api/v1/organizations/{id}/beds", tag = "beds",
    params(("id" = String, Path, format = Uuid), PageQuery),
    responses(
        (status = 200, description = "One page", body = Page<Bed>),
        (status = 404, description = "No such organization", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/beds")]
pub async fn list(
    actor: Actor,
    db: web::Data<Db>,
    id: web::Path<OrganizationId>,
    query: web::Query<PageQuery>,
) -> ApiResult<HttpResponse> {
    policy::read_directory(&actor)?;
    let page = PageRequest::parse(query.limit.as_deref(), query.cursor.as_deref())?;
    let org = id.into_inner();
    let page = db
        .read(move |c| {
            organizations::get(c, org)?;
            Ok::<_, ApiError>(beds::list_beds(c, org, &page)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Changes a bed (`If-Match` required): open or close it, its kinds and tags.
#[utoipa::path(
    patch, path = "/api/v1/organizations/{id}/beds/{bed_id}", tag = "beds",
    params(("id" = String, Path, format = Uuid), ("bed_id" = String, Path, format = Uuid), ("If-Match" = String, Header)),
    request_body = BedPatch,
    responses(
        (status = 200, description = "Changed", body = Bed),
        (status = 400, description = "Invalid change", body = Problem),
        (status = 403, description = "Not the hospital's bed manager", body = Problem),
        (status = 404, description = "No such bed at this hospital", body = Problem),
        (status = 412, description = "Stale If-Match", body = Problem),
        (status = 428, description = "If-Match missing", body = Problem),
    ),
    security(("bearer" = []))
)]
#[patch("/{id}/beds/{bed_id}")]
pub async fn update(
    actor: Actor,
    db: web::Data<Db>,
    path: web::Path<(OrganizationId, BedId)>,
    if_match: Result<IfMatch, ApiError>,
    body: Result<Json<BedPatch>, ApiError>,
) -> ApiResult<HttpResponse> {
    let (org, bed_id) = path.into_inner();
    let bed = db
        .write(move |c| {
            let bed = beds::get_bed(c, bed_id)?;
            if bed.hospital_id != org {
                return Err(ApiError::not_found());
            }
            policy::manage_beds(&actor, org)?;
            let (if_match, patch) = (if_match?, body?.0);
            if_match.check(bed.version)?;
            let current = BedFields {
                ward: bed.ward.clone(),
                label: bed.label.clone(),
                kinds: bed.kinds.clone(),
                tags: bed.tags.clone(),
                status: bed.status,
            };
            let next = current.patched(patch).map_err(ApiError::validation)?;
            if !beds::update_bed(c, bed_id, bed.version, &next)? {
                return Err(ApiError::version_mismatch(beds::get_bed(c, bed_id)?.version));
            }
            Ok::<_, ApiError>(beds::get_bed(c, bed_id)?)
        })
        .await?;
    Ok(ok_versioned(bed.version, &bed))
}

/// A hospital's respite policy (the defaults until it writes one).
#[utoipa::path(
    get, path = "/api/v1/organizations/{id}/respite-policy", tag = "beds",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The policy", body = RespitePolicy),
        (status = 404, description = "No such organization", body = Problem),
        (status = 409, description = "Not a hospital", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/respite-policy")]
pub async fn get_policy(actor: Actor, db: web::Data<Db>, id: web::Path<OrganizationId>) -> ApiResult<HttpResponse> {
    policy::read_directory(&actor)?;
    let org = id.into_inner();
    let p = db
        .read(move |c| {
            hospital(c, org)?;
            Ok::<_, ApiError>(beds::get_policy(c, org)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(p))
}

/// Replaces the hospital's respite policy (its bed managers).
#[utoipa::path(
    put, path = "/api/v1/organizations/{id}/respite-policy", tag = "beds",
    params(("id" = String, Path, format = Uuid)),
    request_body = RespitePolicyInput,
    responses(
        (status = 200, description = "The new policy", body = RespitePolicy),
        (status = 400, description = "Invalid policy", body = Problem),
        (status = 403, description = "Not the hospital's bed manager", body = Problem),
        (status = 404, description = "No such organization", body = Problem),
    ),
    security(("bearer" = []))
)]
#[put("/{id}/respite-policy")]
pub async fn put_policy(
    actor: Actor,
    db: web::Data<Db>,
    id: web::Path<OrganizationId>,
    body: Result<Json<RespitePolicyInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let org = id.into_inner();
    let p = db
        .write(move |c| {
            hospital(c, org)?;
            policy::manage_beds(&actor, org)?;
            let p = body?.0.parse(org).map_err(ApiError::validation)?;
            beds::put_policy(c, &p)?;
            Ok::<_, ApiError>(beds::get_policy(c, org)?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(p))
}

/// Query of `GET /api/v1/bed-availability`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AvailabilityQuery {
    #[param(value_type = BedKind)]
    kind: Option<String>,
    /// Comma-separated capability tags every bed must carry.
    needs: Option<String>,
    #[param(format = DateTime)]
    from: Option<String>,
    #[param(format = DateTime)]
    to: Option<String>,
}

/// The answer of `GET /api/v1/bed-availability`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Availability {
    pub items: Vec<Alternative>,
}

/// Parses `needs=oxygen,suction`.
pub(crate) fn needs_list(raw: Option<String>, errors: &mut Vec<FieldError>) -> Vec<String> {
    let parts: Vec<String> =
        raw.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    crate::domain::bed::tags("needs", parts, errors)
}

/// Which hospitals have how many free matching beds for the whole window `[from, to)`.
#[utoipa::path(
    get, path = "/api/v1/bed-availability", tag = "beds",
    params(AvailabilityQuery),
    responses(
                (status = 200, description = "Hospitals with free matching beds, most first", body = Availability),
        (status = 400, description = "Invalid query", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("")]
pub async fn availability(
    actor: Actor,
    db: web::Data<Db>,
    query: web::Query<AvailabilityQuery>,
) -> ApiResult<HttpResponse> {
    policy::read_directory(&actor)?;
    let q = query.into_inner();
    let mut errors = Vec::new();
    let e = &mut errors;
    let kind: Option<BedKind> = crate::domain::required(e, "kind", q.kind).and_then(|k| parse_enum("kind", &k, e));
    let needs = needs_list(q.needs, e);
    let from = crate::domain::required(e, "from", q.from).and_then(|t| parse_instant("from", &t, e));
    let to = crate::domain::required(e, "to", q.to).and_then(|t| parse_instant("to", &t, e));
    if let (Some(f), Some(t)) = (from, to) {
        crate::domain::time::check_order(f, t, e);
    }
    let (Some(kind), Some(from), Some(to), true) = (kind, from, to, errors.is_empty()) else {
        return Err(ApiError::validation(errors));
    };
    let items = db.read(move |c| Ok::<_, ApiError>(beds::availability(c, kind, &needs, from, to)?)).await?;
    Ok(HttpResponse::Ok().json(Availability { items }))
}
