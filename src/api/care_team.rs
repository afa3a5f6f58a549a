//! `/api/v1/cases/{id}/care-team` and `/physicians/…`: the multidisciplinary team and the
//! primary/secondary physician handover (DOMAIN.md §2–3).

use std::collections::HashMap;

use actix_web::{delete, get, post, put, web, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{change_case, read_case, refuse_case};
use super::cases::managed_case;
use super::required_id;
use crate::audit::Audit;
use crate::auth::{policy, Actor};
use crate::db::{care_team, cases, practitioners, Db, DbConn, DbError};
use crate::domain::care_team::{plan_handover, HandoverError, HandoverFacts, Member, TeamRole};
use crate::domain::ids::{CaseId, MemberId, PractitionerId};
use crate::domain::organization::parse_enum;
use crate::domain::practitioner::{Practitioner, Profession};
use crate::domain::time::{check_order, parse_instant};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::http::json::Json;

/// A member with who they are.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    #[serde(flatten)]
    pub member: Member,
    pub practitioner: Option<PractitionerSummary>,
}

/// What the team needs to know of a practitioner.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PractitionerSummary {
    pub id: PractitionerId,
    pub name: String,
    pub kana: String,
    pub profession: Profession,
    pub phone: Option<String>,
    pub active: bool,
}

impl From<&Practitioner> for PractitionerSummary {
    fn from(p: &Practitioner) -> Self {
        PractitionerSummary {
            id: p.id,
            name: p.name.clone(),
            kana: p.kana.clone(),
            profession: p.profession,
            phone: p.phone.clone(),
            active: p.active,
        }
    }
}

/// The team at an instant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TeamView {
    /// The instant asked about; `null` for the whole history.
    pub at: Option<DateTime<Utc>>,
    pub items: Vec<MemberView>,
}

fn with_people(c: &mut DbConn, members: Vec<Member>) -> ApiResult<Vec<MemberView>> {
    let ids: Vec<PractitionerId> = members.iter().map(|m| m.practitioner_id).collect();
    let people: HashMap<PractitionerId, Practitioner> =
        practitioners::get_many(c, &ids)?.into_iter().map(|p| (p.id, p)).collect();
    Ok(members
        .into_iter()
        .map(|m| {
            let practitioner = people.get(&m.practitioner_id).map(PractitionerSummary::from);
            MemberView { member: m, practitioner }
        })
        .collect())
}

/// Query of `GET …/care-team`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TeamQuery {
    /// The instant (RFC 3339; default now).
    #[param(format = DateTime)]
    at: Option<String>,
    /// `true`: every membership ever, ended ones included.
    #[param(value_type = Option<bool>)]
    history: Option<String>,
}

/// The care team at an instant (default now), or its whole history.
#[utoipa::path(
    get, path = "/api/v1/cases/{id}/care-team", tag = "care team",
    params(("id" = String, Path, format = Uuid), TeamQuery),
    responses(
        (status = 200, description = "The team", body = TeamView),
        (status = 400, description = "Invalid instant", body = Problem),
        (status = 404, description = "No such case, or not visible", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/care-team")]
pub async fn team(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<CaseId>,
    query: web::Query<TeamQuery>,
) -> ApiResult<HttpResponse> {
    let q = query.into_inner();
    let mut errors = Vec::new();
    let history = match q.history.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.push(FieldError::new("history", "invalid_format", "must be true or false"));
            false
        }
    };
    let at = match q.at {
        Some(s) => parse_instant("at", &s, &mut errors),
        None => Some(Utc::now()),
    };
    if !errors.is_empty() {
        return refuse_case(&db, &audit, &actor, "care_team.read", id.into_inner(), ApiError::validation(errors)).await;
    }
    let at = if history { None } else { at };
    let view = read_case(&db, &audit, &actor, "care_team.read", id.into_inner(), move |c, case| {
        let members = care_team::list(c, case.id, at)?;
        Ok(TeamView { at, items: with_people(c, members)? })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The body of `POST …/care-team`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    #[schema(value_type = String, format = Uuid)]
    pub practitioner_id: Option<String>,
    #[schema(value_type = TeamRole)]
    pub role: Option<String>,
    /// Default: now.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub starts_at: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: Option<String>,
}

/// Adds a member to the team (not a primary or secondary physician: those change by handover).
#[utoipa::path(
    post, path = "/api/v1/cases/{id}/care-team", tag = "care team",
    params(("id" = String, Path, format = Uuid)),
    request_body = MemberInput,
    responses(
        (status = 201, description = "Added", body = Member, headers(("Location" = String))),
        (status = 400, description = "Invalid body, unknown or inactive practitioner", body = Problem),
        (status = 403, description = "Not a coordinator of the managing organization", body = Problem),
        (status = 404, description = "No such case, or not visible", body = Problem),
        (status = 409, description = "The case is closed or cancelled", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/care-team")]
pub async fn add(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<CaseId>,
    body: Result<Json<MemberInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let who = actor.clone();
    let member = change_case(&db, &audit, &actor, "care_team.add", id, move |c| {
        cases::lock_team(c, id)?;
        let case = managed_case(c, &who, id)?;
        let input = body?.0;
        let mut errors = Vec::new();
        let who: Option<PractitionerId> = required_id("practitioner_id", input.practitioner_id, &mut errors);
        let role: Option<TeamRole> = match input.role {
            None => {
                errors.push(FieldError::new("role", "required", "is required"));
                None
            }
            Some(r) => parse_enum("role", &r, &mut errors),
        };
        if role.is_some_and(TeamRole::is_physician_slot) {
            errors.push(FieldError::new(
                "role",
                "use_handover",
                "primary and secondary physicians are set with PUT …/physicians/primary or …/secondary",
            ));
        }
        let starts_at = match input.starts_at {
            Some(s) => parse_instant("starts_at", &s, &mut errors),
            None => Some(Utc::now()),
        };
        let ends_at = input.ends_at.and_then(|s| parse_instant("ends_at", &s, &mut errors));
        if let (Some(s), Some(e)) = (starts_at, ends_at) {
            check_order(s, e, &mut errors);
        }
        let (Some(who), Some(role), Some(starts_at)) = (who, role, starts_at) else {
            return Err(ApiError::validation(errors));
        };
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        ensure_open(&case)?;
        practitioner(c, who)?;
        Ok(care_team::insert(c, id, who, role, starts_at, ends_at)?)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/cases/{id}/care-team/{}", member.id)))
        .json(member))
}

fn ensure_open(case: &crate::domain::case::Case) -> ApiResult<()> {
    if case.status.is_open() {
        return Ok(());
    }
    let state = crate::db::to_code(&case.status).unwrap_or_default();
    Err(ApiError::conflict("invalid_transition", format!("The case is {state}; its team no longer changes"))
        .with("current_status", state))
}

/// An active practitioner of the directory (400 otherwise).
fn practitioner(c: &mut DbConn, who: PractitionerId) -> ApiResult<Practitioner> {
    match practitioners::get(c, who) {
        Ok(p) if p.active => Ok(p),
        Ok(_) => Err(ApiError::invalid_field("practitioner_id", "inactive", "this practitioner is deactivated")),
        Err(DbError::NotFound) => Err(ApiError::invalid_field(
            "practitioner_id",
            "unknown_reference",
            "names no practitioner of the directory",
        )),
        Err(e) => Err(e.into()),
    }
}

/// One membership of the team (ended ones included).
#[utoipa::path(
    get, path = "/api/v1/cases/{id}/care-team/{member_id}", tag = "care team",
    params(("id" = String, Path, format = Uuid), ("member_id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The membership", body = MemberView),
        (status = 404, description = "No such case or member, or not visible", body = Problem),
    ),
    security(("bearer" = []))
)]
#[get("/{id}/care-team/{member_id}")]
pub async fn get_member(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    path: web::Path<(CaseId, MemberId)>,
) -> ApiResult<HttpResponse> {
    let (id, member_id) = path.into_inner();
    let view = read_case(&db, &audit, &actor, "care_team.read", id, move |c, _| {
        let member = care_team::get(c, id, member_id)?;
        Ok(with_people(c, vec![member])?.pop())
    })
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok().json(view))
}

/// The body of `POST …/care-team/{member_id}/end`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndInput {
    /// Default: now.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ends_at: Option<String>,
}

/// Ends a membership (it stays in the history).
#[utoipa::path(
    post, path = "/api/v1/cases/{id}/care-team/{member_id}/end", tag = "care team",
    params(("id" = String, Path, format = Uuid), ("member_id" = String, Path, format = Uuid)),
    request_body = EndInput,
    responses(
        (status = 200, description = "Ended", body = Member),
        (status = 400, description = "Invalid instant", body = Problem),
        (status = 403, description = "Not a coordinator of the managing organization", body = Problem),
        (status = 404, description = "No such case or member", body = Problem),
        (status = 409, description = "Already ended, or a physician slot (use the handover)", body = Problem),
    ),
    security(("bearer" = []))
)]
#[post("/{id}/care-team/{member_id}/end")]
pub async fn end(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    path: web::Path<(CaseId, MemberId)>,
    body: Result<Json<EndInput>, ApiError>,
) -> ApiResult<HttpResponse> {
    let (id, member_id) = path.into_inner();
    let who = actor.clone();
    let member = change_case(&db, &audit, &actor, "care_team.end", id, move |c| {
        cases::lock_team(c, id)?;
        managed_case(c, &who, id)?;
        let mut errors = Vec::new();
        let Some(at) = not_backdated("ends_at", body?.0.ends_at, &mut errors) else {
            return Err(ApiError::validation(errors));
        };
        let member = care_team::get(c, id, member_id)?;
        if member.role.is_physician_slot() {
            return Err(ApiError::conflict(
                "use_handover",
                "A physician assignment ends by handover (PUT …/physicians/primary) or DELETE …/physicians/secondary",
            ));
        }
        if at <= member.starts_at {
            return Err(ApiError::invalid_field("ends_at", "invalid_period", "must be after the membership's start"));
        }
        if !care_team::end(c, member_id, at)? {
            return Err(ApiError::conflict("invalid_transition", "This membership has already ended"));
        }
        Ok(care_team::get(c, id, member_id)?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(member))
}

/// The body of a handover.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandoverInput {
    #[schema(value_type = String, format = Uuid)]
    pub practitioner_id: Option<String>,
    /// When the new physician takes over (default now; never in the past).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub effective_at: Option<String>,
}

/// How far in the past `effective_at` may lie (clock skew between clients and server).
const SKEW: Duration = Duration::seconds(60);

fn handover(c: &mut DbConn, actor: &Actor, id: CaseId, role: TeamRole, input: HandoverInput) -> ApiResult<Member> {
    cases::lock_team(c, id)?;
    let case = cases::get_visible(c, id, &policy::case_scope(actor))?;
    let mut errors = Vec::new();
    let who: Option<PractitionerId> = required_id("practitioner_id", input.practitioner_id, &mut errors);
    let effective_at = not_backdated("effective_at", input.effective_at, &mut errors);
    // The current primary may name the secondary who will work beside them at that time.
    let may_name_secondary = role == TeamRole::SecondaryPhysician
        && effective_at.is_some()
        && matches!(actor.subject, crate::auth::Subject::Practitioner(p)
            if effective_at.is_some_and(|t| holds_at(c, id, p, TeamRole::PrimaryPhysician, t).unwrap_or(false)));
    if !may_name_secondary {
        policy::manage_case(actor, case.managing_organization_id)?;
    }
    let (Some(who), Some(effective_at)) = (who, effective_at) else { return Err(ApiError::validation(errors)) };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    ensure_open(&case)?;
    let person = match practitioners::get(c, who) {
        Ok(p) => p,
        Err(DbError::NotFound) => {
            return Err(ApiError::invalid_field(
                "practitioner_id",
                "unknown_reference",
                "names no practitioner of the directory",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let other_role =
        if role == TeamRole::PrimaryPhysician { TeamRole::SecondaryPhysician } else { TeamRole::PrimaryPhysician };
    let open = care_team::open_assignment(c, id, role)?;
    // Every assignment of the other slot that lasts into the new one (scheduled ones included).
    let other_slot = care_team::assignments_from(c, id, other_role, effective_at)?;
    let facts = HandoverFacts {
        open: open.as_ref(),
        other_slot: other_slot.iter().find(|m| m.practitioner_id == who),
        profession: person.profession,
        active: person.active,
    };
    let plan = plan_handover(&facts, who, effective_at).map_err(handover_error)?;
    let Some(plan) = plan else {
        // Already theirs: nothing changes.
        return open.ok_or_else(|| ApiError::internal("handover plan without an open assignment"));
    };
    if let Some(old) = plan.end {
        if !care_team::end(c, old, plan.starts_at)? {
            return Err(ApiError::internal("the open assignment could not be ended at the handover"));
        }
    }
    care_team::insert(c, id, who, role, plan.starts_at, None).map_err(|e| match e {
        DbError::Unique(_) | DbError::Rule(_) => ApiError::conflict(
            "primary_physician_conflict",
            "Another change of this case's physicians happened at the same time",
        ),
        e => e.into(),
    })
}

fn handover_error(e: HandoverError) -> ApiError {
    match e {
        HandoverError::NotAPhysician => {
            ApiError::invalid_field("practitioner_id", "not_a_physician", "only physicians hold this assignment")
        }
        HandoverError::Inactive => {
            ApiError::invalid_field("practitioner_id", "inactive", "this practitioner is deactivated")
        }
        HandoverError::SamePersonInBothSlots => ApiError::conflict(
            "primary_physician_conflict",
            "The primary and secondary physicians must be different people at every instant",
        ),
        HandoverError::BeforeCurrentStart { current_starts_at } => ApiError::conflict(
            "primary_physician_conflict",
            "effective_at must be after the start of the current assignment",
        )
        .with("current_starts_at", current_starts_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
    }
}

fn holds_at(c: &mut DbConn, id: CaseId, who: PractitionerId, role: TeamRole, at: DateTime<Utc>) -> ApiResult<bool> {
    Ok(care_team::list(c, id, Some(at))?.iter().any(|m| m.role == role && m.practitioner_id == who))
}

/// An instant for a team change: now by default, never in the past (beyond clock skew), so
/// that what the team was at any past instant never changes. Truncated to what is stored.
fn not_backdated(field: &str, value: Option<String>, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    let now = Utc::now();
    let at = match value {
        Some(s) => parse_instant(field, &s, errors)?,
        None => now,
    };
    if at < now - SKEW {
        errors.push(FieldError::new(field, "in_the_past", "team history cannot be rewritten: use a time from now on"));
        return None;
    }
    Some(crate::db::utc(crate::domain::time::to_db(at)))
}

macro_rules! handover_endpoint {
    ($fn:ident, $path:literal, $route:literal, $role:expr, $action:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(
            put, path = $path, tag = "care team",
            params(("id" = String, Path, format = Uuid)),
            request_body = HandoverInput,
            responses(
                (status = 200, description = "The new (or unchanged) assignment", body = Member),
                (status = 400, description = "Invalid body; not an active physician", body = Problem),
                (status = 403, description = "Not allowed to assign", body = Problem),
                (status = 404, description = "No such case, or not visible", body = Problem),
                (status = 409, description = "Same person in both slots, or a conflicting handover", body = Problem),
            ),
            security(("bearer" = []))
        )]
        #[put($route)]
        pub async fn $fn(actor: Actor, audit: Audit, db: web::Data<Db>, id: web::Path<CaseId>, body: Result<Json<HandoverInput>, ApiError>) -> ApiResult<HttpResponse> {
            let id = id.into_inner();
            let who = actor.clone();
            let member = change_case(&db, &audit, &actor, $action, id, move |c| handover(c, &who, id, $role, body?.0)).await?;
            Ok(HttpResponse::Ok().json(member))
        }
    };
}

handover_endpoint!(
    set_primary,
    "/api/v1/cases/{id}/physicians/primary",
    "/{id}/physicians/primary",
    TeamRole::PrimaryPhysician,
    "care_team.primary",
    "Hands the primary physician assignment over at `effective_at`: the old assignment ends exactly then."
);
handover_endpoint!(
    set_secondary,
    "/api/v1/cases/{id}/physicians/secondary",
    "/{id}/physicians/secondary",
    TeamRole::SecondaryPhysician,
    "care_team.secondary",
    "Names the secondary physician at `effective_at` (coordinators, or the current primary)."
);

/// Query of `DELETE …/physicians/secondary`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RemoveQuery {
    /// When the assignment ends (default now).
    #[param(format = DateTime)]
    effective_at: Option<String>,
}

/// Ends the secondary physician assignment.
#[utoipa::path(
    delete, path = "/api/v1/cases/{id}/physicians/secondary", tag = "care team",
    params(("id" = String, Path, format = Uuid), RemoveQuery),
    responses(
        (status = 204, description = "Ended"),
        (status = 403, description = "Not allowed", body = Problem),
        (status = 404, description = "No such case, or not visible", body = Problem),
        (status = 409, description = "No secondary assigned", body = Problem),
    ),
    security(("bearer" = []))
)]
#[delete("/{id}/physicians/secondary")]
pub async fn remove_secondary(
    actor: Actor,
    audit: Audit,
    db: web::Data<Db>,
    id: web::Path<CaseId>,
    query: web::Query<RemoveQuery>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let requested = query.into_inner().effective_at;
    let who = actor.clone();
    change_case(&db, &audit, &actor, "care_team.secondary_end", id, move |c| {
        cases::lock_team(c, id)?;
        managed_case(c, &who, id)?;
        let mut errors = Vec::new();
        let Some(at) = not_backdated("effective_at", requested, &mut errors) else {
            return Err(ApiError::validation(errors));
        };
        let open = care_team::open_assignment(c, id, TeamRole::SecondaryPhysician)?
            .ok_or_else(|| ApiError::conflict("none_assigned", "The case has no secondary physician"))?;
        if at <= open.starts_at || !care_team::end(c, open.id, at)? {
            return Err(ApiError::invalid_field(
                "effective_at",
                "invalid_period",
                "must be after the assignment's start",
            ));
        }
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
