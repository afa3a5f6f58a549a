//! Queries of backup beds, respite policies, bed requests and allocations. A bed's allocations
//! are serialised by an `UPDATE` of its row (`beds.alloc_version`), like a case's team.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::bed_allocations::dsl as a;
use super::schema::bed_requests::dsl as r;
use super::schema::beds::dsl as b;
use super::schema::cases::dsl as c;
use super::schema::respite_policies::dsl as rp;
use super::{fixed, from_code, from_json, id, native, now, or_kept, to_code, to_json, utc, DbConn, DbError, DbResult};
use crate::auth::policy::BedScope;
use crate::domain::bed::{
    Allocation, Alternative, Bed, BedFields, BedKind, BedRequest, BedStatus, DeclineReason, Disposition, RequestStatus,
    RespitePolicy,
};
use crate::domain::ids::{BedId, BedRequestId, CaseId, OrganizationId, PatientId};
use crate::domain::time::to_db;
use crate::http::pagination::{Page, PageRequest};

#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema::beds)]
struct BedRow {
    id: String,
    hospital_id: String,
    ward: String,
    label: String,
    kinds: String,
    tags: String,
    status: String,
    version: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl TryFrom<BedRow> for Bed {
    type Error = DbError;
    fn try_from(x: BedRow) -> DbResult<Self> {
        Ok(Bed {
            id: id("id", &x.id)?,
            hospital_id: id("hospital_id", &x.hospital_id)?,
            ward: x.ward,
            label: x.label,
            kinds: from_json("kinds", &x.kinds)?,
            tags: from_json("tags", &x.tags)?,
            status: from_code(&x.status)?,
            version: x.version,
            created_at: utc(x.created_at),
            updated_at: utc(x.updated_at),
        })
    }
}

pub fn insert_bed(conn: &mut DbConn, hospital: OrganizationId, f: &BedFields) -> DbResult<Bed> {
    let new_id = BedId::new();
    let at = now();
    diesel::insert_into(b::beds)
        .values((
            b::id.eq(new_id.to_string()),
            b::hospital_id.eq(hospital.to_string()),
            b::ward.eq(&f.ward),
            b::label.eq(&f.label),
            b::kinds.eq(to_json(&f.kinds)?),
            b::tags.eq(to_json(&f.tags)?),
            b::status.eq(to_code(&f.status)?),
            b::alloc_version.eq(0_i64),
            b::version.eq(1_i64),
            b::created_at.eq(at),
            b::updated_at.eq(at),
        ))
        .execute(conn)?;
    get_bed(conn, new_id)
}

pub fn get_bed(conn: &mut DbConn, bed: BedId) -> DbResult<Bed> {
    b::beds.find(bed.to_string()).select(BedRow::as_select()).first(conn)?.try_into()
}

pub fn update_bed(conn: &mut DbConn, bed: BedId, version: i64, f: &BedFields) -> DbResult<bool> {
    let changed = diesel::update(b::beds.filter(b::id.eq(bed.to_string())).filter(b::version.eq(version)))
        .set((
            b::ward.eq(&f.ward),
            b::label.eq(&f.label),
            b::kinds.eq(to_json(&f.kinds)?),
            b::tags.eq(to_json(&f.tags)?),
            b::status.eq(to_code(&f.status)?),
            b::version.eq(version + 1),
            b::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

pub fn list_beds(conn: &mut DbConn, hospital: OrganizationId, page: &PageRequest) -> DbResult<Page<Bed>> {
    let mut q = b::beds.filter(b::hospital_id.eq(hospital.to_string())).select(BedRow::as_select()).into_boxed();
    if let Some(after) = &page.after {
        q = q.filter(b::id.gt(after.clone()));
    }
    let rows: Vec<BedRow> = q.order(b::id.asc()).limit(page.fetch_limit()).load(conn)?;
    let items = rows.into_iter().map(Bed::try_from).collect::<DbResult<Vec<_>>>()?;
    Ok(page.finish(items, |x| x.id.to_string()))
}

/// A live allocation that overlaps `[from, to)` (bound as database timestamps): one that is not
/// released, starts before `to`, and ends after `from` or belongs to an admitted patient, who
/// stays until discharge.
macro_rules! live_overlap {
    ($from:expr, $to:expr, $admitted:expr) => {
        a::released_at.is_null().and(a::starts_at.lt($to)).and(
            a::ends_at
                .gt($from)
                .or(a::request_id.eq_any(r::bed_requests.filter(r::status.eq($admitted)).select(r::id))),
        )
    };
}

/// Free matching beds counted by hospital, most first: open beds of `kind` carrying every need,
/// with no live allocation overlapping `[from, to)`.
pub fn availability(
    conn: &mut DbConn,
    kind: BedKind,
    needs: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DbResult<Vec<Alternative>> {
    // Bed by bed: a live allocation of this bed that overlaps the period (through the partial
    // index of live allocations by bed; a bed has few), or that of an admitted patient, whose stay
    // may run past its planned end. Not the set of all live allocations ending after `from`: that
    // is every booking ahead in the region, walked at every decline. Only the columns the count
    // needs: this reads every open bed of the region.
    let admitted = to_code(&RequestStatus::Admitted)?;
    let open = to_code(&BedStatus::Open)?;
    let (from, to) = (to_db(from), to_db(to));
    let free: Vec<(String, String, String)> = native!(conn, |c| b::beds
        .filter(b::status.eq(&open))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            a::bed_allocations.filter(a::bed_id.eq(b::id)).filter(live_overlap!(from, to, &admitted)),
        )))
        .select((b::hospital_id, b::kinds, b::tags))
        .load(c))?;
    let mut counts: BTreeMap<OrganizationId, i64> = BTreeMap::new();
    for (hospital, kinds, tags) in free {
        let (kinds, tags): (Vec<BedKind>, Vec<String>) = (from_json("kinds", &kinds)?, from_json("tags", &tags)?);
        if kinds.contains(&kind) && needs.iter().all(|n| tags.contains(n)) {
            *counts.entry(id("hospital_id", &hospital)?).or_default() += 1;
        }
    }
    let mut out: Vec<Alternative> =
        counts.into_iter().map(|(hospital_id, free_beds)| Alternative { hospital_id, free_beds }).collect();
    out.sort_by(|x, y| y.free_beds.cmp(&x.free_beds).then(x.hospital_id.cmp(&y.hospital_id)));
    Ok(out)
}

// The statements kept prepared ([`super::fixed`]).
super::statements!(LockBed, Allocate, Transition);

/// Takes the bed's row lock until commit (PostgreSQL; SQLite's single writer already
/// serialises): allocations of one bed happen one after the other.
pub fn lock_bed(conn: &mut DbConn, bed: BedId) -> DbResult<()> {
    let changed = fixed::<LockBed, _>(
        diesel::update(b::beds.find(bed.to_string())).set(b::alloc_version.eq(b::alloc_version + 1)),
    )
    .run(conn)?;
    if changed == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Whether a live allocation of the bed overlaps `[from, to)`. The allocation of a patient in
/// the bed (admitted) lasts until discharge, whatever its planned end.
pub fn overlaps(conn: &mut DbConn, bed: BedId, from: DateTime<Utc>, to: DateTime<Utc>) -> DbResult<bool> {
    let admitted = to_code(&RequestStatus::Admitted)?;
    let taken = a::bed_allocations.filter(a::bed_id.eq(bed.to_string())).filter(live_overlap!(
        to_db(from),
        to_db(to),
        &admitted
    ));
    Ok(native!(conn, |c| diesel::select(diesel::dsl::exists(taken)).get_result(c))?)
}

pub fn allocate(
    conn: &mut DbConn,
    bed: BedId,
    request: BedRequestId,
    patient: PatientId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DbResult<()> {
    fixed::<Allocate, _>(diesel::insert_into(a::bed_allocations).values((
        a::id.eq(uuid::Uuid::now_v7().to_string()),
        a::bed_id.eq(bed.to_string()),
        a::request_id.eq(request.to_string()),
        a::patient_id.eq(patient.to_string()),
        a::starts_at.eq(to_db(from)),
        a::ends_at.eq(to_db(to)),
        a::created_at.eq(now()),
    )))
    .run(conn)?;
    Ok(())
}

/// Gives the bed back from `at` on.
pub fn release(conn: &mut DbConn, request: BedRequestId, at: DateTime<Utc>) -> DbResult<()> {
    diesel::update(a::bed_allocations.filter(a::request_id.eq(request.to_string())).filter(a::released_at.is_null()))
        .set(a::released_at.eq(Some(to_db(at))))
        .execute(conn)?;
    Ok(())
}

/// Respite days the patient had, has booked or has asked for (pending) at the hospital, in
/// stays starting between `from` and `to`, other than request `except`.
pub fn respite_days(
    conn: &mut DbConn,
    patient: PatientId,
    hospital: OrganizationId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    except: Option<BedRequestId>,
) -> DbResult<i64> {
    let except = except.map(|x| x.to_string()).unwrap_or_default();
    let pending: Vec<(NaiveDateTime, Option<NaiveDateTime>)> = r::bed_requests
        .filter(r::hospital_id.eq(hospital.to_string()))
        .filter(r::patient_id.eq(patient.to_string()))
        .filter(r::kind.eq(to_code(&BedKind::Respite)?))
        .filter(r::status.eq(to_code(&RequestStatus::Pending)?))
        .filter(r::id.ne(&except))
        .filter(r::starts_at.ge(to_db(from)))
        .filter(r::starts_at.lt(to_db(to)))
        .select((r::starts_at, r::ends_at))
        .load(conn)?;
    let asked: i64 = pending.into_iter().map(|(s, e)| crate::domain::bed::stay_days(utc(s), utc(e.unwrap_or(s)))).sum();
    let respite = r::bed_requests
        .filter(r::hospital_id.eq(hospital.to_string()))
        .filter(r::kind.eq(to_code(&BedKind::Respite)?))
        .filter(r::id.ne(except))
        .select(r::id);
    let rows: Vec<(NaiveDateTime, NaiveDateTime, Option<NaiveDateTime>)> = a::bed_allocations
        .filter(a::patient_id.eq(patient.to_string()))
        .filter(a::request_id.eq_any(respite))
        .filter(a::starts_at.ge(to_db(from)))
        .filter(a::starts_at.lt(to_db(to)))
        .select((a::starts_at, a::ends_at, a::released_at))
        .load(conn)?;
    let given: i64 = rows
        .into_iter()
        .map(|(s, e, released)| {
            let end = released.map_or(e, |x| x.min(e)).max(s);
            crate::domain::bed::stay_days(utc(s), utc(end))
        })
        .sum();
    Ok(asked + given)
}

pub fn get_policy(conn: &mut DbConn, hospital: OrganizationId) -> DbResult<RespitePolicy> {
    #[allow(clippy::type_complexity)]
    let found: Option<(i32, i32, String, Option<i32>, i64)> = rp::respite_policies
        .find(hospital.to_string())
        .select((rp::max_stay_days, rp::min_notice_days, rp::admission_weekdays, rp::yearly_limit_days, rp::version))
        .first(conn)
        .optional()?;
    Ok(match found {
        None => RespitePolicy::default_for(hospital),
        Some((max_stay_days, min_notice_days, days, yearly_limit_days, version)) => RespitePolicy {
            hospital_id: hospital,
            max_stay_days,
            min_notice_days,
            admission_weekdays: from_json("admission_weekdays", &days)?,
            yearly_limit_days,
            version,
        },
    })
}

/// Writes the whole policy (the first write inserts it).
pub fn put_policy(conn: &mut DbConn, p: &RespitePolicy) -> DbResult<()> {
    let current = get_policy(conn, p.hospital_id)?;
    let values = (
        rp::max_stay_days.eq(p.max_stay_days),
        rp::min_notice_days.eq(p.min_notice_days),
        rp::admission_weekdays.eq(to_json(&p.admission_weekdays)?),
        rp::yearly_limit_days.eq(p.yearly_limit_days),
        rp::version.eq(current.version + 1),
        rp::updated_at.eq(now()),
    );
    if current.version == 0 {
        diesel::insert_into(rp::respite_policies)
            .values((rp::hospital_id.eq(p.hospital_id.to_string()), values))
            .execute(conn)?;
    } else {
        diesel::update(rp::respite_policies.find(p.hospital_id.to_string())).set(values).execute(conn)?;
    }
    Ok(())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema::bed_requests)]
struct RequestRow {
    id: String,
    case_id: String,
    patient_id: String,
    hospital_id: String,
    kind: String,
    needs: String,
    starts_at: NaiveDateTime,
    ends_at: Option<NaiveDateTime>,
    reason: String,
    status: String,
    response_due_at: NaiveDateTime,
    requested_by: String,
    previous_request_id: Option<String>,
    decline_reason: Option<String>,
    decline_note: Option<String>,
    disposition: Option<String>,
    answered_by: Option<String>,
    answered_at: Option<NaiveDateTime>,
    version: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl RequestRow {
    fn into_request(self, allocation: Option<Allocation>) -> DbResult<BedRequest> {
        Ok(BedRequest {
            id: id("id", &self.id)?,
            case_id: id("case_id", &self.case_id)?,
            patient_id: id("patient_id", &self.patient_id)?,
            hospital_id: id("hospital_id", &self.hospital_id)?,
            kind: from_code(&self.kind)?,
            needs: from_json("needs", &self.needs)?,
            starts_at: utc(self.starts_at),
            ends_at: self.ends_at.map(utc),
            reason: self.reason,
            status: from_code(&self.status)?,
            response_due_at: utc(self.response_due_at),
            requested_by: self.requested_by,
            previous_request_id: self.previous_request_id.as_deref().map(|x| id("previous", x)).transpose()?,
            bed_id: allocation.as_ref().map(|x| x.bed_id),
            allocation,
            decline_reason: self.decline_reason.as_deref().map(from_code::<DeclineReason>).transpose()?,
            decline_note: self.decline_note,
            disposition: self.disposition.as_deref().map(from_code::<Disposition>).transpose()?,
            answered_by: self.answered_by,
            answered_at: self.answered_at.map(utc),
            alternatives: None,
            version: self.version,
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
        })
    }
}

/// Rows into requests with their allocations, in one more query.
fn render(conn: &mut DbConn, rows: Vec<RequestRow>) -> DbResult<Vec<BedRequest>> {
    const COLUMNS: (a::request_id, a::bed_id, a::starts_at, a::ends_at, a::released_at) =
        (a::request_id, a::bed_id, a::starts_at, a::ends_at, a::released_at);
    #[allow(clippy::type_complexity)]
    let allocs: Vec<(String, String, NaiveDateTime, NaiveDateTime, Option<NaiveDateTime>)> = match rows.as_slice() {
        // One request (every read and change of one): a statement of a fixed shape, kept prepared.
        [one] => native!(conn, |c| a::bed_allocations.filter(a::request_id.eq(&one.id)).select(COLUMNS).load(c))?,
        _ => {
            let ids: Vec<&str> = rows.iter().map(|x| x.id.as_str()).collect();
            a::bed_allocations.filter(a::request_id.eq_any(ids)).select(COLUMNS).load(conn)?
        }
    };
    let mut by_request: HashMap<String, Allocation> = HashMap::new();
    for (req, bed, s, e, released) in allocs {
        let alloc = Allocation {
            bed_id: id("bed_id", &bed)?,
            starts_at: utc(s),
            ends_at: utc(e),
            released_at: released.map(utc),
        };
        by_request.insert(req, alloc);
    }
    rows.into_iter()
        .map(|row| {
            let alloc = by_request.remove(&row.id);
            row.into_request(alloc)
        })
        .collect()
}

/// A new request, with what the server derived.
pub struct NewRequest<'a> {
    pub case_id: CaseId,
    pub patient_id: PatientId,
    pub hospital_id: OrganizationId,
    pub kind: BedKind,
    pub needs: &'a [String],
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub reason: &'a str,
    /// How long the hospital has to answer, from the request's creation.
    pub response_window: chrono::Duration,
    pub requested_by: &'a str,
    pub previous: Option<BedRequestId>,
}

pub fn insert_request(conn: &mut DbConn, n: &NewRequest) -> DbResult<BedRequestId> {
    let new_id = BedRequestId::new();
    let at = now();
    diesel::insert_into(r::bed_requests)
        .values((
            r::id.eq(new_id.to_string()),
            r::case_id.eq(n.case_id.to_string()),
            r::patient_id.eq(n.patient_id.to_string()),
            r::hospital_id.eq(n.hospital_id.to_string()),
            r::kind.eq(to_code(&n.kind)?),
            r::needs.eq(to_json(&n.needs)?),
            r::starts_at.eq(to_db(n.starts_at)),
            r::ends_at.eq(n.ends_at.map(to_db)),
            r::reason.eq(n.reason),
            r::status.eq(to_code(&RequestStatus::Pending)?),
            r::response_due_at.eq(at + n.response_window),
            r::requested_by.eq(n.requested_by),
            r::previous_request_id.eq(n.previous.map(|x| x.to_string())),
            r::version.eq(1_i64),
            r::created_at.eq(at),
            r::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(new_id)
}

pub fn get_request(conn: &mut DbConn, request: BedRequestId) -> DbResult<BedRequest> {
    let row: RequestRow =
        native!(conn, |c| r::bed_requests.find(request.to_string()).select(RequestRow::as_select()).first(c))?;
    render(conn, vec![row])?.pop().ok_or(DbError::NotFound)
}

/// The patient of a request, whoever asks (for the audit row of a refused access).
pub fn patient_of(conn: &mut DbConn, request: BedRequestId) -> DbResult<Option<PatientId>> {
    let found: Option<String> =
        native!(conn, |c| r::bed_requests.find(request.to_string()).select(r::patient_id).first(c).optional())?;
    found.map(|p| id("patient_id", &p)).transpose()
}

type Visible = super::Cond<r::bed_requests>;

/// The hospital's bed managers see requests addressed to it; the case's team and the base's
/// coordinators see the case's requests.
fn branches(scope: &BedScope) -> Vec<Visible> {
    // Only the scope's own conditions: a constant `1 = 0 OR …` in front kept SQLite from
    // using their indexes (a physician's case list walked every case).
    let mut parts: Vec<Visible> = Vec::new();
    if let Some(h) = scope.hospital {
        parts.push(Box::new(r::hospital_id.eq(h.to_string())));
    }
    if let Some(me) = &scope.requester {
        parts.push(Box::new(r::requested_by.eq(me.clone())));
    }
    if let Some(org) = scope.cases.managing_org {
        let managed = c::cases.filter(c::managing_organization_id.eq(org.to_string())).select(c::id);
        parts.push(Box::new(r::case_id.eq_any(managed)));
    }
    if let Some(member) = scope.cases.member {
        parts.push(Box::new(r::case_id.eq_any(super::cases::current_cases_of!(member.to_string()))));
    }
    parts
}

/// A request the scope may read; `NotFound` otherwise. The ways of seeing of [`branches`] tested
/// on the row read by id (the case's through [`super::cases::get_visible`]): statements of a fixed
/// shape, kept prepared, where a boxed `OR` of the branches has its SQL text rebuilt and the
/// statement prepared again at every call. This is the read behind every answer to a request.
pub fn get_visible_request(conn: &mut DbConn, request: BedRequestId, scope: &BedScope) -> DbResult<BedRequest> {
    let row: RequestRow =
        native!(conn, |c| r::bed_requests.find(request.to_string()).select(RequestRow::as_select()).first(c))?;
    let seen = scope.hospital.is_some_and(|h| h.to_string() == row.hospital_id)
        || scope.requester.as_deref() == Some(row.requested_by.as_str())
        || (!scope.cases.is_empty() && {
            // As in the lists' branches, break-glass does not reach bed requests.
            let cases = crate::auth::policy::CaseScope { any: false, ..scope.cases };
            match super::cases::get_visible(conn, id("case_id", &row.case_id)?, &cases) {
                Ok(_) => true,
                Err(DbError::NotFound) => false,
                Err(e) => return Err(e),
            }
        });
    if !seen {
        return Err(DbError::NotFound);
    }
    render(conn, vec![row])?.pop().ok_or(DbError::NotFound)
}

/// What a status change writes besides the status.
#[derive(Debug, Default)]
pub struct Answer {
    pub decline_reason: Option<DeclineReason>,
    pub decline_note: Option<String>,
    pub disposition: Option<Disposition>,
    pub answered_by: Option<String>,
}

/// Compare-and-set on the status: `Ok(false)` when the request is no longer in `from`.
pub fn transition(
    conn: &mut DbConn,
    request: BedRequestId,
    from: RequestStatus,
    to: RequestStatus,
    ans: &Answer,
) -> DbResult<bool> {
    let at = now();
    let target = r::bed_requests.filter(r::id.eq(request.to_string())).filter(r::status.eq(to_code(&from)?));
    // The answer in the same statement, each field kept as it is when the answer has none: one
    // text for every answer (it stays prepared).
    let changed = fixed::<Transition, _>(diesel::update(target).set((
        r::status.eq(to_code(&to)?),
        r::version.eq(r::version + 1),
        r::updated_at.eq(at),
        r::decline_reason.eq(or_kept(r::decline_reason, ans.decline_reason.as_ref().map(to_code).transpose()?)),
        r::decline_note.eq(or_kept(r::decline_note, ans.decline_note.clone())),
        r::disposition.eq(or_kept(r::disposition, ans.disposition.as_ref().map(to_code).transpose()?)),
        r::answered_by.eq(or_kept(r::answered_by, ans.answered_by.clone())),
        r::answered_at.eq(or_kept(r::answered_at, ans.answered_by.as_ref().map(|_| at))),
    )))
    .run(conn)?;
    Ok(changed == 1)
}

/// Cancels the case's pending and accepted requests and gives their beds back (the case
/// closed). Returns the requests cancelled.
pub fn cancel_open_for_case(conn: &mut DbConn, case: CaseId) -> DbResult<Vec<BedRequestId>> {
    // The two open statuses one by one, not as an `IN` list, which diesel parses again each time
    // on SQLite (this runs at every change of a case's status).
    let (pending, accepted) = (to_code(&RequestStatus::Pending)?, to_code(&RequestStatus::Accepted)?);
    let ids: Vec<String> = native!(conn, |c| r::bed_requests
        .filter(r::case_id.eq(case.to_string()))
        .filter(r::status.eq(&pending).or(r::status.eq(&accepted)))
        .select(r::id)
        .load(c))?;
    let at = now();
    let mut cancelled = Vec::new();
    for x in ids {
        let changed = diesel::update(
            r::bed_requests.filter(r::id.eq(&x)).filter(r::status.eq(&pending).or(r::status.eq(&accepted))),
        )
        .set((r::status.eq(to_code(&RequestStatus::Cancelled)?), r::version.eq(r::version + 1), r::updated_at.eq(at)))
        .execute(conn)?;
        if changed == 1 {
            cancelled.push(x);
        }
    }
    let ids = cancelled;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(a::bed_allocations.filter(a::request_id.eq_any(&ids)).filter(a::released_at.is_null()))
        .set(a::released_at.eq(Some(at)))
        .execute(conn)?;
    let mut events = Vec::new();
    for x in &ids {
        events.extend(super::events::for_change(conn, "bed_request.cancel", "bed_request", x)?);
    }
    super::events::emit(conn, events)?;
    ids.iter().map(|x| id("id", x)).collect()
}

/// The request that re-targeted this one, if any.
pub fn successor_of(conn: &mut DbConn, request: BedRequestId) -> DbResult<Option<BedRequestId>> {
    let found: Option<String> =
        r::bed_requests.filter(r::previous_request_id.eq(request.to_string())).select(r::id).first(conn).optional()?;
    found.map(|x| id("id", &x)).transpose()
}

/// Pending requests whose answer is overdue at `at`, oldest first (for the sweeper).
pub fn overdue_pending(conn: &mut DbConn, at: DateTime<Utc>, limit: i64) -> DbResult<Vec<BedRequestId>> {
    let ids: Vec<String> = r::bed_requests
        .filter(r::status.eq(to_code(&RequestStatus::Pending)?))
        .filter(r::response_due_at.le(to_db(at)))
        .order(r::response_due_at.asc())
        .limit(limit)
        .select(r::id)
        .load(conn)?;
    ids.iter().map(|x| id("id", x)).collect()
}

/// Filters of `GET /api/v1/bed-requests`.
#[derive(Debug, Default)]
pub struct Filter {
    pub status: Option<RequestStatus>,
    pub hospital_id: Option<OrganizationId>,
    pub case_id: Option<CaseId>,
}

pub fn list(conn: &mut DbConn, scope: &BedScope, f: &Filter, page: &PageRequest) -> DbResult<Page<BedRequest>> {
    // One query per way of seeing, merged: an `OR` of them can walk every request in id order
    // on PostgreSQL.
    let rows = super::union_pages(
        branches(scope),
        page.fetch_limit(),
        |x: &RequestRow| x.id.clone(),
        |visible| {
            let mut q = r::bed_requests.select(RequestRow::as_select()).filter(visible).into_boxed();
            if let Some(s) = &f.status {
                q = q.filter(r::status.eq(to_code(s)?));
            }
            if let Some(h) = f.hospital_id {
                q = q.filter(r::hospital_id.eq(h.to_string()));
            }
            if let Some(cid) = f.case_id {
                q = q.filter(r::case_id.eq(cid.to_string()));
            }
            if let Some(after) = &page.after {
                q = q.filter(r::id.gt(after.clone()));
            }
            Ok(q.order(r::id.asc()).limit(page.fetch_limit()).load::<RequestRow>(conn)?)
        },
    )?;
    let items = render(conn, rows)?;
    Ok(page.finish(items, |x| x.id.to_string()))
}
