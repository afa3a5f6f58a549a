//! The access log's keys by patient and by actor (migration 000018). An index on the log by
//! patient or by actor takes a b-tree page at a random place for every row, and every row of a
//! read is a commit's worth of them; these key tables are filled behind the log instead, some rows
//! at a time and in key order, so that one page takes many keys at once
//! ([`crate::audit::key_rows`]). `audit_keys_head.keyed_seq` says how far they go: the rows up to
//! it have their keys, the rows after it (the tail, a few seconds of the log) are found by walking
//! the log by `seq`. Keys may exist after the head (a pass that stopped half-way); the reads never
//! look at them there, and the next pass inserts them again as no-ops.

use diesel::prelude::*;

use super::schema::audit_actor_keys::dsl as ak;
use super::schema::audit_chain::dsl as chain;
use super::schema::audit_events::dsl as a;
use super::schema::audit_keys_head::dsl as head;
use super::schema::audit_patient_keys::dsl as pk;
use super::{DbConn, DbResult};

/// The rows after the head, with their keys in key order.
#[derive(Debug, Default)]
pub struct Backlog {
    /// The head when read: the keys are for the rows after it ...
    pub from: i64,
    /// ... up to this one.
    pub upto: i64,
    pub patients: Vec<(String, i64)>,
    pub actors: Vec<(String, i64)>,
}

/// The two heads, read in one statement (one snapshot on either backend): how far the keys go
/// (every row up to it has its keys), and the chain's head, the last row of the log (committed
/// with its row, so every row up to it is there to be read). The second is never behind the first.
pub fn heads(conn: &mut DbConn) -> DbResult<(i64, i64)> {
    let chained = chain::audit_chain.find(1).select(chain::last_seq).single_value();
    let (keyed, last): (i64, Option<i64>) =
        head::audit_keys_head.find(1).select((head::keyed_seq, chained)).first(conn)?;
    // The chain's row is made by the first migration and never removed; its absence is an error,
    // not a log with nothing after the keys.
    Ok((keyed, last.ok_or(super::DbError::NotFound)?))
}

/// The next rows to key, at most `max_rows` of the log after the head (`None` when none wait).
/// Only chained rows: the chain's head is committed with its rows, so every row up to it is there.
pub fn backlog(conn: &mut DbConn, max_rows: i64) -> DbResult<Option<Backlog>> {
    let (from, last) = heads(conn)?;
    let upto = last.min(from.saturating_add(max_rows));
    if upto <= from {
        return Ok(None);
    }
    let rows: Vec<(i64, String, Option<String>)> = a::audit_events
        .filter(a::seq.gt(from))
        .filter(a::seq.le(upto))
        .select((a::seq, a::actor_sub, a::patient_id))
        .load(conn)?;
    let mut patients = Vec::with_capacity(rows.len());
    let mut actors = Vec::with_capacity(rows.len());
    for (seq, actor, patient) in rows {
        if let Some(p) = patient {
            patients.push((p, seq));
        }
        actors.push((actor, seq));
    }
    // In key order: consecutive inserts then land on the same pages.
    patients.sort_unstable();
    actors.sort_unstable();
    Ok(Some(Backlog { from, upto, patients, actors }))
}

/// Inserts keys into one key table; those already there are left as they are (a pass that is
/// repeated). On SQLite one statement of a fixed text per key: it stays prepared, where a
/// statement of many rows would be written out and prepared again for every length.
macro_rules! insert_keys {
    ($conn:expr, $keys:expr, $table:expr, $key:expr, $seq:expr) => {{
        match $conn {
            DbConn::Pg(pg) => {
                let rows: Vec<_> = $keys.iter().map(|(k, s)| ($key.eq(k.as_str()), $seq.eq(*s))).collect();
                if !rows.is_empty() {
                    diesel::insert_into($table).values(rows).on_conflict_do_nothing().execute(pg)?;
                }
            }
            DbConn::Sqlite(lite) => {
                for (k, s) in $keys {
                    diesel::insert_or_ignore_into($table).values(($key.eq(k.as_str()), $seq.eq(*s))).execute(lite)?;
                }
            }
        }
        Ok(())
    }};
}

/// Inserts patient keys (`(patient_id, seq)`), as no-ops where they are there already.
pub fn insert_patient_keys(conn: &mut DbConn, keys: &[(String, i64)]) -> DbResult<()> {
    insert_keys!(conn, keys, pk::audit_patient_keys, pk::patient_id, pk::seq)
}

/// Inserts actor keys (`(actor_sub, seq)`), as no-ops where they are there already.
pub fn insert_actor_keys(conn: &mut DbConn, keys: &[(String, i64)]) -> DbResult<()> {
    insert_keys!(conn, keys, ak::audit_actor_keys, ak::actor_sub, ak::seq)
}

/// Moves the head from `from` to `upto` once every key of the rows between is in. `false` when
/// the head is no longer at `from` (another instance keyed the same rows first): nothing to do.
pub fn advance(conn: &mut DbConn, from: i64, upto: i64) -> DbResult<bool> {
    let moved = diesel::update(head::audit_keys_head.find(1).filter(head::keyed_seq.eq(from)))
        .set(head::keyed_seq.eq(upto))
        .execute(conn)?;
    Ok(moved == 1)
}
