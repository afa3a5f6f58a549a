//! Storage of idempotency keys: a claim before the request runs, the response after.

use chrono::{Duration, Utc};
use diesel::prelude::*;

use super::schema::idempotency_keys::dsl as k;
use super::{now, DbConn, DbError, DbResult};
use crate::domain::time::to_db;

/// How long a key is remembered.
pub const RETENTION: Duration = Duration::hours(24);
/// After this, a claim whose request never finished (a crashed instance) may be taken over.
pub const ABANDONED: Duration = Duration::minutes(5);

/// A stored first response.
#[derive(Debug, Clone)]
pub struct Stored {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What a new request with a key finds.
#[derive(Debug)]
pub enum Claim {
    /// First use: go ahead (the key is now in flight).
    New,
    /// Done before with the same request: answer this again.
    Replay(Stored),
    /// The same request is running right now.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
}

/// Claims `key` for `caller` and this request's hash, in one transaction.
pub fn claim(conn: &mut DbConn, caller: &str, key: &str, hash: &str) -> DbResult<Claim> {
    // Forget what is past retention (indexed, usually nothing).
    diesel::delete(k::idempotency_keys.filter(k::created_at.lt(to_db(Utc::now() - RETENTION)))).execute(conn)?;
    type Row = (String, String, Option<i32>, Option<String>, Option<String>, chrono::NaiveDateTime);
    let existing: Option<Row> = k::idempotency_keys
        .filter(k::caller.eq(caller))
        .filter(k::idem_key.eq(key))
        .select((k::request_hash, k::state, k::status, k::headers, k::body, k::created_at))
        .first(conn)
        .optional()?;
    match existing {
        None => {
            diesel::insert_into(k::idempotency_keys)
                .values((
                    k::caller.eq(caller),
                    k::idem_key.eq(key),
                    k::request_hash.eq(hash),
                    k::state.eq("in_flight"),
                    k::created_at.eq(now()),
                ))
                // A unique violation here means another request took the key a moment ago.
                .execute(conn)?;
            Ok(Claim::New)
        }
        Some((stored_hash, _, _, _, _, _)) if stored_hash != hash => Ok(Claim::Mismatch),
        Some((_, state, Some(status), headers, Some(body), _)) if state == "done" => Ok(Claim::Replay(Stored {
            status: u16::try_from(status).unwrap_or(500),
            headers: headers.and_then(|h| serde_json::from_str(&h).ok()).unwrap_or_default(),
            body,
        })),
        Some((_, _, _, _, _, created)) if created.and_utc() < Utc::now() - ABANDONED => {
            diesel::update(k::idempotency_keys.filter(k::caller.eq(caller)).filter(k::idem_key.eq(key)))
                .set(k::created_at.eq(now()))
                .execute(conn)?;
            Ok(Claim::New)
        }
        Some(_) => Ok(Claim::InFlight),
    }
}

/// Stores the response of a claimed key.
pub fn complete(conn: &mut DbConn, caller: &str, key: &str, stored: &Stored) -> DbResult<()> {
    diesel::update(k::idempotency_keys.filter(k::caller.eq(caller)).filter(k::idem_key.eq(key)))
        .set((
            k::state.eq("done"),
            k::status.eq(i32::from(stored.status)),
            k::headers.eq(serde_json::to_string(&stored.headers).map_err(|e| DbError::Other(e.to_string()))?),
            k::body.eq(&stored.body),
        ))
        .execute(conn)?;
    Ok(())
}

/// Releases a claim whose request failed on the server's side, so that a retry runs again.
pub fn release(conn: &mut DbConn, caller: &str, key: &str) -> DbResult<()> {
    diesel::delete(
        k::idempotency_keys.filter(k::caller.eq(caller)).filter(k::idem_key.eq(key)).filter(k::state.eq("in_flight")),
    )
    .execute(conn)?;
    Ok(())
}
