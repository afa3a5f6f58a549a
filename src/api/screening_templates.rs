//! `/api/v1/screening-templates`: versioned discharge screening templates (DOMAIN.md §4). The
//! national template ships built in; organizations add their own as drafts and publish them,
//! after which a version never changes (the database refuses it too).

use actix_web::{get, patch, post, web, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::optional_id;
use crate::auth::{policy, Actor};
use crate::db::{screenings, Db, DbConn, DbError};
use crate::domain::ids::TemplateId;
use crate::domain::organization::parse_enum;
use crate::domain::screening::{Template, TemplateFields, TemplateInput, TemplatePatch, TemplateStatus};
use crate::error::{ApiError, ApiResult, Problem};
use crate::http::conditional::IfMatch;
use crate::http::json::Json;
use crate::http::pagination::{Page, PageRequest};
use crate::http::{created, ok_versioned};

/// Adds a draft version of one of the caller's organization's templates: the first of a new
/// code, or the next version of an existing one.
#[utoipa::path(
    post, path = "/api/v1/screening-templates", tag = "screening",
    request_body = TemplateInput,
    responses(
        (status = 201, description = "Draft created", body = Template, headers(("Location" = String), ("ETag" = String))),
        (status = 400, description = "Invalid template", body = Problem),
        (status = 403, description = "Not an admin or discharge staff", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("")]
pub async fn create(
    actor: Actor,
    db: web::Data<Db>,
    body: Result<Json<TemplateInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    policy::manage_templates(&actor, Some(actor.org))?;
    let fields = TemplateFields::parse(body?.0).map_err(ApiError::validation)?;
    let owner = actor.org;
    // Two drafts of one code racing for the next version number: the loser tries again.
    let mut attempt = 0;
    let template = loop {
        let f = fields.clone();
        match db.write(move |c| Ok::<_, ApiError>(screenings::insert_template(c, owner, &f)?)).await {
            Err(e) if e.code() == "conflict" && attempt < 3 => attempt += 1,
            other => break other?,
        }
    };
    Ok(created(format!("/api/v1/screening-templates/{}", template.id), template.version, &template))
}

/// Query of `GET /api/v1/screening-templates`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    code: Option<String>,
    #[param(value_type = Option<TemplateStatus>)]
    status: Option<String>,
    #[param(format = Uuid)]
    owner_organization_id: Option<String>,
    /// `true`: only the templates Renkei ships.
    built_in: Option<bool>,
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// Lists published templates and the caller's organization's drafts.
#[utoipa::path(
    get, path = "/api/v1/screening-templates", tag = "screening",
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = Page<Template>),
        (status = 400, description = "Invalid filter", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("")]
pub async fn list(actor: Actor, db: web::Data<Db>, query: web::Query<ListQuery>) -> ApiResult<HttpResponse> {
    policy::read_directory(&actor)?;
    let q = query.into_inner();
    let page = PageRequest::parse(q.limit.as_deref(), q.cursor.as_deref())?;
    let mut errors = Vec::new();
    let filter = screenings::TemplateFilter {
        code: q.code,
        status: q.status.and_then(|s| parse_enum("status", &s, &mut errors)),
        owner_organization_id: optional_id("owner_organization_id", q.owner_organization_id, &mut errors),
        built_in: q.built_in.unwrap_or(false),
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let org = actor.org;
    let page = db.read(move |c| Ok::<_, ApiError>(screenings::list_templates(c, org, &filter, &page)?)).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One template version (published, or a draft of the caller's organization).
#[utoipa::path(
    get, path = "/api/v1/screening-templates/{id}", tag = "screening",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The template", body = Template, headers(("ETag" = String))),
        (status = 404, description = "No such template, or another organization's draft", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}")]
pub async fn get(actor: Actor, db: web::Data<Db>, id: web::Path<TemplateId>) -> ApiResult<HttpResponse> {
    policy::read_directory(&actor)?;
    let (id, org) = (id.into_inner(), actor.org);
    let t = db.read(move |c| Ok::<_, ApiError>(screenings::get_visible_template(c, id, org)?)).await?;
    Ok(ok_versioned(t.version, &t))
}

fn owned_draft(c: &mut DbConn, actor: &Actor, id: TemplateId) -> ApiResult<Template> {
    let t = screenings::get_visible_template(c, id, actor.org)?;
    policy::manage_templates(actor, t.owner_organization_id)?;
    if t.status == TemplateStatus::Published {
        return Err(ApiError::conflict(
            "template_published",
            "A published template never changes: create its next version instead",
        )
        .with("current_status", "published"));
    }
    Ok(t)
}

/// Changes a draft (`If-Match` required); published versions are immutable.
#[utoipa::path(
    patch, path = "/api/v1/screening-templates/{id}", tag = "screening",
    params(("id" = String, Path, format = Uuid), ("If-Match" = String, Header)),
    request_body = TemplatePatch,
    responses(
        (status = 200, description = "Changed", body = Template),
        (status = 400, description = "Invalid template", body = Problem),
        (status = 403, description = "Not the owner's admin or discharge staff", body = Problem),
        (status = 404, description = "No such template", body = Problem),
        (status = 409, description = "Already published", body = Problem),
        (status = 412, description = "Stale If-Match", body = Problem),
        (status = 428, description = "If-Match missing", body = Problem),
    ),
    security(("bearer" = []))
)]
#[patch("/{id}")]
pub async fn update(
    actor: Actor,
    db: web::Data<Db>,
    id: web::Path<TemplateId>,
    if_match: Result<IfMatch, ApiError>,
    body: Result<Json<TemplatePatch>, ApiError>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let t = db
        .write(move |c| {
            let current = owned_draft(c, &actor, id)?;
            let (if_match, patch) = (if_match?, body?.0);
            if_match.check(current.version)?;
            let fields = TemplateFields {
                code: current.code.clone(),
                title_ja: current.title_ja.clone(),
                title_en: current.title_en.clone(),
                scoring: current.scoring,
                threshold: current.threshold,
                items: current.items.clone(),
            };
            let next = fields.patched(patch).map_err(ApiError::validation)?;
            if !screenings::update_template(c, id, current.version, &next)? {
                return Err(ApiError::version_mismatch(screenings::get_template(c, id)?.version));
            }
            Ok::<_, ApiError>(screenings::get_template(c, id)?)
        })
        .await?;
    Ok(ok_versioned(t.version, &t))
}

/// Publishes a draft: from now on it can be used by sheets and never changes.
#[utoipa::path(
    post, path = "/api/v1/screening-templates/{id}/publish", tag = "screening",
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Published", body = Template),
        (status = 403, description = "Not the owner's admin or discharge staff", body = Problem),
        (status = 404, description = "No such template", body = Problem),
        (status = 409, description = "Already published", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/publish")]
pub async fn publish(actor: Actor, db: web::Data<Db>, id: web::Path<TemplateId>) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let t = db
        .write(move |c| {
            owned_draft(c, &actor, id)?;
            match screenings::publish_template(c, id) {
                Ok(true) => {}
                Ok(false) | Err(DbError::Rule(_)) => {
                    return Err(ApiError::conflict("template_published", "The template is already published"))
                }
                Err(e) => return Err(e.into()),
            }
            Ok::<_, ApiError>(screenings::get_template(c, id)?)
        })
        .await?;
    Ok(ok_versioned(t.version, &t))
}

/// For the OpenAPI document: a template named by code (and optionally its version).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSelector {
    #[schema(example = "national_discharge_difficulty")]
    pub code: Option<String>,
    /// The template version; the latest published one if absent.
    pub version: Option<i64>,
}
