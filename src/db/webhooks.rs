//! Queries of webhooks, their deliveries (one per event) and the attempts of each.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::schema::webhook_attempts::dsl as t;
use super::schema::webhook_deliveries::dsl as d;
use super::schema::webhooks::dsl as w;
use super::{from_json, id, now, to_json, utc, DbConn, DbResult};
use crate::domain::ids::OrganizationId;
use crate::domain::time::to_db;

/// A subscription as answered (the secret only once, at creation).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub organization_id: OrganizationId,
    pub url: String,
    /// Event types delivered (`*`: all the organization sees).
    pub types: Vec<String>,
    pub active: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// The signing key, shown once when the webhook is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

type Row = (String, String, String, String, bool, String, NaiveDateTime);

fn webhook(r: Row) -> DbResult<Webhook> {
    Ok(Webhook {
        id: r.0,
        organization_id: id("organization_id", &r.1)?,
        url: r.2,
        types: from_json("types", &r.3)?,
        active: r.4,
        created_by: r.5,
        created_at: utc(r.6),
        secret: None,
    })
}

const COLUMNS: (w::id, w::organization_id, w::url, w::types, w::active, w::created_by, w::created_at) =
    (w::id, w::organization_id, w::url, w::types, w::active, w::created_by, w::created_at);

#[allow(clippy::too_many_arguments)]
pub fn insert(
    conn: &mut DbConn,
    org: OrganizationId,
    url: &str,
    types: &[String],
    sees_org_a: bool,
    org_b_types: &[&str],
    secret: &str,
    who: &str,
) -> DbResult<Webhook> {
    let new_id = uuid::Uuid::now_v7().to_string();
    diesel::insert_into(w::webhooks)
        .values((
            w::id.eq(&new_id),
            w::organization_id.eq(org.to_string()),
            w::url.eq(url),
            w::types.eq(to_json(&types)?),
            w::sees_org_a.eq(sees_org_a),
            w::org_b_types.eq(to_json(&org_b_types)?),
            w::secret.eq(secret),
            w::active.eq(true),
            w::created_by.eq(who),
            w::created_at.eq(now()),
        ))
        .execute(conn)?;
    get(conn, &new_id, org)
}

/// A webhook of the organization (`NotFound` for another's).
pub fn get(conn: &mut DbConn, hook: &str, org: OrganizationId) -> DbResult<Webhook> {
    let r: Row = w::webhooks
        .filter(w::id.eq(hook))
        .filter(w::organization_id.eq(org.to_string()))
        .select(COLUMNS)
        .first(conn)?;
    webhook(r)
}

pub fn list(conn: &mut DbConn, org: OrganizationId) -> DbResult<Vec<Webhook>> {
    let rows: Vec<Row> =
        w::webhooks.filter(w::organization_id.eq(org.to_string())).order(w::id.asc()).select(COLUMNS).load(conn)?;
    rows.into_iter().map(webhook).collect()
}

/// Stops a webhook: no new deliveries; pending ones are dropped as failed. The log stays.
pub fn deactivate(conn: &mut DbConn, hook: &str, org: OrganizationId) -> DbResult<bool> {
    let changed = diesel::update(w::webhooks.filter(w::id.eq(hook)).filter(w::organization_id.eq(org.to_string())))
        .set(w::active.eq(false))
        .execute(conn)?;
    if changed == 0 {
        return Ok(false);
    }
    diesel::update(d::webhook_deliveries.filter(d::webhook_id.eq(hook)).filter(d::status.eq("pending")))
        .set((d::status.eq("failed"), d::last_error.eq(Some("webhook deleted")), d::updated_at.eq(now())))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Deliveries due at `at` that no live lease holds, oldest first.
pub fn due(conn: &mut DbConn, at: DateTime<Utc>, limit: i64) -> DbResult<Vec<String>> {
    let at = to_db(at);
    Ok(d::webhook_deliveries
        .filter(d::status.eq("pending"))
        .filter(d::next_attempt_at.le(at))
        .filter(d::leased_until.is_null().or(d::leased_until.lt(at)))
        .order(d::next_attempt_at.asc())
        .limit(limit)
        .select(d::id)
        .load(conn)?)
}

/// Takes the lease of a delivery if nobody holds a live one: a compare-and-set, so two
/// instances never send the same attempt at once.
pub fn lease(conn: &mut DbConn, delivery: &str, me: &str, at: DateTime<Utc>, until: DateTime<Utc>) -> DbResult<bool> {
    let at = to_db(at);
    let changed = diesel::update(
        d::webhook_deliveries
            .filter(d::id.eq(delivery))
            .filter(d::status.eq("pending"))
            .filter(d::leased_until.is_null().or(d::leased_until.lt(at))),
    )
    .set((d::leased_by.eq(Some(me)), d::leased_until.eq(Some(to_db(until)))))
    .execute(conn)?;
    Ok(changed == 1)
}

/// What a delivery needs: its webhook's URL and secret, the event, and the attempts so far.
pub struct Job {
    pub delivery_id: String,
    pub url: String,
    pub secret: String,
    pub event_seq: i64,
    pub attempts: i32,
}

/// The job of a leased delivery; `None` (and the delivery failed) if its webhook was stopped.
pub fn job(conn: &mut DbConn, delivery: &str) -> DbResult<Option<Job>> {
    let (hook, seq, attempts): (String, i64, i32) =
        d::webhook_deliveries.find(delivery).select((d::webhook_id, d::event_seq, d::attempts)).first(conn)?;
    let (url, secret, active): (String, String, bool) =
        w::webhooks.find(&hook).select((w::url, w::secret, w::active)).first(conn)?;
    if !active {
        diesel::update(d::webhook_deliveries.find(delivery))
            .set((d::status.eq("failed"), d::last_error.eq(Some("webhook deleted")), d::updated_at.eq(now())))
            .execute(conn)?;
        return Ok(None);
    }
    Ok(Some(Job { delivery_id: delivery.to_owned(), url, secret, event_seq: seq, attempts }))
}

/// Records an attempt and its consequence, if this instance still holds the lease.
#[allow(clippy::too_many_arguments)]
pub fn record(
    conn: &mut DbConn,
    job: &Job,
    me: &str,
    status: Option<u16>,
    error: Option<&str>,
    duration_ms: i64,
    next: Option<DateTime<Utc>>,
    delivered: bool,
) -> DbResult<()> {
    let at = now();
    let logged: i64 = t::webhook_attempts.filter(t::delivery_id.eq(&job.delivery_id)).count().get_result(conn)?;
    diesel::insert_into(t::webhook_attempts)
        .values((
            t::id.eq(uuid::Uuid::now_v7().to_string()),
            t::delivery_id.eq(&job.delivery_id),
            t::attempt.eq(i32::try_from(logged + 1).unwrap_or(i32::MAX)),
            t::at.eq(at),
            t::status.eq(status.map(i32::from)),
            t::error.eq(error),
            t::duration_ms.eq(duration_ms),
        ))
        .execute(conn)?;
    let state = if delivered {
        "delivered"
    } else if next.is_some() {
        "pending"
    } else {
        "failed"
    };
    diesel::update(
        d::webhook_deliveries
            .filter(d::id.eq(&job.delivery_id))
            .filter(d::leased_by.eq(me))
            .filter(d::status.eq("pending")),
    )
    .set((
        d::status.eq(state),
        d::attempts.eq(job.attempts + 1),
        d::next_attempt_at.eq(next.map_or(at, to_db)),
        d::leased_by.eq(None::<String>),
        d::leased_until.eq(None::<NaiveDateTime>),
        d::last_status.eq(status.map(i32::from)),
        d::last_error.eq(error),
        d::updated_at.eq(at),
    ))
    .execute(conn)?;
    Ok(())
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A delivery with its attempts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    pub event_seq: i64,
    /// `pending`, `delivered` or `failed` (attempts exhausted).
    pub status: String,
    pub next_attempt_at: DateTime<Utc>,
    pub attempts: Vec<Attempt>,
}

pub fn deliveries(conn: &mut DbConn, hook: &str, limit: i64) -> DbResult<Vec<Delivery>> {
    let rows: Vec<(String, i64, String, NaiveDateTime)> = d::webhook_deliveries
        .filter(d::webhook_id.eq(hook))
        .order(d::event_seq.desc())
        .limit(limit)
        .select((d::id, d::event_seq, d::status, d::next_attempt_at))
        .load(conn)?;
    let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    #[allow(clippy::type_complexity)]
    let attempts: Vec<(String, i32, NaiveDateTime, Option<i32>, Option<String>, i64)> = t::webhook_attempts
        .filter(t::delivery_id.eq_any(ids))
        .order((t::delivery_id.asc(), t::attempt.asc()))
        .select((t::delivery_id, t::attempt, t::at, t::status, t::error, t::duration_ms))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, seq, status, next)| Delivery {
            attempts: attempts
                .iter()
                .filter(|a| a.0 == id)
                .map(|a| Attempt { attempt: a.1, at: utc(a.2), status: a.3, error: a.4.clone(), duration_ms: a.5 })
                .collect(),
            id,
            event_seq: seq,
            status,
            next_attempt_at: utc(next),
        })
        .collect())
}

/// Sends a delivered or failed delivery again from the start of its schedule (by hand). A
/// pending one is already on its way (and may be in flight): it is left alone.
pub fn redeliver(conn: &mut DbConn, hook: &str, delivery: &str) -> DbResult<bool> {
    let changed = diesel::update(
        d::webhook_deliveries.filter(d::id.eq(delivery)).filter(d::webhook_id.eq(hook)).filter(d::status.ne("pending")),
    )
    .set((
        d::status.eq("pending"),
        d::attempts.eq(0),
        d::next_attempt_at.eq(now()),
        d::leased_by.eq(None::<String>),
        d::leased_until.eq(None::<NaiveDateTime>),
        d::updated_at.eq(now()),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}
