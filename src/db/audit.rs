//! Storage of the access log: appends under the chain-head lock, filtered reads, verification.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::audit_actor_keys::dsl as ak;
use super::schema::audit_chain::dsl as head;
use super::schema::audit_events::dsl as a;
use super::schema::audit_patient_keys::dsl as pk;
use super::schema::audit_pending::dsl as ap;
use super::{fixed, from_code, from_json, native, to_code, to_json, utc, DbConn, DbError, DbResult};
use crate::domain::audit::{chain_hash, first_broken, Entry, Event, Purpose, GENESIS};
use crate::domain::time::to_db;

#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema::audit_events)]
struct Row {
    seq: i64,
    id: String,
    at: chrono::NaiveDateTime,
    request_id: String,
    actor_sub: String,
    actor_org: String,
    actor_roles: String,
    client_id: Option<String>,
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    patient_id: Option<String>,
    outcome: String,
    status: i32,
    purpose: String,
    reason: Option<String>,
    prev_hash: String,
    hash: String,
}

impl TryFrom<Row> for Event {
    type Error = DbError;
    fn try_from(r: Row) -> DbResult<Self> {
        Ok(Event {
            seq: r.seq,
            entry: Entry {
                id: r.id,
                at: utc(r.at),
                request_id: r.request_id,
                actor_sub: r.actor_sub,
                actor_org: r.actor_org,
                actor_roles: from_json("actor_roles", &r.actor_roles)?,
                client_id: r.client_id,
                action: r.action,
                resource_type: r.resource_type,
                resource_id: r.resource_id,
                patient_id: r.patient_id,
                outcome: from_code(&r.outcome)?,
                status: u16::try_from(r.status).unwrap_or(0),
                purpose: from_code(&r.purpose)?,
                reason: r.reason,
            },
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
    }
}

/// Every column bound, `NULL` included, so that one row's `INSERT` has one text ([`super::fixed`]).
#[derive(Insertable)]
#[diesel(table_name = super::schema::audit_events, treat_none_as_default_value = false)]
struct NewRow<'a> {
    seq: i64,
    id: &'a str,
    at: chrono::NaiveDateTime,
    request_id: &'a str,
    actor_sub: &'a str,
    actor_org: &'a str,
    actor_roles: String,
    client_id: Option<&'a str>,
    action: &'a str,
    resource_type: &'a str,
    resource_id: Option<&'a str>,
    patient_id: Option<&'a str>,
    outcome: String,
    status: i32,
    purpose: String,
    reason: Option<&'a str>,
    prev_hash: String,
    hash: String,
}

/// Appends entries to the access log inside the caller's transaction, so that they commit (or
/// not) with what they record. On SQLite they are chained at once: the one writer already
/// serialises transactions. On PostgreSQL they wait in `audit_pending` for [`chain_pending`] (or
/// for the access log's writer, [`append_chained`]): chaining here would hold the head row's
/// lock to commit and let one change commit at a time.
#[tracing::instrument(skip_all, fields(n = entries.len()))]
pub fn append(conn: &mut DbConn, key: &[u8], entries: &[&Entry]) -> DbResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    match conn {
        DbConn::Sqlite(_) => chain(conn, key, entries),
        // A change's one row: a statement of one text, which PostgreSQL keeps prepared (a
        // multi-row INSERT's text changes with its length and is planned again at each call).
        DbConn::Pg(_) if entries.len() == 1 => {
            let row = pending_row(entries[0])?;
            fixed::<PendingInsert, _>(diesel::insert_into(ap::audit_pending).values(&row)).run(conn)?;
            Ok(())
        }
        DbConn::Pg(pg) => {
            let rows = entries.iter().map(|e| pending_row(e)).collect::<DbResult<Vec<_>>>()?;
            for chunk in rows.chunks(1000) {
                diesel::insert_into(ap::audit_pending).values(chunk).execute(pg)?;
            }
            Ok(())
        }
    }
}

/// Appends the rows of accesses that belong to no change's transaction (reads, and changes that
/// failed) straight into the chain, inside the caller's transaction: on both backends they are
/// chained at once, with no pass through `audit_pending` (on PostgreSQL that pass cost an insert,
/// a read and a delete per row, besides the chaining). On PostgreSQL the head lock is then held
/// to commit, as the sequencer holds it: the access log's writer is one thread per instance and
/// commits every waiting row at once, so the lock is taken once per batch, not once per read;
/// the batches of several instances commit one after another.
///
/// The changes' rows still waiting for the sequencer are chained first (up to 1,000), so that an
/// access is never chained before a change it saw: that change committed, pending row included,
/// before the access read anything. Beyond 1,000 waiting rows (a backlog: the sequencer behind,
/// or failing) the rest stay for the sequencer and that order is not kept. The waiting rows are
/// chained in a savepoint: if they cannot be (a row that does not decode), they are left to the
/// sequencer, which logs its failure, and the batch's own rows are chained all the same, so
/// that reads never wait on a bad row of somebody else's.
///
/// On PostgreSQL a batch with nothing waiting costs five round trips: `BEGIN`, the head locked
/// and read (with whether rows wait) in one statement, the rows' `INSERT`, the head's move, the
/// commit.
#[tracing::instrument(skip_all, fields(n = entries.len()))]
pub fn append_chained(conn: &mut DbConn, key: &[u8], entries: &[&Entry]) -> DbResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut head = lock_head(conn)?;
    if head.waiting {
        let before = head.clone();
        match conn.transaction(|c| move_pending(c, key, before, PENDING_BATCH, i64::MAX)) {
            Ok((after, _)) => head = after,
            Err(e) => tracing::warn!(error = %e, "waiting access-log rows could not be chained; left to the sequencer"),
        }
    }
    chain_after(conn, key, head, entries)?;
    Ok(())
}

/// Most waiting rows a batch of [`append_chained`] takes along (the sequencer's batch).
const PENDING_BATCH: i64 = 1000;

// The statements kept prepared ([`super::fixed`]).
super::statements!(RowInsert, PendingInsert, LockHead, LockReadHead, MoveHead);

/// The chain's head, locked until the transaction ends.
#[derive(Clone)]
struct Head {
    seq: i64,
    hash: String,
    /// Whether rows wait in `audit_pending` (PostgreSQL; as of the statement's start). Always
    /// false on SQLite, where nothing waits.
    waiting: bool,
}

/// Locks the head row (a no-op update) and reads it; the read sees the latest committed head.
/// On PostgreSQL its row lock serialises chaining from every instance until commit.
fn lock_head(conn: &mut DbConn) -> DbResult<Head> {
    let lock = diesel::update(head::audit_chain.find(1)).set(head::last_seq.eq(head::last_seq));
    match conn {
        // One round trip: the lock, the head and whether rows wait.
        DbConn::Pg(pg) => {
            let (seq, hash, waiting) = fixed::<LockReadHead, _>(lock.returning((
                head::last_seq,
                head::last_hash,
                diesel::dsl::sql::<diesel::sql_types::Bool>("EXISTS (SELECT 1 FROM audit_pending)"),
            )))
            .get_result(pg)?;
            Ok(Head { seq, hash, waiting })
        }
        DbConn::Sqlite(_) => {
            fixed::<LockHead, _>(lock).run(conn)?;
            let (seq, hash) =
                native!(conn, |c| head::audit_chain.find(1).select((head::last_seq, head::last_hash)).first(c))?;
            Ok(Head { seq, hash, waiting: false })
        }
    }
}

/// Chains entries after the head, in order (a change's rows on SQLite).
fn chain(conn: &mut DbConn, key: &[u8], entries: &[&Entry]) -> DbResult<()> {
    let head = lock_head(conn)?;
    chain_after(conn, key, head, entries)?;
    Ok(())
}

/// Chains entries after `head`, locked by the caller, and moves the head past them; returns the
/// new head.
fn chain_after(conn: &mut DbConn, key: &[u8], head: Head, entries: &[&Entry]) -> DbResult<Head> {
    let (mut seq, mut prev) = (head.seq, head.hash);
    let mut rows = Vec::with_capacity(entries.len());
    for e in entries {
        seq += 1;
        let hash = chain_hash(key, seq, e, &prev);
        rows.push(NewRow {
            seq,
            id: &e.id,
            at: to_db(e.at),
            request_id: &e.request_id,
            actor_sub: &e.actor_sub,
            actor_org: &e.actor_org,
            actor_roles: to_json(&e.actor_roles)?,
            client_id: e.client_id.as_deref(),
            action: &e.action,
            resource_type: &e.resource_type,
            resource_id: e.resource_id.as_deref(),
            patient_id: e.patient_id.as_deref(),
            outcome: to_code(&e.outcome)?,
            status: i32::from(e.status),
            purpose: to_code(&e.purpose)?,
            reason: e.reason.as_deref(),
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
    }
    match conn {
        // One multi-row INSERT per batch: a round trip per row is what a batch must not cost.
        DbConn::Pg(pg) => {
            for chunk in rows.chunks(1000) {
                diesel::insert_into(a::audit_events).values(chunk).execute(pg)?;
            }
        }
        // In-process: a statement per row costs microseconds.
        DbConn::Sqlite(_) => {
            for row in &rows {
                fixed::<RowInsert, _>(diesel::insert_into(a::audit_events).values(row)).run(conn)?;
            }
        }
    }
    fixed::<MoveHead, _>(
        diesel::update(head::audit_chain.find(1)).set((head::last_seq.eq(seq), head::last_hash.eq(&prev))),
    )
    .run(conn)?;
    Ok(Head { seq, hash: prev, waiting: false })
}

/// Every column bound, `NULL` included, so that one row's `INSERT` has one text ([`super::fixed`]).
#[derive(Insertable)]
#[diesel(table_name = super::schema::audit_pending, treat_none_as_default_value = false)]
struct NewPending<'a> {
    id: &'a str,
    at: chrono::NaiveDateTime,
    request_id: &'a str,
    actor_sub: &'a str,
    actor_org: &'a str,
    actor_roles: String,
    client_id: Option<&'a str>,
    action: &'a str,
    resource_type: &'a str,
    resource_id: Option<&'a str>,
    patient_id: Option<&'a str>,
    outcome: String,
    status: i32,
    purpose: String,
    reason: Option<&'a str>,
}

fn pending_row(e: &Entry) -> DbResult<NewPending<'_>> {
    Ok(NewPending {
        id: &e.id,
        at: to_db(e.at),
        request_id: &e.request_id,
        actor_sub: &e.actor_sub,
        actor_org: &e.actor_org,
        actor_roles: to_json(&e.actor_roles)?,
        client_id: e.client_id.as_deref(),
        action: &e.action,
        resource_type: &e.resource_type,
        resource_id: e.resource_id.as_deref(),
        patient_id: e.patient_id.as_deref(),
        outcome: to_code(&e.outcome)?,
        status: i32::from(e.status),
        purpose: to_code(&e.purpose)?,
        reason: e.reason.as_deref(),
    })
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema::audit_pending)]
struct PendingRow {
    pending_id: i64,
    id: String,
    at: chrono::NaiveDateTime,
    request_id: String,
    actor_sub: String,
    actor_org: String,
    actor_roles: String,
    client_id: Option<String>,
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    patient_id: Option<String>,
    outcome: String,
    status: i32,
    purpose: String,
    reason: Option<String>,
}

impl PendingRow {
    fn into_entry(self) -> DbResult<(i64, Entry)> {
        Ok((
            self.pending_id,
            Entry {
                id: self.id,
                at: utc(self.at),
                request_id: self.request_id,
                actor_sub: self.actor_sub,
                actor_org: self.actor_org,
                actor_roles: from_json("actor_roles", &self.actor_roles)?,
                client_id: self.client_id,
                action: self.action,
                resource_type: self.resource_type,
                resource_id: self.resource_id,
                patient_id: self.patient_id,
                outcome: from_code(&self.outcome)?,
                status: u16::try_from(self.status).unwrap_or(0),
                purpose: from_code(&self.purpose)?,
                reason: self.reason,
            },
        ))
    }
}

/// The newest waiting row, if any (what a reader must see chained before it reads).
pub fn last_pending(conn: &mut DbConn) -> DbResult<Option<i64>> {
    Ok(ap::audit_pending.select(ap::pending_id).order(ap::pending_id.desc()).first(conn).optional()?)
}

/// Chains up to `max` waiting rows numbered at most `upto`, oldest first, inside the caller's transaction; returns how
/// many. The head lock is taken before the rows are read: a sequencer that waited for another
/// one reads only what that one left (each statement sees what committed before it).
pub fn chain_pending(conn: &mut DbConn, key: &[u8], max: i64, upto: i64) -> DbResult<usize> {
    // Asked at every poll of the sequencer and every catch-up: kept prepared.
    let waiting: Option<i64> = native!(conn, |c| ap::audit_pending
        .select(ap::pending_id)
        .filter(ap::pending_id.le(upto))
        .order(ap::pending_id.asc())
        .first(c)
        .optional())?;
    if waiting.is_none() {
        return Ok(0);
    }
    let head = lock_head(conn)?;
    Ok(move_pending(conn, key, head, max, upto)?.1)
}

/// Chains up to `max` waiting rows numbered at most `upto`, oldest first, after `head` (locked by
/// the caller) and removes them; returns the new head and how many moved. The rows are read
/// after the head lock is taken: a batch that waited for another one reads only what that one
/// left.
fn move_pending(conn: &mut DbConn, key: &[u8], head: Head, max: i64, upto: i64) -> DbResult<(Head, usize)> {
    let rows: Vec<PendingRow> = ap::audit_pending
        .select(PendingRow::as_select())
        .filter(ap::pending_id.le(upto))
        .order(ap::pending_id.asc())
        .limit(max)
        .load(conn)?;
    if rows.is_empty() {
        return Ok((head, 0));
    }
    let moved = rows.into_iter().map(PendingRow::into_entry).collect::<DbResult<Vec<_>>>()?;
    let entries: Vec<&Entry> = moved.iter().map(|(_, e)| e).collect();
    let after = chain_after(conn, key, head, &entries)?;
    let ids: Vec<i64> = moved.iter().map(|(id, _)| *id).collect();
    diesel::delete(ap::audit_pending.filter(ap::pending_id.eq_any(ids))).execute(conn)?;
    Ok((after, moved.len()))
}

/// Filters of `GET /api/v1/audit-events`.
#[derive(Debug, Default)]
pub struct Filter {
    pub patient_id: Option<String>,
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub purpose: Option<Purpose>,
    pub action: Option<String>,
}

/// The filters on the log's own columns, applied to a boxed query that reads `audit_events`
/// (alone or joined with a key table). The patient and the actor are checked on the row itself
/// also where a key table found it.
macro_rules! filtered {
    ($q:expr, $filter:expr) => {{
        let (mut q, filter) = ($q, $filter);
        if let Some(p) = &filter.patient_id {
            q = q.filter(a::patient_id.eq(p.clone()));
        }
        if let Some(actor) = &filter.actor {
            q = q.filter(a::actor_sub.eq(actor.clone()));
        }
        if let Some(from) = filter.from {
            q = q.filter(a::at.ge(to_db(from)));
        }
        if let Some(to) = filter.to {
            q = q.filter(a::at.lt(to_db(to)));
        }
        if let Some(purpose) = filter.purpose {
            // Written as a literal, not bound: the planners use the index of break-glass rows only
            // (migration 000017) when they can see the value the query asks for.
            q = q.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(match purpose {
                Purpose::Normal => "audit_events.purpose = 'normal'",
                Purpose::BreakGlass => "audit_events.purpose = 'break_glass'",
            }));
        }
        if let Some(action) = &filter.action {
            q = q.filter(a::action.eq(action.clone()));
        }
        q
    }};
}

/// Events oldest first, after `after_seq`, at most `limit` (the caller asks for one more than
/// a page). By patient or by actor: the rows that have their keys through the key tables, then
/// the tail after the keys' head by `seq` (`audit_keys`). The head is read once and bounds both,
/// so a pass that moves it meanwhile neither repeats a row nor skips one.
#[tracing::instrument(skip(conn))]
pub fn list(conn: &mut DbConn, filter: &Filter, after_seq: Option<i64>, limit: i64) -> DbResult<Vec<Event>> {
    let after = after_seq.unwrap_or(0);
    if filter.patient_id.is_none() && filter.actor.is_none() {
        let q = filtered!(a::audit_events.select(Row::as_select()).into_boxed(), filter);
        let rows: Vec<Row> = q.filter(a::seq.gt(after)).order(a::seq.asc()).limit(limit).load(conn)?;
        return rows.into_iter().map(Event::try_from).collect();
    }
    // The log as it is now, up to the chain's head: bounded on both sides, the tail is a range of
    // `seq` that SQLite's planner prefers to the index by time even when `from` and `to` are set
    // (open-ended, it took the index by time and sorted the whole window).
    let (keyed, last) = super::audit_keys::heads(conn)?;
    let tail = |conn: &mut DbConn, after: i64, limit: i64| -> DbResult<Vec<Row>> {
        let q = filtered!(a::audit_events.select(Row::as_select()).into_boxed(), filter);
        Ok(q.filter(a::seq.gt(after)).filter(a::seq.le(last)).order(a::seq.asc()).limit(limit).load(conn)?)
    };
    let mut rows: Vec<Row> = if after >= keyed {
        Vec::new()
    } else if let Some(p) = &filter.patient_id {
        let q = pk::audit_patient_keys
            .inner_join(a::audit_events)
            .filter(pk::patient_id.eq(p.clone()))
            .filter(pk::seq.gt(after))
            .filter(pk::seq.le(keyed))
            .select(Row::as_select())
            .into_boxed();
        filtered!(q, filter).order(pk::seq.asc()).limit(limit).load(conn)?
    } else {
        let actor = filter.actor.clone().unwrap_or_default();
        let q = ak::audit_actor_keys
            .inner_join(a::audit_events)
            .filter(ak::actor_sub.eq(actor))
            .filter(ak::seq.gt(after))
            .filter(ak::seq.le(keyed))
            .select(Row::as_select())
            .into_boxed();
        filtered!(q, filter).order(ak::seq.asc()).limit(limit).load(conn)?
    };
    let short = limit - rows.len() as i64;
    if short > 0 {
        rows.extend(tail(conn, after.max(keyed), short)?);
    }
    rows.into_iter().map(Event::try_from).collect()
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub intact: bool,
    /// Rows checked.
    pub checked: i64,
    /// The first row whose link is broken (or the position of a missing row).
    pub first_broken_seq: Option<i64>,
    /// The head's idea of the last row, to detect rows removed from the end.
    pub head_seq: i64,
}

/// Walks the whole chain in pages, recomputing every hash.
#[tracing::instrument(skip(conn))]
pub fn verify(conn: &mut DbConn, key: &[u8]) -> DbResult<Verification> {
    const PAGE: i64 = 2000;
    let (head_seq, head_hash): (i64, String) =
        head::audit_chain.find(1).select((head::last_seq, head::last_hash)).first(conn)?;
    let (mut prev, mut next_seq, mut checked) = (GENESIS.to_owned(), 1_i64, 0_i64);
    loop {
        // Only up to the head read above: rows appended meanwhile are checked next time.
        let rows: Vec<Row> = a::audit_events
            .filter(a::seq.ge(next_seq))
            .filter(a::seq.le(head_seq))
            .order(a::seq.asc())
            .limit(PAGE)
            .select(Row::as_select())
            .load(conn)?;
        let page = rows.into_iter().map(Event::try_from).collect::<DbResult<Vec<_>>>()?;
        if let Some(broken) = first_broken(key, &page, prev.clone(), next_seq) {
            return Ok(Verification {
                intact: false,
                checked: checked + (broken - next_seq),
                first_broken_seq: Some(broken),
                head_seq,
            });
        }
        checked += page.len() as i64;
        let Some(last) = page.last() else { break };
        prev = last.hash.clone();
        next_seq = last.seq + 1;
        if (page.len() as i64) < PAGE {
            break;
        }
    }
    // Rows cut from the end leave the head pointing past the last row.
    if next_seq - 1 != head_seq || prev != head_hash {
        return Ok(Verification { intact: false, checked, first_broken_seq: Some(next_seq), head_seq });
    }
    Ok(Verification { intact: true, checked, first_broken_seq: None, head_seq })
}
