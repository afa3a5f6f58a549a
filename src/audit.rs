//! Writing the access log. A change and its audit row commit in one transaction
//! ([`Audit::entry`] + `db::audit::append`); a read is answered only once its row is durable,
//! and the rows of concurrent reads share one commit (group commit) through [`AuditLog`].

use std::future::{ready, Ready};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use tokio::sync::oneshot;

use crate::auth::jwt::Secret;
use crate::auth::{Actor, Subject};
use crate::db::{self, Db};
use crate::domain::audit::{Entry, Outcome, Purpose};
use crate::error::{ApiError, ApiResult};

/// Most rows one group commit takes.
const MAX_BATCH: usize = 512;

struct Job {
    entries: Vec<Entry>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The group-commit writer: one thread per instance, taking every row that arrived while the
/// previous commit was in flight.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::SyncSender<Job>,
    key: std::sync::Arc<Secret>,
}

impl AuditLog {
    /// Starts the writer. `key` signs the chain; it must be the same on every instance.
    pub fn start(db: Db, key: Secret) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Job>(16_384);
        let key = std::sync::Arc::new(key);
        let writer_key = key.clone();
        std::thread::Builder::new()
            .name("renkei-audit".into())
            .spawn(move || writer(&db, &writer_key, &rx))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the audit writer"));
        AuditLog { tx, key }
    }

    /// The key of the chain (for verification).
    pub fn key(&self) -> &[u8] {
        self.key.expose()
    }

    /// Appends rows and waits until they are durable. An error here must stop the response:
    /// nothing is answered unaudited.
    pub async fn write(&self, entries: Vec<Entry>) -> ApiResult<()> {
        let (done, wait) = oneshot::channel();
        let refused = || ApiError::unavailable("The audit log is not accepting entries");
        match self.tx.try_send(Job { entries, done }) {
            Ok(()) => {}
            // A full queue: wait for room off the async worker.
            Err(mpsc::TrySendError::Full(job)) => {
                let tx = self.tx.clone();
                web::block(move || tx.send(job)).await.map_err(|_| refused())?.map_err(|_| refused())?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(refused()),
        }
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "audit write failed");
                Err(ApiError::unavailable("The access could not be recorded; retry shortly"))
            }
            Err(_) => Err(ApiError::unavailable("The audit log stopped")),
        }
    }
}

/// How long a batch waits for more rows once it has one, when the last batch showed that
/// requests are arriving together. Requests answered by one commit come back at once and
/// would otherwise split into a tiny batch and a large one, commit after commit.
const LINGER: Duration = Duration::from_micros(700);

fn writer(db: &Db, key: &std::sync::Arc<Secret>, rx: &mpsc::Receiver<Job>) {
    let mut last_batch = 0usize;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut rows = jobs[0].entries.len();
        let deadline = Instant::now() + if last_batch > 1 { LINGER } else { Duration::ZERO };
        while rows < MAX_BATCH {
            let next = match deadline.checked_duration_since(Instant::now()) {
                Some(wait) if !wait.is_zero() => rx.recv_timeout(wait).ok(),
                _ => rx.try_recv().ok(),
            };
            let Some(job) = next else { break };
            rows += job.entries.len();
            jobs.push(job);
        }
        last_batch = rows;
        tracing::debug!(rows, jobs = jobs.len(), "audit batch");
        let all: Vec<Entry> = jobs.iter_mut().flat_map(|j| std::mem::take(&mut j.entries)).collect();
        let key = key.clone();
        let result = db
            .audit_blocking(move |c| db::audit::append_chained(c, key.expose(), &all.iter().collect::<Vec<_>>()))
            .map_err(|e: db::DbError| e.to_string());
        for job in jobs {
            let _ = job.done.send(result.clone());
        }
    }
}

/// Most rows of the log one keying pass takes.
const KEY_PASS_ROWS: i64 = 50_000;
/// Most keys one write carries. On SQLite the one writer commits a pass's write with the changes
/// waiting beside it, and each key of a large region can land on a page of its own: 512 keys a
/// write made the changes and reads committed with it wait for 2 MB of pages, and doubled the
/// mix's p99 at 1,000 requests a second (PERFORMANCE.md round 12). 64 keys and a pause after
/// each write spread a pass over many short commits.
const KEYS_PER_WRITE: usize = 64;
const PAUSE_BETWEEN_WRITES: Duration = Duration::from_millis(2);

/// Keys the access log's new rows by patient and by actor, every `interval`, behind the log
/// (`db::audit_keys`). Every instance may run it: two passes over the same rows insert the same
/// keys, and only one moves the head.
pub async fn key_rows(db: Db, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Until the log is keyed up to its end: a pass takes a bounded number of rows.
        loop {
            match key_pass(&db, KEY_PASS_ROWS).await {
                Ok(n) if n == KEY_PASS_ROWS => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "keying the access log failed; retrying");
                    break;
                }
            }
        }
    }
}

/// One pass: the keys of at most `max_rows` rows after the head, in key order, a bounded number
/// per write, then the head moved past them. Returns how many rows it moved the head past (0 when
/// another pass moved it first).
pub async fn key_pass(db: &Db, max_rows: i64) -> Result<i64, db::DbError> {
    let Some(backlog) = db.read(move |c| db::audit_keys::backlog(c, max_rows)).await? else {
        return Ok(0);
    };
    let db::audit_keys::Backlog { from, upto, patients, actors } = backlog;
    for chunk in patients.chunks(KEYS_PER_WRITE) {
        let keys = chunk.to_vec();
        db.write(move |c| db::audit_keys::insert_patient_keys(c, &keys)).await?;
        tokio::time::sleep(PAUSE_BETWEEN_WRITES).await;
    }
    for chunk in actors.chunks(KEYS_PER_WRITE) {
        let keys = chunk.to_vec();
        db.write(move |c| db::audit_keys::insert_actor_keys(c, &keys)).await?;
        tokio::time::sleep(PAUSE_BETWEEN_WRITES).await;
    }
    let moved = db.write(move |c| db::audit_keys::advance(c, from, upto)).await?;
    Ok(if moved { upto - from } else { 0 })
}

/// Writes the events of the successful changes among `entries` (a creation only when it created:
/// a repeat answered with the existing object changed nothing).
pub fn emit_events(conn: &mut db::DbConn, entries: &[&Entry]) -> Result<(), db::DbError> {
    let mut events = Vec::new();
    for e in entries {
        let created = e.status == 201;
        if !(200..300).contains(&e.status) || (e.action.ends_with(".create") && !created) {
            continue;
        }
        if let Some(rid) = &e.resource_id {
            if let Some(ev) = db::events::for_change(conn, &e.action, &e.resource_type, rid)? {
                // A sheet that arrives submitted is also a submission, for those who follow those.
                if ev.kind == "screening.created" && ev.data["status"] == "submitted" {
                    let mut submitted = ev.clone();
                    submitted.kind = "screening.submitted";
                    events.push(ev);
                    events.push(submitted);
                } else {
                    events.push(ev);
                }
            }
        }
    }
    db::events::emit(conn, events)
}

/// The subject of changes Renkei makes by itself (expiring unanswered bed requests).
pub const SYSTEM_SWEEPER: &str = "system:bed-sweeper";

/// The row of a change Renkei made by itself.
pub fn system_entry(target: Target, status: u16) -> Entry {
    Entry {
        id: uuid::Uuid::now_v7().to_string(),
        at: chrono::Utc::now(),
        request_id: String::new(),
        actor_sub: SYSTEM_SWEEPER.to_owned(),
        actor_org: String::new(),
        actor_roles: Vec::new(),
        client_id: None,
        action: target.action.to_owned(),
        resource_type: target.resource_type.to_owned(),
        resource_id: target.resource_id,
        patient_id: target.patient_id,
        outcome: Outcome::from_status(status),
        status,
        purpose: Purpose::Normal,
        reason: None,
    }
}

/// The audit context of a request: which request, and the declared purpose.
#[derive(Clone)]
pub struct Audit {
    log: Option<web::Data<AuditLog>>,
    request_id: String,
    /// `Some(Some(reason))` when the request carries a usable `X-Break-Glass`, `Some(None)` when
    /// it carries a malformed one.
    break_glass: Option<Option<String>>,
}

pub const BREAK_GLASS_HEADER: &str = "x-break-glass";

impl FromRequest for Audit {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let break_glass = req.headers().get(BREAK_GLASS_HEADER).map(|v| {
            // Header values are ASCII on the wire: a Japanese reason comes percent-encoded.
            let text = percent_decode(v.as_bytes()).unwrap_or_default();
            let reason = text.trim();
            let usable = !reason.is_empty() && reason.chars().count() <= 200 && !reason.chars().any(char::is_control);
            usable.then(|| reason.to_owned())
        });
        ready(Ok(Audit {
            log: req.app_data::<web::Data<AuditLog>>().cloned(),
            request_id: crate::http::request_id::current().unwrap_or_default(),
            break_glass,
        }))
    }
}

/// Decodes `%XX` escapes into UTF-8 text; `None` if the result is not UTF-8.
fn percent_decode(bytes: &[u8]) -> Option<String> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(u8::try_from(h * 16 + l).ok()?);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// What was accessed.
pub struct Target {
    pub action: &'static str,
    pub resource_type: &'static str,
    pub resource_id: Option<String>,
    pub patient_id: Option<String>,
}

impl Target {
    pub fn new(action: &'static str, resource_type: &'static str, resource_id: impl ToString) -> Self {
        Target { action, resource_type, resource_id: Some(resource_id.to_string()), patient_id: None }
    }

    pub fn collection(action: &'static str, resource_type: &'static str) -> Self {
        Target { action, resource_type, resource_id: None, patient_id: None }
    }

    pub fn patient(mut self, patient: Option<impl ToString>) -> Self {
        self.patient_id = patient.map(|p| p.to_string());
        self
    }
}

impl Audit {
    /// The break-glass reason, if the request declared one: 400 if malformed.
    pub fn break_glass(&self) -> ApiResult<Option<String>> {
        match &self.break_glass {
            None => Ok(None),
            Some(Some(reason)) => Ok(Some(reason.clone())),
            Some(None) => Err(ApiError::invalid_field(
                "X-Break-Glass",
                "invalid_format",
                "must state the emergency in 1 to 200 characters",
            )),
        }
    }

    /// Refuses a change that declares break-glass: break-glass is read-only.
    pub fn refuse_break_glass(&self) -> ApiResult<()> {
        if self.break_glass.is_some() {
            return Err(ApiError::bad_request(
                "break_glass_read_only",
                "Break-glass allows reading only; send changes without X-Break-Glass",
            ));
        }
        Ok(())
    }

    /// Appends rows inside the caller's (write) transaction: a change and its row commit together,
    /// and so do the events of the state changes the rows record (the outbox).
    pub fn append(&self, conn: &mut db::DbConn, entries: &[&Entry]) -> Result<(), ApiError> {
        let Some(log) = &self.log else { return Err(ApiError::internal("the audit log is not configured")) };
        db::audit::append(conn, log.key(), entries)?;
        Ok(emit_events(conn, entries)?)
    }

    /// The row for an access by `actor`.
    pub fn entry(&self, actor: &Actor, target: Target, status: u16) -> Entry {
        let reason = self.break_glass.clone().flatten();
        Entry {
            id: uuid::Uuid::now_v7().to_string(),
            at: chrono::Utc::now(),
            request_id: self.request_id.clone(),
            actor_sub: actor.sub(),
            actor_org: actor.org.to_string(),
            actor_roles: actor.roles.iter().filter_map(|r| db::to_code(r).ok()).collect(),
            client_id: match &actor.subject {
                Subject::Client(id) => Some(id.clone()),
                Subject::Practitioner(_) => None,
            },
            action: target.action.to_owned(),
            resource_type: target.resource_type.to_owned(),
            resource_id: target.resource_id,
            patient_id: target.patient_id,
            outcome: Outcome::from_status(status),
            status,
            purpose: if reason.is_some() { Purpose::BreakGlass } else { Purpose::Normal },
            reason,
        }
    }

    /// Records the outcome of an access (through the group commit) and passes the result on
    /// once the row is durable. Use for reads, and for changes that failed (their transaction
    /// rolled back, taking nothing with it).
    pub async fn record<T>(&self, actor: &Actor, target: Target, result: ApiResult<T>) -> ApiResult<T> {
        let status = match &result {
            Ok(_) => 200,
            Err(e) => e.status().as_u16(),
        };
        let entry = self.entry(actor, target, status);
        let Some(log) = &self.log else { return Err(ApiError::internal("the audit log is not configured")) };
        log.write(vec![entry]).await?;
        result
    }

    /// Like [`Audit::record`], with one more row per other patient the answer disclosed (a
    /// proposal of likely patient records): one commit for all.
    pub async fn record_disclosing<T>(
        &self,
        actor: &Actor,
        target: Target,
        disclosed: Vec<Target>,
        result: ApiResult<T>,
    ) -> ApiResult<T> {
        let status = match &result {
            Ok(_) => 200,
            Err(e) => e.status().as_u16(),
        };
        let mut entries = vec![self.entry(actor, target, status)];
        entries.extend(disclosed.into_iter().map(|t| self.entry(actor, t, status)));
        let Some(log) = &self.log else { return Err(ApiError::internal("the audit log is not configured")) };
        log.write(entries).await?;
        result
    }

    /// Records a change's failure; a success was recorded inside its own transaction.
    pub async fn after_change<T>(
        &self,
        actor: &Actor,
        target: impl FnOnce() -> Target,
        result: ApiResult<T>,
    ) -> ApiResult<T> {
        match result {
            Ok(v) => Ok(v),
            Err(e) => self.record(actor, target(), Err(e)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn break_glass_reasons_may_be_percent_encoded() {
        assert_eq!(percent_decode("%E6%95%91%E6%80%A5 call".as_bytes()).as_deref(), Some("救急 call"));
        assert_eq!(percent_decode(b"100% sure").as_deref(), Some("100% sure"));
        assert_eq!(percent_decode(b"%FF"), None);
    }
}
