//! Queries of pre-registrations with a backup hospital and their information exchanges.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use super::schema::backup_info_exchanges::dsl as x;
use super::schema::backup_registrations::dsl as g;
use super::schema::cases::dsl as c;
use super::{from_code, id, now, to_code, utc, DbConn, DbResult};
use crate::auth::policy::BedScope;
use crate::domain::bed::{next_exchange_due, Registration, RegistrationStatus};
use crate::domain::ids::{CaseId, OrganizationId, PatientId, RegistrationId};
use crate::http::pagination::{Page, PageRequest};

#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema::backup_registrations)]
struct Row {
    id: String,
    case_id: String,
    patient_id: String,
    hospital_id: String,
    status: String,
    consent_obtained_on: NaiveDate,
    summary: String,
    requested_by: String,
    reject_reason: Option<String>,
    last_exchange_on: Option<NaiveDate>,
    next_exchange_due: Option<NaiveDate>,
    version: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl Row {
    fn into_registration(self, today: NaiveDate) -> DbResult<Registration> {
        let status: RegistrationStatus = from_code(&self.status)?;
        Ok(Registration {
            id: id("id", &self.id)?,
            case_id: id("case_id", &self.case_id)?,
            patient_id: id("patient_id", &self.patient_id)?,
            hospital_id: id("hospital_id", &self.hospital_id)?,
            status,
            consent_obtained_on: self.consent_obtained_on,
            summary: self.summary,
            requested_by: self.requested_by,
            reject_reason: self.reject_reason,
            last_exchange_on: self.last_exchange_on,
            next_exchange_due: self.next_exchange_due,
            exchange_overdue: status == RegistrationStatus::Active && self.next_exchange_due.is_some_and(|d| d < today),
            version: self.version,
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
        })
    }
}

fn today() -> NaiveDate {
    crate::domain::time::today_jst(chrono::Utc::now())
}

pub struct NewRegistration<'a> {
    pub case_id: CaseId,
    pub patient_id: PatientId,
    pub hospital_id: OrganizationId,
    pub consent_obtained_on: NaiveDate,
    pub summary: &'a str,
    pub requested_by: &'a str,
}

pub fn insert(conn: &mut DbConn, n: &NewRegistration) -> DbResult<RegistrationId> {
    let new_id = RegistrationId::new();
    let at = now();
    diesel::insert_into(g::backup_registrations)
        .values((
            g::id.eq(new_id.to_string()),
            g::case_id.eq(n.case_id.to_string()),
            g::patient_id.eq(n.patient_id.to_string()),
            g::hospital_id.eq(n.hospital_id.to_string()),
            g::status.eq(to_code(&RegistrationStatus::Requested)?),
            g::consent_obtained_on.eq(n.consent_obtained_on),
            g::summary.eq(n.summary),
            g::requested_by.eq(n.requested_by),
            g::version.eq(1_i64),
            g::created_at.eq(at),
            g::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(new_id)
}

pub fn get(conn: &mut DbConn, reg: RegistrationId) -> DbResult<Registration> {
    let row: Row = g::backup_registrations.find(reg.to_string()).select(Row::as_select()).first(conn)?;
    row.into_registration(today())
}

pub fn patient_of(conn: &mut DbConn, reg: RegistrationId) -> DbResult<Option<PatientId>> {
    let found: Option<String> =
        g::backup_registrations.find(reg.to_string()).select(g::patient_id).first(conn).optional()?;
    found.map(|p| id("patient_id", &p)).transpose()
}

/// The patient's active registration, if any.
pub fn active_of(conn: &mut DbConn, patient: PatientId) -> DbResult<Option<Registration>> {
    let row: Option<Row> = g::backup_registrations
        .filter(g::patient_id.eq(patient.to_string()))
        .filter(g::status.eq(to_code(&RegistrationStatus::Active)?))
        .select(Row::as_select())
        .first(conn)
        .optional()?;
    row.map(|r| r.into_registration(today())).transpose()
}

type Visible = super::Cond<g::backup_registrations>;

/// The hospital's bed managers see the registrations addressed to it; the case's team and the
/// base's coordinators see the case's.
fn branches(scope: &BedScope) -> Vec<Visible> {
    // Only the scope's own conditions: a constant `1 = 0 OR …` in front kept SQLite from
    // using their indexes (a physician's case list walked every case).
    let mut parts: Vec<Visible> = Vec::new();
    if let Some(h) = scope.hospital {
        parts.push(Box::new(g::hospital_id.eq(h.to_string())));
    }
    if let Some(org) = scope.cases.managing_org {
        let managed = c::cases.filter(c::managing_organization_id.eq(org.to_string())).select(c::id);
        parts.push(Box::new(g::case_id.eq_any(managed)));
    }
    if let Some(member) = scope.cases.member {
        parts.push(Box::new(g::case_id.eq_any(super::cases::current_cases_of!(member.to_string()))));
    }
    parts
}

/// Every way of seeing at once, for a read of one row by id.
fn visible(scope: &BedScope) -> Visible {
    super::any_of(branches(scope))
}

pub fn get_visible(conn: &mut DbConn, reg: RegistrationId, scope: &BedScope) -> DbResult<Registration> {
    let row: Row = g::backup_registrations
        .filter(g::id.eq(reg.to_string()))
        .filter(visible(scope))
        .select(Row::as_select())
        .first(conn)?;
    row.into_registration(today())
}

/// Compare-and-set on status and version; an activation also starts the exchange clock.
pub fn transition(
    conn: &mut DbConn,
    reg: &Registration,
    to: RegistrationStatus,
    reject_reason: Option<&str>,
) -> DbResult<bool> {
    let target = g::backup_registrations
        .filter(g::id.eq(reg.id.to_string()))
        .filter(g::status.eq(to_code(&reg.status)?))
        .filter(g::version.eq(reg.version));
    let day = today();
    let (last, next) = if to == RegistrationStatus::Active {
        (Some(day), Some(next_exchange_due(day)))
    } else {
        (reg.last_exchange_on, reg.next_exchange_due)
    };
    let changed = diesel::update(target)
        .set((
            g::status.eq(to_code(&to)?),
            g::reject_reason.eq(reject_reason.or(reg.reject_reason.as_deref())),
            g::last_exchange_on.eq(last),
            g::next_exchange_due.eq(next),
            g::version.eq(reg.version + 1),
            g::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Records an exchange and moves the next due date on from the latest one.
pub fn record_exchange(
    conn: &mut DbConn,
    reg: &Registration,
    on: NaiveDate,
    note: Option<&str>,
    who: &str,
) -> DbResult<bool> {
    let last = reg.last_exchange_on.map_or(on, |l| l.max(on));
    let changed =
        diesel::update(g::backup_registrations.filter(g::id.eq(reg.id.to_string())).filter(g::version.eq(reg.version)))
            .set((
                g::last_exchange_on.eq(Some(last)),
                g::next_exchange_due.eq(Some(next_exchange_due(last))),
                g::version.eq(reg.version + 1),
                g::updated_at.eq(now()),
            ))
            .execute(conn)?;
    if changed == 0 {
        return Ok(false);
    }
    diesel::insert_into(x::backup_info_exchanges)
        .values((
            x::id.eq(uuid::Uuid::now_v7().to_string()),
            x::registration_id.eq(reg.id.to_string()),
            x::exchanged_on.eq(on),
            x::note.eq(note),
            x::recorded_by.eq(who),
            x::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Filters of `GET /api/v1/backup-registrations`.
#[derive(Debug, Default)]
pub struct Filter {
    pub status: Option<RegistrationStatus>,
    pub hospital_id: Option<OrganizationId>,
    pub case_id: Option<CaseId>,
    pub patient_id: Option<PatientId>,
    /// Active registrations whose next exchange is due before this Japan date.
    pub exchange_due_before: Option<NaiveDate>,
}

pub fn list(conn: &mut DbConn, scope: &BedScope, f: &Filter, page: &PageRequest) -> DbResult<Page<Registration>> {
    // One query per way of seeing, merged: an `OR` of them can walk every registration in id
    // order on PostgreSQL.
    let rows = super::union_pages(
        branches(scope),
        page.fetch_limit(),
        |x: &Row| x.id.clone(),
        |visible| {
            let mut q = g::backup_registrations.select(Row::as_select()).filter(visible).into_boxed();
            if let Some(s) = &f.status {
                q = q.filter(g::status.eq(to_code(s)?));
            }
            if let Some(h) = f.hospital_id {
                q = q.filter(g::hospital_id.eq(h.to_string()));
            }
            if let Some(cid) = f.case_id {
                q = q.filter(g::case_id.eq(cid.to_string()));
            }
            if let Some(p) = f.patient_id {
                q = q.filter(g::patient_id.eq(p.to_string()));
            }
            if let Some(d) = f.exchange_due_before {
                q = q.filter(g::status.eq(to_code(&RegistrationStatus::Active)?)).filter(g::next_exchange_due.lt(d));
            }
            if let Some(after) = &page.after {
                q = q.filter(g::id.gt(after.clone()));
            }
            Ok(q.order(g::id.asc()).limit(page.fetch_limit()).load::<Row>(conn)?)
        },
    )?;
    let day = today();
    let items = rows.into_iter().map(|r| r.into_registration(day)).collect::<DbResult<Vec<_>>>()?;
    Ok(page.finish(items, |x| x.id.to_string()))
}
