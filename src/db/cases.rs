//! Queries of the case aggregate: cases, their status history, and scoped reads.

use chrono::NaiveDate;
use diesel::prelude::*;

use super::schema::case_status_history::dsl as h;
use super::schema::cases::dsl as c;
use super::schema::patients::dsl as p;
use super::{fixed, from_code, id, native, now, to_code, utc, DbConn, DbError, DbResult};
use crate::auth::policy::CaseScope;
use crate::domain::case::{Case, CaseStatus, CloseReason, StatusChange};
use crate::domain::ids::{CaseId, OrganizationId, PatientId, PractitionerId};
use crate::http::pagination::{Page, PageRequest};

#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema::cases)]
struct Row {
    id: String,
    patient_id: String,
    managing_organization_id: String,
    status: String,
    started_on: Option<NaiveDate>,
    ended_on: Option<NaiveDate>,
    close_reason: Option<String>,
    notes: Option<String>,
    version: i64,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

impl TryFrom<Row> for Case {
    type Error = DbError;
    fn try_from(r: Row) -> DbResult<Self> {
        Ok(Case {
            id: id("id", &r.id)?,
            patient_id: id("patient_id", &r.patient_id)?,
            managing_organization_id: id("managing_organization_id", &r.managing_organization_id)?,
            status: from_code(&r.status)?,
            started_on: r.started_on,
            ended_on: r.ended_on,
            close_reason: r.close_reason.as_deref().map(from_code).transpose()?,
            notes: r.notes,
            version: r.version,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        })
    }
}

/// Ids of the cases whose team has the practitioner (an id string) as a member now: a subquery,
/// written out where it is used (diesel cannot box a subquery for two backends at once).
macro_rules! current_cases_of {
    ($member:expr) => {{
        use $crate::db::schema::care_team_members::dsl as m;
        let at = $crate::db::now();
        m::care_team_members
            .filter(m::practitioner_id.eq($member))
            .filter(m::starts_at.le(at))
            .filter(m::ends_at.is_null().or(m::ends_at.gt(at)))
            .select(m::case_id)
    }};
}
pub(crate) use current_cases_of;

type Visible = super::Cond<c::cases>;

/// The scope's conditions, one per way of seeing a case (none when it sees nothing). Only the
/// scope's own: a constant `1 = 0 OR …` in front kept SQLite from using their indexes (a
/// physician's case list walked every case).
fn branches(scope: &CaseScope) -> Vec<Visible> {
    if scope.any {
        return vec![Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 1"))];
    }
    let mut parts: Vec<Visible> = Vec::new();
    if let Some(org) = scope.managing_org {
        parts.push(Box::new(c::managing_organization_id.eq(org.to_string())));
    }
    if let Some(member) = scope.member {
        parts.push(Box::new(c::id.eq_any(current_cases_of!(member.to_string()))));
    }
    parts
}

// The statements kept prepared ([`super::fixed`]).
super::statements!(Insert, Record, Transition, UpdateNotes, LockTeam);

/// Opens a `referred` case and records its first history step.
#[tracing::instrument(skip(conn))]
pub fn insert(
    conn: &mut DbConn,
    patient: PatientId,
    managing_org: OrganizationId,
    notes: Option<&str>,
    actor: &str,
) -> DbResult<Case> {
    let new_id = CaseId::new();
    let at = now();
    fixed::<Insert, _>(diesel::insert_into(c::cases).values((
        c::id.eq(new_id.to_string()),
        c::patient_id.eq(patient.to_string()),
        c::managing_organization_id.eq(managing_org.to_string()),
        c::status.eq(to_code(&CaseStatus::Referred)?),
        c::notes.eq(notes),
        c::team_version.eq(0_i64),
        c::version.eq(1_i64),
        c::created_at.eq(at),
        c::updated_at.eq(at),
    )))
    .run(conn)?;
    super::patients::index_case_org(conn, patient, managing_org)?;
    record(conn, new_id, None, CaseStatus::Referred, None, actor)?;
    // As stored (the timestamps are already at the database's precision): no read back.
    Ok(Case {
        id: new_id,
        patient_id: patient,
        managing_organization_id: managing_org,
        status: CaseStatus::Referred,
        started_on: None,
        ended_on: None,
        close_reason: None,
        notes: notes.map(str::to_owned),
        version: 1,
        created_at: utc(at),
        updated_at: utc(at),
    })
}

fn record(
    conn: &mut DbConn,
    case: CaseId,
    from: Option<CaseStatus>,
    to: CaseStatus,
    reason: Option<CloseReason>,
    actor: &str,
) -> DbResult<()> {
    fixed::<Record, _>(diesel::insert_into(h::case_status_history).values((
        h::id.eq(uuid::Uuid::now_v7().to_string()),
        h::case_id.eq(case.to_string()),
        h::from_status.eq(from.as_ref().map(to_code).transpose()?),
        h::to_status.eq(to_code(&to)?),
        h::close_reason.eq(reason.as_ref().map(to_code).transpose()?),
        h::actor.eq(actor),
        h::at.eq(now()),
    )))
    .run(conn)?;
    Ok(())
}

/// A case regardless of scope (internal use).
pub fn get(conn: &mut DbConn, case: CaseId) -> DbResult<Case> {
    native!(conn, |c| c::cases.find(case.to_string()).select(Row::as_select()).first(c))?.try_into()
}

/// The patient of a case, whoever asks (for the audit row of a refused access).
pub fn patient_of(conn: &mut DbConn, case: CaseId) -> DbResult<Option<PatientId>> {
    let found: Option<String> =
        native!(conn, |c| c::cases.find(case.to_string()).select(c::patient_id).first(c).optional())?;
    found.map(|p| id("patient_id", &p)).transpose()
}

/// A case the scope may read; `NotFound` otherwise. One statement of a fixed shape per kind of
/// scope, not the boxed conditions of the lists: this is the point read behind every request
/// about a case, and diesel finds a statement of a fixed type in its cache by the type, where a
/// boxed one has its SQL text rebuilt on every call to be looked up (6 % of a case read).
#[tracing::instrument(skip(conn))]
pub fn get_visible(conn: &mut DbConn, case: CaseId, scope: &CaseScope) -> DbResult<Case> {
    let one = c::cases.filter(c::id.eq(case.to_string()));
    let row = native!(conn, |conn| match (scope.any, scope.managing_org, scope.member) {
        (true, _, _) => one.select(Row::as_select()).first(conn),
        (false, Some(org), None) => {
            one.filter(c::managing_organization_id.eq(org.to_string())).select(Row::as_select()).first(conn)
        }
        (false, None, Some(me)) => {
            one.filter(c::id.eq_any(current_cases_of!(me.to_string()))).select(Row::as_select()).first(conn)
        }
        (false, Some(org), Some(me)) => one
            .filter(c::managing_organization_id.eq(org.to_string()).or(c::id.eq_any(current_cases_of!(me.to_string()))))
            .select(Row::as_select())
            .first(conn),
        (false, None, None) => Err(diesel::result::Error::NotFound),
    });
    row?.try_into()
}

/// The open case of a patient at an organization, if any.
pub fn open_case_of(conn: &mut DbConn, patient: PatientId, org: OrganizationId) -> DbResult<Option<CaseId>> {
    // The open statuses one by one, not as an `IN` list, which diesel parses again each time on
    // SQLite (on PostgreSQL it binds one array).
    let [a, b, o] = CaseStatus::OPEN.map(|x| to_code(&x));
    let (a, b, o) = (a?, b?, o?);
    let found: Option<String> = native!(conn, |c| c::cases
        .filter(c::patient_id.eq(patient.to_string()))
        .filter(c::managing_organization_id.eq(org.to_string()))
        .filter(c::status.eq(&a).or(c::status.eq(&b)).or(c::status.eq(&o)))
        .select(c::id)
        .first(c)
        .optional())?;
    found.map(|x| id("id", &x)).transpose()
}

/// What a transition writes besides the status.
#[derive(Debug, Default)]
pub struct TransitionEffects {
    pub started_on: Option<NaiveDate>,
    pub ended_on: Option<NaiveDate>,
    pub close_reason: Option<CloseReason>,
}

/// Compare-and-set on the status: `Ok(false)` when the case is no longer in `from`, so two
/// racing transitions cannot both win. Records the history step.
#[tracing::instrument(skip(conn))]
pub fn transition(
    conn: &mut DbConn,
    case: CaseId,
    from: CaseStatus,
    to: CaseStatus,
    effects: &TransitionEffects,
    actor: &str,
) -> DbResult<bool> {
    let target = c::cases.filter(c::id.eq(case.to_string())).filter(c::status.eq(to_code(&from)?));
    // The dates in the same statement, each kept as it is when not set: one text whichever dates
    // are set (it stays prepared).
    let changed = fixed::<Transition, _>(diesel::update(target).set((
        c::status.eq(to_code(&to)?),
        c::version.eq(c::version + 1),
        c::updated_at.eq(now()),
        c::close_reason.eq(effects.close_reason.as_ref().map(to_code).transpose()?),
        c::started_on.eq(super::or_kept(c::started_on, effects.started_on)),
        c::ended_on.eq(super::or_kept(c::ended_on, effects.ended_on)),
    )))
    .run(conn)?;
    if changed == 0 {
        return Ok(false);
    }
    record(conn, case, Some(from), to, effects.close_reason, actor)?;
    Ok(true)
}

/// Changes the notes if the case is still at `version`.
pub fn update_notes(conn: &mut DbConn, case: CaseId, version: i64, notes: Option<&str>) -> DbResult<bool> {
    let changed = fixed::<UpdateNotes, _>(
        diesel::update(c::cases.filter(c::id.eq(case.to_string())).filter(c::version.eq(version))).set((
            c::notes.eq(notes),
            c::version.eq(version + 1),
            c::updated_at.eq(now()),
        )),
    )
    .run(conn)?;
    Ok(changed == 1)
}

/// Takes the case's row lock for a care-team change (PostgreSQL: until commit; SQLite: the
/// write transaction already excludes every other writer). `NotFound` if there is no such case.
pub fn lock_team(conn: &mut DbConn, case: CaseId) -> DbResult<()> {
    let changed = fixed::<LockTeam, _>(
        diesel::update(c::cases.find(case.to_string())).set(c::team_version.eq(c::team_version + 1)),
    )
    .run(conn)?;
    if changed == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// The status history, oldest first.
pub fn history(conn: &mut DbConn, case: CaseId) -> DbResult<Vec<StatusChange>> {
    #[allow(clippy::type_complexity)]
    let rows: Vec<(Option<String>, String, Option<String>, String, chrono::NaiveDateTime)> = h::case_status_history
        .filter(h::case_id.eq(case.to_string()))
        .order((h::at.asc(), h::id.asc()))
        .select((h::from_status, h::to_status, h::close_reason, h::actor, h::at))
        .load(conn)?;
    rows.into_iter()
        .map(|(from, to, reason, actor, at)| {
            Ok(StatusChange {
                from_status: from.as_deref().map(from_code).transpose()?,
                to_status: from_code(&to)?,
                close_reason: reason.as_deref().map(from_code).transpose()?,
                actor,
                at: utc(at),
            })
        })
        .collect()
}

/// Filters of `GET /api/v1/cases`.
#[derive(Debug, Default)]
pub struct Filter {
    pub status: Option<CaseStatus>,
    pub managing_organization_id: Option<OrganizationId>,
    pub practitioner_id: Option<PractitionerId>,
    pub municipality_code: Option<String>,
    pub patient_id: Option<PatientId>,
}

/// A page of the cases the scope sees. One query per way of seeing (the organization's cases,
/// the practitioner's teams), each in id order from the cursor, merged: an `OR` of the two kept
/// PostgreSQL off both indexes (it cannot combine an index with a subquery), and it walked every
/// case of the region in id order to fill a page.
#[tracing::instrument(skip(conn))]
pub fn list(conn: &mut DbConn, scope: &CaseScope, filter: &Filter, page: &PageRequest) -> DbResult<Page<Case>> {
    let rows = super::union_pages(
        branches(scope),
        page.fetch_limit(),
        |r: &Row| r.id.clone(),
        |visible| list_branch(conn, visible, filter, page),
    )?;
    let items = rows.into_iter().map(Case::try_from).collect::<DbResult<Vec<_>>>()?;
    Ok(page.finish(items, |x| x.id.to_string()))
}

fn list_branch(conn: &mut DbConn, visible: Visible, filter: &Filter, page: &PageRequest) -> DbResult<Vec<Row>> {
    let mut q = c::cases.select(Row::as_select()).filter(visible).into_boxed();
    if let Some(s) = &filter.status {
        q = q.filter(c::status.eq(to_code(s)?));
    }
    if let Some(org) = filter.managing_organization_id {
        q = q.filter(c::managing_organization_id.eq(org.to_string()));
    }
    if let Some(pr) = filter.practitioner_id {
        q = q.filter(c::id.eq_any(current_cases_of!(pr.to_string())));
    }
    if let Some(code) = &filter.municipality_code {
        q = q.filter(c::patient_id.eq_any(p::patients.filter(p::municipality_code.eq(code.clone())).select(p::id)));
    }
    if let Some(patient) = filter.patient_id {
        q = q.filter(c::patient_id.eq(patient.to_string()));
    }
    if let Some(after) = &page.after {
        q = q.filter(c::id.gt(after.clone()));
    }
    Ok(q.order(c::id.asc()).limit(page.fetch_limit()).load(conn)?)
}
