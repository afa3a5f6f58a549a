//! The sequencer (PostgreSQL). Changes write their access-log rows and events into
//! `audit_pending` and `event_outbox` without taking a head lock (the rows of reads are chained by
//! the access log's writer, `crate::audit`, which also takes along the rows waiting here), so that transactions from every
//! connection and instance commit side by side. The sequencer moves them, oldest first, into the
//! hash chain and the numbered feed, in batches, under the two head locks (the access log's and
//! the feed's in separate transactions). Every instance runs one; their batches serialise on the
//! locks.
//!
//! Nothing is lost in between: a pending row is committed with what it records, and a batch
//! that fails leaves its rows where they were. Whoever reads the chain or the feed first calls
//! [`Sequencer::catch_up_audit`] or [`Sequencer::catch_up_events`], so that a change answered before is there to be read.
//! On SQLite the one writer already serialises transactions: rows are chained and numbered in
//! their own transaction, the pending tables stay empty and the sequencer has nothing to do.

use std::sync::Arc;
use std::time::Duration;

use crate::db::{self, Db, DbError};

/// Most rows of each kind one batch moves.
const BATCH: i64 = 1000;
/// The pause after a batch that moved rows (more are gathered for the next) ...
const BUSY_PAUSE: Duration = Duration::from_millis(2);
/// ... and after one that found none (rows of other instances, or left by a failed batch).
const IDLE_PAUSE: Duration = Duration::from_millis(20);

#[derive(Clone)]
pub struct Sequencer {
    db: Db,
    key: Arc<Vec<u8>>,
    /// One catch-up of each kind at a time per instance: the others wait for it here rather than
    /// queue on the head row's lock, each holding a pooled connection.
    audit_gate: Arc<tokio::sync::Mutex<()>>,
    events_gate: Arc<tokio::sync::Mutex<()>>,
}

impl Sequencer {
    /// `key` signs the access log's chain (the audit key).
    pub fn new(db: Db, key: &[u8]) -> Self {
        Sequencer { db, key: Arc::new(key.to_vec()), audit_gate: Arc::default(), events_gate: Arc::default() }
    }

    fn needed(&self) -> bool {
        self.db.backend() == "postgres"
    }

    /// Starts the background task on the server's runtime (PostgreSQL only); it stops with the
    /// server. Must be called from within that runtime. The access log and the events move in
    /// transactions of their own: a failure of one holds up neither the other nor the changes.
    pub fn start(&self) {
        if !self.needed() {
            return;
        }
        let me = self.clone();
        actix_web::rt::spawn(async move {
            loop {
                let key = me.key.clone();
                let chained = me.db.write(move |c| db::audit::chain_pending(c, &key, BATCH, i64::MAX)).await;
                let numbered = me.db.write(|c| db::events::sequence_pending(c, BATCH, i64::MAX)).await;
                let pause = match (chained, numbered) {
                    (Ok(0), Ok(0)) => IDLE_PAUSE,
                    (Ok(_), Ok(_)) => BUSY_PAUSE,
                    (chained, numbered) => {
                        for e in [chained.err(), numbered.err()].into_iter().flatten() {
                            tracing::warn!(error = %e, "the sequencer could not move pending rows; retrying");
                        }
                        Duration::from_secs(1)
                    }
                };
                tokio::time::sleep(pause).await;
            }
        });
    }

    /// Returns once every access-log row committed before the call is chained (it does the work
    /// itself rather than wait for the task). Rows committed meanwhile are left to the task, so
    /// that a steady stream of changes cannot keep a caller here.
    pub async fn catch_up_audit(&self) -> Result<(), DbError> {
        if !self.needed() {
            return Ok(());
        }
        let _turn = self.audit_gate.lock().await;
        let Some(mark) = self.db.read(db::audit::last_pending).await? else {
            return Ok(());
        };
        loop {
            let key = self.key.clone();
            if self.db.write(move |c| db::audit::chain_pending(c, &key, BATCH, mark)).await? == 0 {
                return Ok(());
            }
        }
    }

    /// Returns once every event committed before the call is numbered, with its deliveries.
    pub async fn catch_up_events(&self) -> Result<(), DbError> {
        if !self.needed() {
            return Ok(());
        }
        let _turn = self.events_gate.lock().await;
        let Some(mark) = self.db.read(db::events::last_pending).await? else {
            return Ok(());
        };
        while self.db.write(move |c| db::events::sequence_pending(c, BATCH, mark)).await? > 0 {}
        Ok(())
    }
}
