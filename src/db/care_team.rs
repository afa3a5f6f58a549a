//! Queries of care-team memberships. Nothing here deletes: ending sets `ends_at`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::care_team_members::dsl as m;
use super::{fixed, from_code, id, now, to_code, utc, DbConn, DbResult};
use crate::domain::care_team::{Member, TeamRole};
use crate::domain::ids::{CaseId, MemberId, PractitionerId};
use crate::domain::time::to_db;

pub(super) type Row = (String, String, String, String, chrono::NaiveDateTime, Option<chrono::NaiveDateTime>);

fn columns() -> (m::id, m::case_id, m::practitioner_id, m::role, m::starts_at, m::ends_at) {
    (m::id, m::case_id, m::practitioner_id, m::role, m::starts_at, m::ends_at)
}

pub(super) fn member(r: Row) -> DbResult<Member> {
    Ok(Member {
        id: id("id", &r.0)?,
        case_id: id("case_id", &r.1)?,
        practitioner_id: id("practitioner_id", &r.2)?,
        role: from_code(&r.3)?,
        starts_at: utc(r.4),
        ends_at: r.5.map(utc),
    })
}

fn members(rows: Vec<Row>) -> DbResult<Vec<Member>> {
    rows.into_iter().map(member).collect()
}

#[tracing::instrument(skip(conn))]
pub fn insert(
    conn: &mut DbConn,
    case: CaseId,
    practitioner: PractitionerId,
    role: TeamRole,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
) -> DbResult<Member> {
    let new_id = MemberId::new();
    diesel::insert_into(m::care_team_members)
        .values((
            m::id.eq(new_id.to_string()),
            m::case_id.eq(case.to_string()),
            m::practitioner_id.eq(practitioner.to_string()),
            m::role.eq(to_code(&role)?),
            m::starts_at.eq(to_db(starts_at)),
            m::ends_at.eq(ends_at.map(to_db)),
            m::created_at.eq(now()),
        ))
        .execute(conn)?;
    get(conn, case, new_id)
}

/// One membership of one case.
pub fn get(conn: &mut DbConn, case: CaseId, member_id: MemberId) -> DbResult<Member> {
    let row: Row = m::care_team_members
        .filter(m::id.eq(member_id.to_string()))
        .filter(m::case_id.eq(case.to_string()))
        .select(columns())
        .first(conn)?;
    member(row)
}

/// Ends a membership at `at` if it has not ended by then; `Ok(false)` if it had.
pub fn end(conn: &mut DbConn, member_id: MemberId, at: DateTime<Utc>) -> DbResult<bool> {
    let at = to_db(at);
    let changed = diesel::update(
        m::care_team_members
            .filter(m::id.eq(member_id.to_string()))
            .filter(m::starts_at.lt(at))
            .filter(m::ends_at.is_null().or(m::ends_at.gt(at))),
    )
    .set(m::ends_at.eq(at))
    .execute(conn)?;
    Ok(changed == 1)
}

/// The open (not yet ended) assignment of a physician slot.
pub fn open_assignment(conn: &mut DbConn, case: CaseId, role: TeamRole) -> DbResult<Option<Member>> {
    let row: Option<Row> = m::care_team_members
        .filter(m::case_id.eq(case.to_string()))
        .filter(m::role.eq(to_code(&role)?))
        .filter(m::ends_at.is_null())
        .select(columns())
        .first(conn)
        .optional()?;
    row.map(member).transpose()
}

/// The team at `at` (every role), or the whole history when `at` is `None`.
#[tracing::instrument(skip(conn))]
pub fn list(conn: &mut DbConn, case: CaseId, at: Option<DateTime<Utc>>) -> DbResult<Vec<Member>> {
    let mut q = m::care_team_members.filter(m::case_id.eq(case.to_string())).select(columns()).into_boxed();
    if let Some(at) = at {
        let at = to_db(at);
        q = q.filter(m::starts_at.le(at)).filter(m::ends_at.is_null().or(m::ends_at.gt(at)));
    }
    members(q.order((m::starts_at.asc(), m::id.asc())).load(conn)?)
}

/// Primary and secondary assignments overlapping `[from, to)`.
pub fn physicians_between(
    conn: &mut DbConn,
    case: CaseId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DbResult<Vec<Member>> {
    // Two equalities, not `IN (…)`: a fixed statement that stays prepared.
    let (primary, secondary) = (to_code(&TeamRole::PrimaryPhysician)?, to_code(&TeamRole::SecondaryPhysician)?);
    let rows = m::care_team_members
        .filter(m::case_id.eq(case.to_string()))
        .filter(m::role.eq(primary).or(m::role.eq(secondary)))
        .filter(m::starts_at.lt(to_db(to)))
        .filter(m::ends_at.is_null().or(m::ends_at.gt(to_db(from))))
        .select(columns())
        .load(conn)?;
    members(rows)
}

/// Whether `practitioner` is a current member of the case in `role`.
pub fn holds_now(conn: &mut DbConn, case: CaseId, practitioner: PractitionerId, role: TeamRole) -> DbResult<bool> {
    let at = now();
    let found: Option<String> = m::care_team_members
        .filter(m::case_id.eq(case.to_string()))
        .filter(m::practitioner_id.eq(practitioner.to_string()))
        .filter(m::role.eq(to_code(&role)?))
        .filter(m::starts_at.le(at))
        .filter(m::ends_at.is_null().or(m::ends_at.gt(at)))
        .select(m::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

/// Assignments of `role` that last past `at` (current or scheduled).
pub fn assignments_from(conn: &mut DbConn, case: CaseId, role: TeamRole, at: DateTime<Utc>) -> DbResult<Vec<Member>> {
    let rows = m::care_team_members
        .filter(m::case_id.eq(case.to_string()))
        .filter(m::role.eq(to_code(&role)?))
        .filter(m::ends_at.is_null().or(m::ends_at.gt(to_db(at))))
        .select(columns())
        .load(conn)?;
    members(rows)
}

/// Ends every membership of a closing case at `at` (those that started before it).
pub fn end_all(conn: &mut DbConn, case: CaseId, at: DateTime<Utc>) -> DbResult<usize> {
    let at = to_db(at);
    super::statements!(EndAll);
    Ok(fixed::<EndAll, _>(
        diesel::update(
            m::care_team_members
                .filter(m::case_id.eq(case.to_string()))
                .filter(m::starts_at.lt(at))
                .filter(m::ends_at.is_null().or(m::ends_at.gt(at))),
        )
        .set(m::ends_at.eq(at)),
    )
    .run(conn)?)
}
