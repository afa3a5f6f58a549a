//! The transactional outbox (issue 7): every state change writes its events in its own
//! transaction. They are numbered under the `event_head` row lock, held until commit, so that the
//! feed's order is the order in which numbers were committed, without gaps: at once on SQLite,
//! by the sequencer on PostgreSQL (`sequence_pending`). Webhook deliveries are written when an
//! event is numbered.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::schema::event_head::dsl as head;
use super::schema::event_outbox::dsl as o;
use super::schema::events::dsl as e;
use super::schema::webhook_deliveries::dsl as d;
use super::schema::webhooks::dsl as w;
use super::{
    care_team, cases, fixed, from_json, id, native, now, registrations, screenings, to_json, utc, DbConn, DbResult,
};
use crate::domain::ids::{CaseId, OrganizationId, PractitionerId};

/// An event as the feed and webhooks answer it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    pub seq: i64,
    pub id: String,
    /// e.g. `case.activated`, `bed_request.accepted`.
    #[serde(rename = "type")]
    pub kind: String,
    pub resource_type: String,
    pub resource_id: String,
    pub case_id: Option<CaseId>,
    pub occurred_at: DateTime<Utc>,
    /// The resource's new state.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// An event to write.
#[derive(Clone)]
pub struct NewEvent {
    pub kind: &'static str,
    pub resource_type: &'static str,
    pub resource_id: String,
    pub case_id: Option<CaseId>,
    /// The base or managing organization (its coordinators see the event).
    pub org_a: Option<OrganizationId>,
    /// The hospital (its staff see the event).
    pub org_b: Option<OrganizationId>,
    pub data: serde_json::Value,
}

/// The event type of a change recorded in the access log as `action`, if it is one.
pub fn type_of(action: &str) -> Option<&'static str> {
    Some(match action {
        "case.create" => "case.created",
        "case.update" => "case.updated",
        "case.activate" => "case.activated",
        "case.hold" => "case.held",
        "case.resume" => "case.resumed",
        "case.close" => "case.closed",
        "case.cancel" => "case.cancelled",
        "care_team.add" | "care_team.end" | "care_team.primary" | "care_team.secondary" | "care_team.secondary_end" => {
            "care_team.changed"
        }
        "screening.create" => "screening.created",
        "screening.update" => "screening.updated",
        "screening.submit" => "screening.submitted",
        "screening.accept" => "screening.accepted",
        "screening.decline" => "screening.declined",
        "screening.withdraw" => "screening.withdrawn",
        "screening.revise" => "screening.superseded",
        "screening.milestone" => "screening.milestone_recorded",
        "registration.create" => "registration.requested",
        "registration.activate" => "registration.activated",
        "registration.reject" => "registration.rejected",
        "registration.withdraw" => "registration.withdrawn",
        "registration.exchange" => "registration.exchange_recorded",
        "bed_request.create" => "bed_request.created",
        "bed_request.accept" => "bed_request.accepted",
        "bed_request.decline" => "bed_request.declined",
        "bed_request.cancel" => "bed_request.cancelled",
        "bed_request.expire" => "bed_request.expired",
        "bed_request.admit" => "bed_request.admitted",
        "bed_request.discharge" => "bed_request.discharged",
        "bed_request.retarget" => "bed_request.retargeted",
        _ => return None,
    })
}

/// Every event type, for validating subscriptions and filters.
pub const TYPES: [&str; 29] = [
    "case.created",
    "case.updated",
    "case.activated",
    "case.held",
    "case.resumed",
    "case.closed",
    "case.cancelled",
    "care_team.changed",
    "screening.created",
    "screening.updated",
    "screening.submitted",
    "screening.accepted",
    "screening.declined",
    "screening.withdrawn",
    "screening.superseded",
    "screening.milestone_recorded",
    "registration.requested",
    "registration.activated",
    "registration.rejected",
    "registration.withdrawn",
    "registration.exchange_recorded",
    "bed_request.created",
    "bed_request.accepted",
    "bed_request.declined",
    "bed_request.cancelled",
    "bed_request.expired",
    "bed_request.admitted",
    "bed_request.discharged",
    "bed_request.retargeted",
];

fn json<T: Serialize>(v: &T) -> DbResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|x| super::DbError::Other(x.to_string()))
}

/// The event of a change the access log records (`action` on `resource_type`/`resource_id`),
/// with the resource as it is now, inside the change's transaction. `None`: not an event.
pub fn for_change(
    conn: &mut DbConn,
    action: &str,
    resource_type: &str,
    resource_id: &str,
) -> DbResult<Option<NewEvent>> {
    let Some(kind) = type_of(action) else { return Ok(None) };
    let event = match resource_type {
        "case" => {
            let case = cases::get(conn, id("case", resource_id)?)?;
            let data = if kind == "care_team.changed" {
                serde_json::json!({ "case_id": case.id, "members": json(&care_team::list(conn, case.id, Some(Utc::now()))?)? })
            } else {
                json(&case)?
            };
            NewEvent {
                kind,
                resource_type: if kind == "care_team.changed" { "care_team" } else { "case" },
                resource_id: resource_id.to_owned(),
                case_id: Some(case.id),
                org_a: Some(case.managing_organization_id),
                org_b: None,
                data,
            }
        }
        "screening" => {
            let sheet = screenings::get_sheet(conn, id("screening", resource_id)?)?;
            NewEvent {
                kind,
                resource_type: "screening",
                resource_id: resource_id.to_owned(),
                case_id: sheet.case_id,
                // The base hears of a sheet once it was sent (drafts are the hospital's).
                org_a: sheet.submitted_at.map(|_| sheet.base_organization_id),
                org_b: Some(sheet.hospital_id),
                data: json(&sheet)?,
            }
        }
        "bed_request" => {
            let req = super::beds::get_request(conn, id("bed_request", resource_id)?)?;
            let case = cases::get(conn, req.case_id)?;
            NewEvent {
                kind,
                resource_type: "bed_request",
                resource_id: resource_id.to_owned(),
                case_id: Some(req.case_id),
                org_a: Some(case.managing_organization_id),
                org_b: Some(req.hospital_id),
                data: json(&req)?,
            }
        }
        "backup_registration" => {
            let reg = registrations::get(conn, id("registration", resource_id)?)?;
            let case = cases::get(conn, reg.case_id)?;
            NewEvent {
                kind,
                resource_type: "backup_registration",
                resource_id: resource_id.to_owned(),
                case_id: Some(reg.case_id),
                org_a: Some(case.managing_organization_id),
                org_b: Some(reg.hospital_id),
                data: json(&reg)?,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}

/// Writes events in the caller's transaction. On SQLite they are numbered at once (the one
/// writer serialises transactions, so seq order is commit order); on PostgreSQL they wait in
/// `event_outbox` for [`sequence_pending`], so that changes do not queue on the feed's head lock.
pub fn emit(conn: &mut DbConn, events: Vec<NewEvent>) -> DbResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let at = now();
    let rows = events
        .into_iter()
        .map(|ev| {
            Ok(Stored {
                id: uuid::Uuid::now_v7().to_string(),
                kind: ev.kind.to_owned(),
                resource_type: ev.resource_type.to_owned(),
                resource_id: ev.resource_id,
                case_id: ev.case_id.map(|c| c.to_string()),
                org_a: ev.org_a.map(|o| o.to_string()),
                org_b: ev.org_b.map(|o| o.to_string()),
                occurred_at: at,
                data: to_json(&ev.data)?,
            })
        })
        .collect::<DbResult<Vec<_>>>()?;
    match conn {
        DbConn::Sqlite(_) => number(conn, rows),
        // Row by row with every column bound (see `audit::append`): a statement PostgreSQL keeps
        // prepared, for the one or two events of a change.
        DbConn::Pg(pg) => {
            for r in &rows {
                diesel::insert_into(o::event_outbox)
                    .values((
                        o::id.eq(&r.id),
                        o::kind.eq(&r.kind),
                        o::resource_type.eq(&r.resource_type),
                        o::resource_id.eq(&r.resource_id),
                        o::case_id.eq(&r.case_id),
                        o::org_a.eq(&r.org_a),
                        o::org_b.eq(&r.org_b),
                        o::occurred_at.eq(r.occurred_at),
                        o::data.eq(&r.data),
                    ))
                    .execute(pg)?;
            }
            Ok(())
        }
    }
}

/// An event as stored, before it has its number.
#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema::event_outbox)]
struct Stored {
    id: String,
    kind: String,
    resource_type: String,
    resource_id: String,
    case_id: Option<String>,
    org_a: Option<String>,
    org_b: Option<String>,
    occurred_at: NaiveDateTime,
    data: String,
}

/// The newest waiting event, if any.
pub fn last_pending(conn: &mut DbConn) -> DbResult<Option<i64>> {
    Ok(o::event_outbox.select(o::pending_id).order(o::pending_id.desc()).first(conn).optional()?)
}

/// Numbers up to `max` waiting events numbered at most `upto`, oldest first, with their webhook deliveries, inside the
/// caller's transaction; returns how many. The head lock comes before the read, as in
/// `audit::chain_pending`.
pub fn sequence_pending(conn: &mut DbConn, max: i64, upto: i64) -> DbResult<usize> {
    let waiting = o::event_outbox.select(o::pending_id).filter(o::pending_id.le(upto)).order(o::pending_id.asc());
    if waiting.first::<i64>(conn).optional()?.is_none() {
        return Ok(0);
    }
    diesel::update(head::event_head.find(1)).set(head::last_seq.eq(head::last_seq)).execute(conn)?;
    let rows: Vec<(i64, Stored)> = o::event_outbox
        .select((o::pending_id, Stored::as_select()))
        .filter(o::pending_id.le(upto))
        .order(o::pending_id.asc())
        .limit(max)
        .load(conn)?;
    let n = rows.len();
    if n == 0 {
        return Ok(0);
    }
    let (ids, rows): (Vec<i64>, Vec<Stored>) = rows.into_iter().unzip();
    number(conn, rows)?;
    diesel::delete(o::event_outbox.filter(o::pending_id.eq_any(ids))).execute(conn)?;
    Ok(n)
}

/// Numbers events after every event numbered before, under the head row's lock (held until
/// commit), with a pending delivery for every active webhook of an organization that sees them.
fn number(conn: &mut DbConn, events: Vec<Stored>) -> DbResult<()> {
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    super::statements!(MoveHead, EventInsert, DeliveryInsert);
    fixed::<MoveHead, _>(diesel::update(head::event_head.find(1)).set(head::last_seq.eq(head::last_seq + n)))
        .run(conn)?;
    let last: i64 = native!(conn, |c| head::event_head.find(1).select(head::last_seq).first(c))?;
    let mut orgs: Vec<String> =
        events.iter().flat_map(|x| [x.org_a.clone(), x.org_b.clone()]).flatten().collect::<Vec<_>>();
    orgs.sort();
    orgs.dedup();
    #[allow(clippy::type_complexity)]
    let mut hooks: Vec<(String, String, String, bool, String)> = Vec::new();
    match conn {
        // The sequencer numbers up to a thousand events at once: one statement for all their
        // organizations (`= ANY($1)`, one array bound, which PostgreSQL keeps prepared).
        DbConn::Pg(c) => {
            if !orgs.is_empty() {
                hooks = w::webhooks
                    .filter(w::active.eq(true))
                    .filter(w::organization_id.eq_any(orgs))
                    .select((w::id, w::organization_id, w::types, w::sees_org_a, w::org_b_types))
                    .load(c)?;
            }
        }
        // A change numbers its one or two events: one statement per organization, not SQLite's
        // `IN (?, ?)`, whose text changes with the list and which diesel parses again each time.
        DbConn::Sqlite(c) => {
            for org in orgs {
                hooks.extend(
                    w::webhooks
                        .filter(w::active.eq(true))
                        .filter(w::organization_id.eq(&org))
                        .select((w::id, w::organization_id, w::types, w::sees_org_a, w::org_b_types))
                        .load::<(String, String, String, bool, String)>(c)?,
                );
            }
        }
    }
    let at = now();
    let mut rows = Vec::with_capacity(events.len());
    let mut deliveries = Vec::new();
    for (i, ev) in events.into_iter().enumerate() {
        let seq = last - n + 1 + i64::try_from(i).unwrap_or(0);
        for (hook, org, types, sees_a, b_types) in &hooks {
            // A subscription whose stored lists cannot be read is skipped (and said so), rather
            // than stopping the numbering of every event.
            let (Ok(types), Ok(b_types)) = (
                from_json::<Vec<String>>("webhook types", types),
                from_json::<Vec<String>>("webhook org_b_types", b_types),
            ) else {
                tracing::error!(webhook = %hook, "a webhook's stored types cannot be read; no delivery written");
                continue;
            };
            let wanted = types.iter().any(|t| t == "*" || *t == ev.kind);
            // The same rule as the feed, for the roles the subscriber had.
            let sees = (*sees_a && ev.org_a.as_ref() == Some(org))
                || (ev.org_b.as_ref() == Some(org) && b_types.contains(&ev.resource_type));
            if wanted && sees {
                deliveries.push((
                    d::id.eq(uuid::Uuid::now_v7().to_string()),
                    d::webhook_id.eq(hook.clone()),
                    d::event_seq.eq(seq),
                    d::status.eq("pending"),
                    d::attempts.eq(0),
                    d::next_attempt_at.eq(at),
                    d::created_at.eq(at),
                    d::updated_at.eq(at),
                ));
            }
        }
        rows.push((
            e::seq.eq(seq),
            e::id.eq(ev.id),
            e::kind.eq(ev.kind),
            e::resource_type.eq(ev.resource_type),
            e::resource_id.eq(ev.resource_id),
            e::case_id.eq(ev.case_id),
            e::org_a.eq(ev.org_a),
            e::org_b.eq(ev.org_b),
            e::occurred_at.eq(ev.occurred_at),
            e::data.eq(ev.data),
        ));
    }
    match conn {
        // One multi-row INSERT per table and batch (the sequencer numbers up to a few hundred at
        // once): a round trip per row is what PostgreSQL must not be asked for.
        DbConn::Pg(pg) => {
            for chunk in chunks(rows) {
                diesel::insert_into(e::events).values(chunk).execute(pg)?;
            }
            for chunk in chunks(deliveries) {
                diesel::insert_into(d::webhook_deliveries).values(chunk).execute(pg)?;
            }
        }
        // SQLite numbers each change's one or two events as it commits.
        DbConn::Sqlite(_) => {
            for row in rows {
                fixed::<EventInsert, _>(diesel::insert_into(e::events).values(row)).run(conn)?;
            }
            for row in deliveries {
                fixed::<DeliveryInsert, _>(diesel::insert_into(d::webhook_deliveries).values(row)).run(conn)?;
            }
        }
    }
    Ok(())
}

/// `rows` in owned pieces small enough for one statement's bound parameters.
fn chunks<T>(mut rows: Vec<T>) -> Vec<Vec<T>> {
    const ROWS: usize = 500;
    let mut out = Vec::new();
    while rows.len() > ROWS {
        let rest = rows.split_off(ROWS);
        out.push(std::mem::replace(&mut rows, rest));
    }
    if !rows.is_empty() {
        out.push(rows);
    }
    out
}

/// Who sees which events: the organization's coordinators see those of its cases and the sheets
/// sent to it (org_a), a hospital's staff those addressed to it (org_b), a team member those of
/// the cases they are on now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventScope {
    pub org_a: Option<OrganizationId>,
    pub org_b: Option<OrganizationId>,
    /// The resource types the hospital's staff see (their role's).
    pub org_b_types: Vec<&'static str>,
    pub member: Option<PractitionerId>,
}

impl EventScope {
    pub fn is_empty(&self) -> bool {
        self.org_a.is_none() && self.org_b.is_none() && self.member.is_none()
    }
}

type Visible = super::Cond<e::events>;

/// The ways the scope sees events, one condition each (none when it sees nothing). Only the
/// scope's own: a constant `1 = 0 OR …` in front kept SQLite from using their indexes.
fn branches(scope: &EventScope) -> Vec<Visible> {
    let mut parts: Vec<Visible> = Vec::new();
    if let Some(o) = scope.org_a {
        parts.push(Box::new(e::org_a.assume_not_null().eq(o.to_string())));
    }
    if let Some(o) = scope.org_b {
        let types: Vec<String> = scope.org_b_types.iter().map(|t| (*t).to_owned()).collect();
        parts.push(Box::new(e::org_b.assume_not_null().eq(o.to_string()).and(e::resource_type.eq_any(types))));
    }
    if let Some(m) = scope.member {
        parts.push(Box::new(e::case_id.assume_not_null().eq_any(super::cases::current_cases_of!(m.to_string()))));
    }
    parts
}

#[derive(Queryable)]
struct Row {
    seq: i64,
    id: String,
    kind: String,
    resource_type: String,
    resource_id: String,
    case_id: Option<String>,
    occurred_at: NaiveDateTime,
    data: String,
}

impl Row {
    fn into_event(self) -> DbResult<Event> {
        Ok(Event {
            seq: self.seq,
            id: self.id,
            kind: self.kind,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            case_id: self.case_id.as_deref().map(|c| id("case_id", c)).transpose()?,
            occurred_at: utc(self.occurred_at),
            data: from_json("event data", &self.data)?,
        })
    }
}

const COLUMNS: (e::seq, e::id, e::kind, e::resource_type, e::resource_id, e::case_id, e::occurred_at, e::data) =
    (e::seq, e::id, e::kind, e::resource_type, e::resource_id, e::case_id, e::occurred_at, e::data);

/// The scope's events after `after`, in sequence order. One query per way of seeing (the
/// organization's, the partner organization's, the practitioner's teams), each in sequence order
/// from the cursor, merged: an `OR` of them kept PostgreSQL off their indexes, walking every
/// event after the cursor (all of them, for a client starting from 0).
pub fn list(conn: &mut DbConn, scope: &EventScope, after: i64, types: &[String], limit: i64) -> DbResult<Vec<Event>> {
    let rows = super::union_pages(
        branches(scope),
        limit,
        |r: &Row| r.seq,
        |visible| {
            let mut q = e::events.select(COLUMNS).filter(e::seq.gt(after)).filter(visible).into_boxed();
            if !types.is_empty() {
                q = q.filter(e::kind.eq_any(types.to_vec()));
            }
            Ok(q.order(e::seq.asc()).limit(limit).load::<Row>(conn)?)
        },
    )?;
    rows.into_iter().map(Row::into_event).collect()
}

/// One event by sequence number (for webhook deliveries).
pub fn get(conn: &mut DbConn, seq: i64) -> DbResult<Event> {
    let row: Row = e::events.find(seq).select(COLUMNS).first(conn)?;
    row.into_event()
}
