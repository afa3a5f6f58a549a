//! Queries of absences and on-call shifts. Withdrawn entries are kept, marked `cancelled_at`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::absences::dsl as a;
use super::schema::on_call_shifts::dsl as s;
use super::{id, now, utc, DbConn, DbResult};
use crate::domain::ids::{AbsenceId, OrganizationId, PractitionerId, ShiftId};
use crate::domain::schedule::{Absence, NewAbsence, NewShift, Shift};
use crate::domain::time::to_db;
use crate::http::pagination::{Page, PageRequest};

pub(super) type AbsenceRow =
    (String, String, chrono::NaiveDateTime, chrono::NaiveDateTime, Option<String>, chrono::NaiveDateTime);
pub(super) type ShiftRow =
    (String, String, String, chrono::NaiveDateTime, chrono::NaiveDateTime, chrono::NaiveDateTime);

pub(super) fn absence(r: AbsenceRow) -> DbResult<Absence> {
    Ok(Absence {
        id: id("id", &r.0)?,
        practitioner_id: id("practitioner_id", &r.1)?,
        starts_at: utc(r.2),
        ends_at: utc(r.3),
        reason: r.4,
        created_at: utc(r.5),
    })
}

pub(super) fn shift(r: ShiftRow) -> DbResult<Shift> {
    Ok(Shift {
        id: id("id", &r.0)?,
        organization_id: id("organization_id", &r.1)?,
        practitioner_id: id("practitioner_id", &r.2)?,
        starts_at: utc(r.3),
        ends_at: utc(r.4),
        created_at: utc(r.5),
    })
}

const ABSENCE_COLUMNS: (a::id, a::practitioner_id, a::starts_at, a::ends_at, a::reason, a::created_at) =
    (a::id, a::practitioner_id, a::starts_at, a::ends_at, a::reason, a::created_at);
const SHIFT_COLUMNS: (s::id, s::organization_id, s::practitioner_id, s::starts_at, s::ends_at, s::created_at) =
    (s::id, s::organization_id, s::practitioner_id, s::starts_at, s::ends_at, s::created_at);

pub fn insert_absence(conn: &mut DbConn, practitioner: PractitionerId, new: &NewAbsence) -> DbResult<Absence> {
    let new_id = AbsenceId::new();
    diesel::insert_into(a::absences)
        .values((
            a::id.eq(new_id.to_string()),
            a::practitioner_id.eq(practitioner.to_string()),
            a::starts_at.eq(to_db(new.starts_at)),
            a::ends_at.eq(to_db(new.ends_at)),
            a::reason.eq(new.reason.as_deref()),
            a::created_at.eq(now()),
        ))
        .execute(conn)?;
    get_absence(conn, practitioner, new_id)
}

/// A live (not withdrawn) absence of a practitioner.
pub fn get_absence(conn: &mut DbConn, practitioner: PractitionerId, absence_id: AbsenceId) -> DbResult<Absence> {
    absence(
        a::absences
            .filter(a::id.eq(absence_id.to_string()))
            .filter(a::practitioner_id.eq(practitioner.to_string()))
            .filter(a::cancelled_at.is_null())
            .select(ABSENCE_COLUMNS)
            .first(conn)?,
    )
}

/// Withdraws an absence; `Ok(false)` if it was already withdrawn or is not theirs.
pub fn cancel_absence(conn: &mut DbConn, practitioner: PractitionerId, absence_id: AbsenceId) -> DbResult<bool> {
    let changed = diesel::update(
        a::absences
            .filter(a::id.eq(absence_id.to_string()))
            .filter(a::practitioner_id.eq(practitioner.to_string()))
            .filter(a::cancelled_at.is_null()),
    )
    .set(a::cancelled_at.eq(now()))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Live absences of a practitioner overlapping `[from, to)`, paginated by id.
pub fn list_absences(
    conn: &mut DbConn,
    practitioner: PractitionerId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    page: &PageRequest,
) -> DbResult<Page<Absence>> {
    let mut q = a::absences
        .filter(a::practitioner_id.eq(practitioner.to_string()))
        .filter(a::cancelled_at.is_null())
        .select(ABSENCE_COLUMNS)
        .into_boxed();
    if let Some(from) = from {
        q = q.filter(a::ends_at.gt(to_db(from)));
    }
    if let Some(to) = to {
        q = q.filter(a::starts_at.lt(to_db(to)));
    }
    if let Some(after) = &page.after {
        q = q.filter(a::id.gt(after.clone()));
    }
    let rows = q.order(a::id.asc()).limit(page.fetch_limit()).load(conn)?;
    let items = rows.into_iter().map(absence).collect::<DbResult<Vec<_>>>()?;
    Ok(page.finish(items, |x| x.id.to_string()))
}

pub fn insert_shift(conn: &mut DbConn, org: OrganizationId, new: &NewShift) -> DbResult<Shift> {
    let new_id = ShiftId::new();
    diesel::insert_into(s::on_call_shifts)
        .values((
            s::id.eq(new_id.to_string()),
            s::organization_id.eq(org.to_string()),
            s::practitioner_id.eq(new.practitioner_id.to_string()),
            s::starts_at.eq(to_db(new.starts_at)),
            s::ends_at.eq(to_db(new.ends_at)),
            s::created_at.eq(now()),
        ))
        .execute(conn)?;
    shift(s::on_call_shifts.find(new_id.to_string()).select(SHIFT_COLUMNS).first(conn)?)
}

/// A live shift of an organization.
pub fn get_shift(conn: &mut DbConn, org: OrganizationId, shift_id: ShiftId) -> DbResult<Shift> {
    shift(
        s::on_call_shifts
            .filter(s::id.eq(shift_id.to_string()))
            .filter(s::organization_id.eq(org.to_string()))
            .filter(s::cancelled_at.is_null())
            .select(SHIFT_COLUMNS)
            .first(conn)?,
    )
}

/// Withdraws a shift; `Ok(false)` if it was already withdrawn or is not the organization's.
pub fn cancel_shift(conn: &mut DbConn, org: OrganizationId, shift_id: ShiftId) -> DbResult<bool> {
    let changed = diesel::update(
        s::on_call_shifts
            .filter(s::id.eq(shift_id.to_string()))
            .filter(s::organization_id.eq(org.to_string()))
            .filter(s::cancelled_at.is_null()),
    )
    .set(s::cancelled_at.eq(now()))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Live shifts of an organization overlapping `[from, to)`, paginated by id.
pub fn list_shifts(
    conn: &mut DbConn,
    org: OrganizationId,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    page: &PageRequest,
) -> DbResult<Page<Shift>> {
    let mut q = s::on_call_shifts
        .filter(s::organization_id.eq(org.to_string()))
        .filter(s::cancelled_at.is_null())
        .select(SHIFT_COLUMNS)
        .into_boxed();
    if let Some(from) = from {
        q = q.filter(s::ends_at.gt(to_db(from)));
    }
    if let Some(to) = to {
        q = q.filter(s::starts_at.lt(to_db(to)));
    }
    if let Some(after) = &page.after {
        q = q.filter(s::id.gt(after.clone()));
    }
    let rows = q.order(s::id.asc()).limit(page.fetch_limit()).load(conn)?;
    let items = rows.into_iter().map(shift).collect::<DbResult<Vec<_>>>()?;
    Ok(page.finish(items, |x| x.id.to_string()))
}
