//! The sequencer (PostgreSQL). Changes and reads write their access-log rows and events into
//! `audit_pending` and `event_outbox` without taking a head lock, so that transactions from every
//! connection and instance commit side by side. The sequencer moves them, oldest first, into the
//! hash chain and the numbered feed, in batches, under the two head locks (always the access
//! log's first). Every instance runs one; their batches serialise on the locks.
//!
//! Nothing is lost in between: a pending row is committed with what it records, and a batch
//! that fails leaves its rows where they were. Whoever reads the chain or the feed first calls
//! [`Sequencer::catch_up`], so that a change answered before is there to be read.
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
}

impl Sequencer {
    /// `key` signs the access log's chain (the audit key).
    pub fn new(db: Db, key: &[u8]) -> Self {
        Sequencer { db, key: Arc::new(key.to_vec()) }
    }

    fn needed(&self) -> bool {
        self.db.backend() == "postgres"
    }

    /// Starts the background task on the server's runtime (PostgreSQL only); it stops with the
    /// server. Must be called from within that runtime.
    pub fn start(&self) {
        if !self.needed() {
            return;
        }
        let me = self.clone();
        actix_web::rt::spawn(async move {
            loop {
                let key = me.key.clone();
                let pause = match me.db.write(move |c| step(c, &key)).await {
                    Ok(0) => IDLE_PAUSE,
                    Ok(_) => BUSY_PAUSE,
                    Err(e) => {
                        tracing::warn!(error = %e, "the sequencer could not move pending rows; retrying");
                        Duration::from_secs(1)
                    }
                };
                tokio::time::sleep(pause).await;
            }
        });
    }

    /// Returns once every row committed before the call is chained and every such event
    /// numbered (it does the work itself rather than wait for the thread).
    pub async fn catch_up(&self) -> Result<(), DbError> {
        if !self.needed() {
            return Ok(());
        }
        loop {
            let key = self.key.clone();
            if self.db.write(move |c| step(c, &key)).await? == 0 {
                return Ok(());
            }
        }
    }
}

/// One batch of each kind, in one transaction (the access log's head lock first).
fn step(conn: &mut db::DbConn, key: &[u8]) -> Result<usize, DbError> {
    let chained = db::audit::chain_pending(conn, key, BATCH)?;
    let numbered = db::events::sequence_pending(conn, BATCH)?;
    Ok(chained + numbered)
}
