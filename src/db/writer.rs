//! SQLite's group commit of changes (DESIGN.md §14). SQLite has one writer; a change's own work
//! is short, but every commit writes the pages it dirtied to the WAL and syncs it, and at a few
//! hundred changes a second the commits were a quarter of the server's time. So changes queue
//! for one writer thread, which runs every change that is waiting in one transaction, each in
//! its own savepoint (a change that fails rolls back only its own work), commits once, and only
//! then answers each: a 2xx is still durable, and nothing is answered before its commit.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, Connection, TransactionManager};
use tokio::sync::oneshot;

use super::{checkout, DbConn, DbError, DbPool};

/// Most changes one commit takes.
const MAX_BATCH: usize = 64;

/// The transaction manager of our connection type (savepoints inside the batch).
type Tm = <DbConn as Connection>::TransactionManager;

/// Answers a change once the batch's commit has succeeded or failed.
type Answer = Box<dyn FnOnce(&Result<(), DbError>) + Send>;

/// What a change's run leaves: how to answer it once the batch's fate is known, and whether the
/// connection is still usable for the rest of the batch.
struct Ran {
    answer: Answer,
    healthy: bool,
}

/// A queued change, whatever it returns.
trait Work: Send {
    fn queued_at(&self) -> Instant;
    /// Runs the change in its own savepoint of the batch's transaction.
    fn run(self: Box<Self>, conn: &mut DbConn) -> Ran;
    /// Answers without running (the writer could not start the batch, or the change waited too long).
    fn refuse(self: Box<Self>, e: DbError);
}

struct Pending<T, E, F> {
    f: F,
    done: oneshot::Sender<Result<T, E>>,
    queued_at: Instant,
}

impl<T, E, F> Work for Pending<T, E, F>
where
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
{
    fn queued_at(&self) -> Instant {
        self.queued_at
    }

    fn run(self: Box<Self>, conn: &mut DbConn) -> Ran {
        let Pending { f, done, .. } = *self;
        let (result, healthy) = in_savepoint(conn, f);
        let answer: Answer = match result {
            Ok(value) => Box::new(move |outcome| {
                let _ = done.send(match outcome {
                    Ok(()) => Ok(value),
                    Err(e) => Err(E::from(e.clone())),
                });
            }),
            // Its own failure is its answer only if the batch commits: it may have failed because
            // of an earlier change of the batch (a bed it took, a version it bumped), and if that
            // change is rolled back, the failure describes a state that never was. Retryable then.
            Err(e) => Box::new(move |outcome| {
                let _ = done.send(match outcome {
                    Ok(()) => Err(e),
                    Err(batch) => Err(E::from(batch.clone())),
                });
            }),
        };
        Ran { answer, healthy }
    }

    fn refuse(self: Box<Self>, e: DbError) {
        let _ = self.done.send(Err(E::from(e)));
    }
}

/// Runs `f` in a savepoint: released if it succeeds, rolled back if it fails. The flag says
/// whether the connection is still fit for the rest of the batch.
fn in_savepoint<T, E, F>(conn: &mut DbConn, f: F) -> (Result<T, E>, bool)
where
    E: From<DbError>,
    F: FnOnce(&mut DbConn) -> Result<T, E>,
{
    if let Err(e) = Tm::begin_transaction(conn) {
        return (Err(E::from(DbError::from(e))), false);
    }
    match f(conn) {
        Ok(value) => match Tm::commit_transaction(conn) {
            Ok(()) => (Ok(value), true),
            Err(e) => (Err(E::from(DbError::from(e))), false),
        },
        Err(e) => match Tm::rollback_transaction(conn) {
            Ok(()) => (Err(e), true),
            Err(rollback) => {
                tracing::error!(error = %rollback, "rollback to a savepoint failed");
                (Err(e), false)
            }
        },
    }
}

/// The queue of changes and its writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::SyncSender<Box<dyn Work>>,
}

impl Writer {
    /// Starts the writer thread on `pool` (SQLite's one writer connection). A change that waited
    /// longer than `max_wait` for its turn is answered busy without running, as a request that
    /// waited that long for the connection was before.
    pub fn start(pool: DbPool, max_wait: Duration) -> Result<Self, String> {
        let (tx, rx) = mpsc::sync_channel::<Box<dyn Work>>(4096);
        std::thread::Builder::new()
            .name("renkei-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    // The thread outlives any failure: a panic here answers the batch (its
                    // senders are dropped) and the next batch starts afresh.
                    if catch_unwind(AssertUnwindSafe(|| commit_batch(&pool, batch, max_wait))).is_err() {
                        tracing::error!("the SQLite writer recovered from a panic; its batch was not committed");
                    }
                }
            })
            .map_err(|e| format!("cannot start the SQLite writer: {e}"))?;
        Ok(Writer { tx })
    }

    /// Queues `f` and waits for its answer, which comes once the batch it ran in has committed.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    {
        let (work, answer) = pending(f);
        let stopped = || E::from(DbError::Other("the SQLite writer stopped".into()));
        match self.tx.try_send(work) {
            Ok(()) => {}
            // A full queue: wait for room off the async worker.
            Err(mpsc::TrySendError::Full(work)) => {
                let tx = self.tx.clone();
                match actix_web::web::block(move || tx.send(work)).await {
                    Ok(Ok(())) => {}
                    _ => return Err(stopped()),
                }
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(stopped()),
        }
        answer.await.unwrap_or_else(|_| Err(unanswered()))
    }

    /// Like [`Writer::write`], for a thread of its own (the access log's group writer): its rows
    /// share the changes' commits instead of taking turns with them for the connection.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    {
        let (work, answer) = pending(f);
        if self.tx.send(work).is_err() {
            return Err(E::from(DbError::Other("the SQLite writer stopped".into())));
        }
        answer.blocking_recv().unwrap_or_else(|_| Err(unanswered()))
    }
}

/// A change ready to queue, and where its answer will come.
fn pending<T, E, F>(f: F) -> (Box<dyn Work>, oneshot::Receiver<Result<T, E>>)
where
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
{
    let (done, answer) = oneshot::channel();
    (Box::new(Pending { f, done, queued_at: Instant::now() }), answer)
}

/// The answer of a change whose sender was dropped unanswered: it panicked, and its batch was
/// rolled back.
fn unanswered<E: From<DbError>>() -> E {
    E::from(DbError::Other("the change failed".into()))
}

/// After a panic inside a change: rolls back to the batch's own level (depth 1). Whether the
/// connection is still fit for the batch.
fn back_to_batch(conn: &mut DbConn) -> bool {
    loop {
        match Tm::transaction_manager_status_mut(conn).transaction_depth() {
            Ok(Some(depth)) if depth.get() > 1 => {
                if let Err(e) = Tm::rollback_transaction(conn) {
                    tracing::error!(error = %e, "rollback after a panic failed");
                    return false;
                }
            }
            Ok(Some(_)) => return true,
            _ => return false,
        }
    }
}

/// Runs one batch: `BEGIN IMMEDIATE`, each change in its savepoint, one `COMMIT`, then the answers.
fn commit_batch(pool: &DbPool, batch: Vec<Box<dyn Work>>, max_wait: Duration) {
    let (batch, late): (Vec<_>, Vec<_>) = batch.into_iter().partition(|w| w.queued_at().elapsed() <= max_wait);
    for work in late {
        work.refuse(DbError::Busy("the writer was busy for too long"));
    }
    if batch.is_empty() {
        return;
    }
    let mut conn = match checkout(pool) {
        Ok(conn) => conn,
        Err(e) => {
            for work in batch {
                work.refuse(e.clone());
            }
            return;
        }
    };
    let begun = match &mut *conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"),
        DbConn::Pg(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN"),
    };
    if let Err(e) = begun {
        let e = DbError::from(e);
        for work in batch {
            work.refuse(e.clone());
        }
        return;
    }
    let mut answers = Vec::with_capacity(batch.len());
    let mut healthy = true;
    let mut rest = batch.into_iter();
    for work in rest.by_ref() {
        match catch_unwind(AssertUnwindSafe(|| work.run(&mut conn))) {
            Ok(ran) => {
                answers.push(ran.answer);
                healthy = ran.healthy;
            }
            // A bug in one change (answered 500: its sender is gone): its savepoint is rolled
            // back and the others go on.
            Err(_) => {
                tracing::error!("a change panicked; its work is rolled back");
                healthy = back_to_batch(&mut conn);
            }
        }
        if !healthy {
            break;
        }
    }
    // The connection failed: nothing of the batch can commit. Retryable, for every change.
    let failed = || DbError::Busy("the change could not be committed; retry");
    for work in rest {
        work.refuse(failed());
    }
    let outcome = if healthy {
        Tm::commit_transaction(&mut conn).map_err(|e| {
            tracing::error!(error = %e, "a group commit failed");
            failed()
        })
    } else {
        Err(failed())
    };
    if outcome.is_err() {
        // None of it stays, however deep a panic left it: roll back every open level. A
        // connection that cannot is discarded by the pool (it reports itself broken).
        while let Ok(Some(_)) = Tm::transaction_manager_status_mut(&mut conn).transaction_depth() {
            if let Err(e) = Tm::rollback_transaction(&mut conn) {
                tracing::error!(error = %e, "rollback of a batch failed");
                break;
            }
        }
    }
    for answer in answers {
        answer(&outcome);
    }
}
