//! The facts of a cover answer (DOMAIN.md §2) and the people they name, in three statements of a
//! fixed shape each, so that both backends keep them prepared whatever the size of the team,
//! the roster or the region: the physicians with their contact details, the roster with theirs,
//! and the absences of both groups (`IN` a union of two subqueries: never a list of ids, and
//! never an `OR` of two subqueries, which PostgreSQL answers by scanning the table).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schedule::{absence, shift, AbsenceRow, ShiftRow, ABSENCE_COLUMNS, SHIFT_COLUMNS};
use super::schema::absences::dsl as a;
use super::schema::care_team_members::dsl as m;
use super::schema::on_call_shifts::dsl as s;
use super::schema::organizations::dsl as o;
use super::schema::practitioners::dsl as p;
use super::{care_team, native, organizations, practitioners, to_code, DbConn, DbResult};
use crate::domain::care_team::{Member, TeamRole};
use crate::domain::ids::{CaseId, OrganizationId};
use crate::domain::organization::Organization;
use crate::domain::practitioner::Practitioner;
use crate::domain::schedule::{Absence, Shift};
use crate::domain::time::to_db;

/// The bound values of the statements.
struct Window {
    case: String,
    base: String,
    primary: String,
    secondary: String,
    from: chrono::NaiveDateTime,
    to: chrono::NaiveDateTime,
}

/// The case's primary and secondary physicians whose assignment overlaps the window.
macro_rules! physicians {
    ($w:expr) => {
        m::care_team_members
            .filter(m::case_id.eq($w.case.clone()))
            .filter(m::role.eq($w.primary.clone()).or(m::role.eq($w.secondary.clone())))
            .filter(m::starts_at.lt($w.to))
            .filter(m::ends_at.is_null().or(m::ends_at.gt($w.from)))
    };
}

/// The base's on-call shifts overlapping the window.
macro_rules! rostered {
    ($w:expr) => {
        s::on_call_shifts
            .filter(s::organization_id.eq($w.base.clone()))
            .filter(s::cancelled_at.is_null())
            .filter(s::starts_at.lt($w.to))
            .filter(s::ends_at.gt($w.from))
    };
}

/// A practitioner with their organization, as read.
type PersonRow = (practitioners::Row, organizations::Row);

fn person((p, o): PersonRow) -> DbResult<(Practitioner, Organization)> {
    Ok((Practitioner::try_from(p)?, Organization::try_from(o)?))
}

/// What a cover answer over `[from, to)` is made of.
pub struct CoverFacts {
    pub members: Vec<Member>,
    pub shifts: Vec<Shift>,
    pub absences: Vec<Absence>,
    /// Everyone `members` and `shifts` name, with their organization (once each).
    pub people: Vec<(Practitioner, Organization)>,
}

/// Reads the facts for `case` (managed by `base`) over `[from, to)`.
pub fn load(
    conn: &mut DbConn,
    case: CaseId,
    base: OrganizationId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DbResult<CoverFacts> {
    let w = Window {
        case: case.to_string(),
        base: base.to_string(),
        primary: to_code(&TeamRole::PrimaryPhysician)?,
        secondary: to_code(&TeamRole::SecondaryPhysician)?,
        from: to_db(from),
        to: to_db(to),
    };
    // On the backend's own connection (`native!`): the statements are prepared once, and their
    // text is not written out again at each lookup (12 % of the server's time during cover
    // lookups on SQLite before, docs/PERFORMANCE.md round 7).
    let member_rows: Vec<(care_team::Row, PersonRow)> = native!(conn, |c| physicians!(w)
        .inner_join(p::practitioners.inner_join(o::organizations))
        .select((care_team::columns(), (practitioners::Row::as_select(), organizations::Row::as_select())))
        .load(c))?;
    let shift_rows: Vec<(ShiftRow, PersonRow)> = native!(conn, |c| rostered!(w)
        .inner_join(p::practitioners.inner_join(o::organizations))
        .select((SHIFT_COLUMNS, (practitioners::Row::as_select(), organizations::Row::as_select())))
        .load(c))?;
    // The absences of everyone named above, in one statement: `IN` a union of the two groups
    // (one absence is one row even when its physician is on the team and on the roster).
    let absence_rows: Vec<AbsenceRow> = native!(conn, |c| a::absences
        .filter(
            a::practitioner_id
                .eq_any(physicians!(w).select(m::practitioner_id).union(rostered!(w).select(s::practitioner_id))),
        )
        .filter(a::cancelled_at.is_null())
        .filter(a::starts_at.lt(w.to))
        .filter(a::ends_at.gt(w.from))
        .select(ABSENCE_COLUMNS)
        .load(c))?;
    let mut people = Vec::new();
    let mut members = Vec::with_capacity(member_rows.len());
    for (row, who) in member_rows {
        members.push(care_team::member(row)?);
        people.push(who);
    }
    let mut shifts = Vec::with_capacity(shift_rows.len());
    for (row, who) in shift_rows {
        shifts.push(shift(row)?);
        people.push(who);
    }
    let mut people: Vec<(Practitioner, Organization)> = people.into_iter().map(person).collect::<DbResult<_>>()?;
    people.sort_by_key(|x| x.0.id);
    people.dedup_by(|x, y| x.0.id == y.0.id);
    Ok(CoverFacts {
        members,
        shifts,
        absences: absence_rows.into_iter().map(absence).collect::<DbResult<_>>()?,
        people,
    })
}
