//! The database: one connection type over PostgreSQL and SQLite, pools, migrations, and the
//! only two ways handlers touch it — [`Db::read`] and [`Db::write`] — both off the async
//! workers, one pooled connection per request.

pub mod audit;
pub mod audit_keys;
pub mod beds;
pub mod care_team;
pub mod cases;
pub mod clients;
pub mod cover;
pub mod events;
pub mod idempotency;
pub mod organizations;
pub mod patients;
pub mod practitioners;
pub mod registrations;
pub mod schedule;
pub mod schema;
pub mod screenings;
pub mod webhooks;
mod writer;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// A connection to whichever backend `DATABASE_URL` names.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Errors of the storage layer, classified so the API can answer honestly.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; the text names it (for logs and mapping).
    #[error("unique violation: {0}")]
    Unique(String),
    #[error("foreign key violation")]
    ForeignKey,
    /// A rule enforced by a trigger (message prefixed `rule:`) refused the write.
    #[error("rule: {0}")]
    Rule(String),
    /// Retryable: the SQLite lock or the pool was not available in time.
    #[error("busy: {0}")]
    Busy(&'static str),
    #[error("{0}")]
    Other(String),
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => DbError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                DbError::Unique(info.constraint_name().map_or_else(|| info.message().to_owned(), str::to_owned))
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => DbError::ForeignKey,
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                DbError::Busy("serialization failure")
            }
            DieselError::DatabaseError(_, info) if info.message().contains("rule:") => {
                DbError::Rule(info.message().to_owned())
            }
            DieselError::DatabaseError(_, info)
                if info.message().contains("database is locked")
                    || info.message().contains("database table is locked") =>
            {
                DbError::Busy("database is locked")
            }
            // PostgreSQL chose this transaction to break a lock cycle: retryable, like a
            // serialization failure (diesel has no kind for SQLSTATE 40P01).
            DieselError::DatabaseError(_, info) if info.message().contains("deadlock detected") => {
                DbError::Busy("deadlock")
            }
            DieselError::RollbackErrorOnCommit { commit_error, .. } => DbError::from(*commit_error),
            other => DbError::Other(other.to_string()),
        }
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// Which backend a URL names. Anything but these two schemes is refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Postgres(String),
    Sqlite(PathBuf),
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Backend::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() || path.contains(":memory:") || path.starts_with("file:") {
                return Err(
                    "DATABASE_URL must name an SQLite file, e.g. sqlite://data/renkei.db (in-memory databases \
                     are not supported: each pooled connection would get its own)"
                        .into(),
                );
            }
            return Ok(Backend::Sqlite(PathBuf::from(path)));
        }
        let scheme = url.split_once(':').map_or("(none)", |(s, _)| s);
        Err(format!("DATABASE_URL has an unsupported scheme '{scheme}': use sqlite://PATH or postgres://USER@HOST/DB"))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) => "sqlite",
        }
    }
}

/// Database settings (see `config.rs` for where they come from).
#[derive(Debug, Clone)]
pub struct DbSettings {
    pub backend: Backend,
    /// Connections for reads (PostgreSQL: for everything).
    pub pool_size: u32,
    /// How long a request waits for a connection before it is answered 503.
    pub pool_timeout: Duration,
    /// SQLite: how long a writer waits for the file lock before giving up.
    pub sqlite_busy_timeout: Duration,
    /// SQLite: `synchronous` pragma (`FULL` by default: a 2xx survives power loss).
    pub sqlite_synchronous: String,
    /// SQLite: KiB of page cache per connection (`cache_size`). Each connection's cache fills
    /// towards it as reads touch pages, so the process's memory grows until all have.
    pub sqlite_cache_kib: u32,
}

struct Manager {
    backend: Backend,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConn, Self::Error> {
        match &self.backend {
            Backend::Postgres(url) => Ok(DbConn::Pg(diesel::PgConnection::establish(url)?)),
            Backend::Sqlite(path) => {
                let path = path.to_string_lossy();
                Ok(DbConn::Sqlite(diesel::SqliteConnection::establish(&path)?))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// Per-connection set-up: SQLite pragmas do not persist across connections, so every pooled
/// connection gets them (busy_timeout first, so that nothing else can fail on a lock).
#[derive(Debug)]
struct ConnectionSetup {
    sqlite_pragmas: String,
}

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for ConnectionSetup {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        match conn {
            DbConn::Sqlite(c) => c.batch_execute(&self.sqlite_pragmas).map_err(diesel::r2d2::Error::QueryError),
            DbConn::Pg(c) => c.batch_execute("SET TIME ZONE 'UTC'").map_err(diesel::r2d2::Error::QueryError),
        }
    }
}

type DbPool = Pool<Manager>;
type PooledConn = PooledConnection<Manager>;

/// The application's handle on the database. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    /// Readers (PostgreSQL: the one pool).
    read: DbPool,
    /// SQLite: a single writer connection, so writers queue in the pool instead of fighting for
    /// the file lock. PostgreSQL: the same pool as `read`.
    write: DbPool,
    /// The audit writer's own connection on PostgreSQL, so that a busy pool never delays the
    /// rows every read waits for. SQLite: the single writer's pool, unused (the access log's rows
    /// go through the group commit).
    audit: DbPool,
    /// SQLite: the group commit every change goes through (`write`). PostgreSQL: none.
    writer: Option<writer::Writer>,
    backend: &'static str,
}

impl Db {
    /// Opens the pools. An unreachable PostgreSQL or an unusable SQLite path is an error here,
    /// at start-up, never later.
    pub fn connect(settings: &DbSettings) -> Result<Self, String> {
        let build = |size: u32, pragmas: String| {
            Pool::builder()
                .max_size(size)
                .min_idle(Some(1))
                .test_on_check_out(false)
                .connection_timeout(settings.pool_timeout)
                .connection_customizer(Box::new(ConnectionSetup { sqlite_pragmas: pragmas }))
                .build(Manager { backend: settings.backend.clone() })
        };
        match &settings.backend {
            Backend::Postgres(_) => {
                let pool = build(settings.pool_size, String::new())
                    .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
                let audit = build(1, String::new()).map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
                Ok(Db { read: pool.clone(), write: pool, audit, writer: None, backend: "postgres" })
            }
            Backend::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create the directory of {}: {e}", path.display()))?;
                }
                let common = format!(
                    "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = {}; \
                     PRAGMA cache_size = -{};",
                    settings.sqlite_busy_timeout.as_millis(),
                    settings.sqlite_synchronous,
                    settings.sqlite_cache_kib
                );
                // WAL is a property of the file: set it once, with the busy timeout already in force.
                let mut first = diesel::SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(|e| format!("cannot open SQLite database {}: {e}", path.display()))?;
                first
                    .batch_execute(&format!("{common} PRAGMA journal_mode = WAL;"))
                    .map_err(|e| format!("cannot set up SQLite database {}: {e}", path.display()))?;
                let write = build(1, common.clone()).map_err(|e| format!("cannot open SQLite database: {e}"))?;
                let read = build(settings.pool_size, format!("{common} PRAGMA query_only = ON;"))
                    .map_err(|e| format!("cannot open SQLite database: {e}"))?;
                let writer = writer::Writer::start(write.clone(), settings.pool_timeout)?;
                Ok(Db { read, audit: write.clone(), write, writer: Some(writer), backend: "sqlite" })
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Applies pending migrations of the connected backend; returns how many ran.
    pub fn migrate(&self) -> Result<usize, String> {
        let mut conn = self.write.get().map_err(|e| format!("no database connection: {e}"))?;
        let applied = match &mut *conn {
            DbConn::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS).map(|v| v.len()),
            DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        };
        applied.map_err(|e| format!("migration failed: {e}"))
    }

    /// Whether the database answers and has every migration this binary knows.
    /// Reads only (it runs on a read-only connection): the applied versions are compared with
    /// the embedded ones.
    pub fn ready(conn: &mut DbConn) -> Result<bool, DbError> {
        use diesel::migration::MigrationSource;
        let versions = |r: Result<Vec<String>, _>| {
            r.map_err(|e: Box<dyn std::error::Error + Send + Sync>| DbError::Other(e.to_string()))
        };
        let known = versions(match conn {
            DbConn::Pg(_) => MigrationSource::<diesel::pg::Pg>::migrations(&PG_MIGRATIONS)
                .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect()),
            DbConn::Sqlite(_) => MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
                .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect()),
        })?;
        #[derive(QueryableByName)]
        struct Applied {
            #[diesel(sql_type = diesel::sql_types::Text)]
            version: String,
        }
        let applied: Vec<Applied> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations").load(conn)?;
        Ok(known.iter().all(|v| applied.iter().any(|a| &a.version == v)))
    }

    /// Runs `f` with a read connection on the blocking thread pool.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    {
        let pool = self.read.clone();
        let queued = Instant::now();
        run_blocking(move || {
            let mut conn = checkout_after(&pool, queued)?;
            f(&mut conn)
        })
        .await
    }

    /// Runs `f` as one atomic change, answered once it is durable; its work stays only if `f`
    /// returns `Ok`. SQLite: in a savepoint of the writer's group commit (`writer.rs`).
    /// PostgreSQL: in its own transaction on the blocking thread pool.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    {
        if let Some(writer) = &self.writer {
            return writer.write(f).await;
        }
        let pool = self.write.clone();
        let queued = Instant::now();
        run_blocking(move || {
            let mut conn = checkout_after(&pool, queued)?;
            write_transaction(&mut conn, f)
        })
        .await
    }

    /// A write transaction for the access log's writer (a blocking call, for its thread): on
    /// SQLite one more change of the group commit, on PostgreSQL its own connection.
    pub fn audit_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    {
        if let Some(writer) = &self.writer {
            return writer.write_blocking(f);
        }
        let mut conn = checkout(&self.audit)?;
        write_transaction(&mut conn, f)
    }

    /// Pool gauges for `/metrics`: (pool name, open connections, idle connections, max size).
    pub fn pool_states(&self) -> Vec<(&'static str, u32, u32, u32)> {
        let state = |p: &DbPool| {
            let s = p.state();
            (s.connections, s.idle_connections, p.max_size())
        };
        let (c, i, m) = state(&self.read);
        let mut out = vec![("read", c, i, m)];
        let (c, i, m) = state(&self.write);
        if self.backend == "sqlite" {
            out.push(("write", c, i, m));
        } else {
            let (c, i, m) = state(&self.audit);
            out.push(("audit", c, i, m));
        }
        out
    }
}

fn checkout(pool: &DbPool) -> Result<PooledConn, DbError> {
    pool.get().map_err(|_| busy())
}

/// A connection for a task that was queued for a blocking thread at `queued`: the time it
/// waited for a thread counts against the pool timeout, so that a request waits no longer in
/// all than it did when every task had a thread of its own.
fn checkout_after(pool: &DbPool, queued: Instant) -> Result<PooledConn, DbError> {
    match pool.connection_timeout().checked_sub(queued.elapsed()) {
        Some(left) if !left.is_zero() => pool.get_timeout(left).map_err(|_| busy()),
        _ => Err(busy()),
    }
}

fn busy() -> DbError {
    DbError::Busy("no database connection free in time")
}

async fn run_blocking<T, E, F>(f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    match actix_web::web::block(f).await {
        Ok(result) => result,
        Err(e) => Err(E::from(DbError::Other(format!("blocking task failed: {e}")))),
    }
}

/// One write transaction: `BEGIN IMMEDIATE` on SQLite (the lock is taken up front, so the
/// transaction can never fail half-way on an upgrade), a plain `BEGIN` on PostgreSQL.
pub fn write_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    E: From<DbError>,
    F: FnOnce(&mut DbConn) -> Result<T, E>,
{
    let begun = match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"),
        // Explicit, whatever the server's default: the audit chain's head lock relies on it.
        DbConn::Pg(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN ISOLATION LEVEL READ COMMITTED"),
    };
    begun.map_err(|e| E::from(DbError::from(e)))?;
    match f(conn) {
        Ok(value) => {
            <DbConn as Connection>::TransactionManager::commit_transaction(conn)
                .map_err(|e| E::from(DbError::from(e)))?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = <DbConn as Connection>::TransactionManager::rollback_transaction(conn) {
                tracing::error!(error = %rollback, "rollback failed");
            }
            Err(e)
        }
    }
}

/// A statement whose SQL text is the same at every call, named by a marker type `M` (one per
/// statement, declared with [`statements!`]), run on the backend's own connection
/// ([`Fixed::run`]) and kept prepared.
///
/// diesel prepares every `UPDATE`, every `INSERT` on PostgreSQL, and every `IN (list)` on SQLite
/// again at each call, because it cannot know that their text does not change (a changeset or a
/// `None` may leave a column out in one call and bind it in the next); and [`DbConn`] writes out a
/// statement's SQL text at every pass over it. In a profile of case creation on SQLite this took
/// 42 % of the one writer's time (26 % writing SQL text, 16 % parsing statements again).
///
/// So a `Fixed` statement writes its text once per backend and process (kept with its marker)
/// and answers every later pass with that text: diesel's question "may this be cached?" then
/// meets no part that says no. Only for a statement whose every column is bound, in every call:
/// tuples of `eq`, or `Insertable` structs with `treat_none_as_default_value = false`; never an
/// `AsChangeset` with optional fields, an `eq_any` list or a multi-row insert, whose text changes
/// with the values (the first call's text would be used for all of them: debug builds, and so
/// the tests, write the text again at every pass and fail if it differs).
pub(crate) struct Fixed<M, Q> {
    query: Q,
    marker: std::marker::PhantomData<M>,
}

pub(crate) fn fixed<M, Q>(query: Q) -> Fixed<M, Q> {
    Fixed { query, marker: std::marker::PhantomData }
}

/// What [`or_kept`] writes: `COALESCE(` the bound value `, column)`.
pub(crate) type OrKept<ST, V> = diesel::expression::SqlLiteral<
    ST,
    diesel::expression::UncheckedBind<
        diesel::expression::SqlLiteral<ST>,
        <V as diesel::expression::AsExpression<ST>>::Expression,
    >,
>;

/// `COALESCE(?, column)` for a `SET column = …`: the value, or the column as it is when the value
/// is `None`. Where a changeset would leave the column out (and so change the statement's text
/// with the values), this keeps one text for every call, so the statement can be [`Fixed`].
pub(crate) fn or_kept<C, T>(column: C, value: Option<T>) -> OrKept<C::SqlType, Option<T>>
where
    C: diesel::Column,
    C::SqlType: diesel::sql_types::SqlType + diesel::expression::TypedExpressionType,
    Option<T>: diesel::expression::AsExpression<C::SqlType>,
{
    let _ = column;
    diesel::dsl::sql::<C::SqlType>("COALESCE(").bind::<C::SqlType, _>(value).sql(&format!(", {})", C::NAME))
}

/// A [`Fixed`] statement's marker: where its text is kept, once per backend.
pub(crate) trait Statement: 'static {
    fn texts() -> &'static Texts;
}

/// The text of one [`Fixed`] statement on each backend, written at its first use.
pub(crate) struct Texts {
    pg: std::sync::OnceLock<String>,
    sqlite: std::sync::OnceLock<String>,
}

impl Texts {
    pub(crate) const fn new() -> Self {
        Texts { pg: std::sync::OnceLock::new(), sqlite: std::sync::OnceLock::new() }
    }
}

/// Declares markers of [`Fixed`] statements: `statements!(InsertCase, RecordStep);`.
macro_rules! statements {
    ($($name:ident),* $(,)?) => {
        $(
            enum $name {}
            impl $crate::db::Statement for $name {
                fn texts() -> &'static $crate::db::Texts {
                    static TEXTS: $crate::db::Texts = $crate::db::Texts::new();
                    &TEXTS
                }
            }
        )*
    };
}
pub(crate) use statements;

impl<M, Q> Fixed<M, Q> {
    /// Executes the statement on the backend's own connection.
    pub(crate) fn run(self, conn: &mut DbConn) -> QueryResult<usize>
    where
        Self: diesel::query_dsl::methods::ExecuteDsl<diesel::PgConnection>
            + diesel::query_dsl::methods::ExecuteDsl<diesel::SqliteConnection>,
    {
        match conn {
            DbConn::Pg(c) => self.execute(c),
            DbConn::Sqlite(c) => self.execute(c),
        }
    }
}

/// A fixed statement that returns rows (`UPDATE … RETURNING`), for `get_result` on the backend's
/// own connection.
impl<M, Q: diesel::query_builder::Query> diesel::query_builder::Query for Fixed<M, Q> {
    type SqlType = Q::SqlType;
}

impl<M: 'static, Q> diesel::query_builder::QueryId for Fixed<M, Q> {
    type QueryId = M;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<M, Q, DB> diesel::query_builder::QueryFragment<DB> for Fixed<M, Q>
where
    M: Statement,
    DB: diesel::backend::Backend + 'static,
    DB::QueryBuilder: Default,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut pass: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        use diesel::internal::derives::multiconnection::AstPassHelper;
        use diesel::query_builder::QueryBuilder;
        use std::any::TypeId;
        // Collecting the bound values (or showing them): the statement itself, every time.
        if pass.bind_collector().is_some() || pass.debug_binds().is_some() {
            return self.query.walk_ast(pass);
        }
        let texts = M::texts();
        let slot = if TypeId::of::<DB>() == TypeId::of::<diesel::pg::Pg>() {
            &texts.pg
        } else if TypeId::of::<DB>() == TypeId::of::<diesel::sqlite::Sqlite>() {
            &texts.sqlite
        } else {
            return self.query.walk_ast(pass);
        };
        // Writing the text, or asking whether it may be cached: the text written once.
        let write = || -> QueryResult<String> {
            let mut builder = DB::QueryBuilder::default();
            self.query.to_sql(&mut builder, pass.backend())?;
            Ok(builder.finish())
        };
        let text = match slot.get() {
            Some(text) => {
                if cfg!(debug_assertions) {
                    assert_eq!(&write()?, text, "a Fixed statement's text changed between calls");
                }
                text
            }
            None => {
                let written = write()?;
                slot.get_or_init(|| written)
            }
        };
        pass.push_sql(text);
        Ok(())
    }
}

impl<M, Q, Conn> RunQueryDsl<Conn> for Fixed<M, Q> {}

/// Runs `$body` with `$c` bound to the backend's own connection (the body is checked once per
/// backend): for a hot `SELECT` of a fixed shape, which diesel keeps prepared by its type, but
/// whose SQL text [`DbConn`] would write out at every pass over it.
macro_rules! native {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Pg($c) => $body,
            $crate::db::DbConn::Sqlite($c) => $body,
        }
    };
}
pub(crate) use native;

/// A condition on `T`'s rows, boxed (one way of seeing them, or several joined).
pub(crate) type Cond<T> = Box<dyn BoxableExpression<T, MultiBackend, SqlType = diesel::sql_types::Bool>>;

/// Any of the ways of seeing at once (for a read of one row by id); false when there are none.
pub(crate) fn any_of<T: 'static>(parts: Vec<Cond<T>>) -> Cond<T> {
    parts
        .into_iter()
        .reduce(|a, b| Box::new(a.or(b)))
        .unwrap_or_else(|| Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0")))
}

/// Runs `run` once per way of seeing (each a page in key order from the cursor) and merges the
/// pages into one (see [`merge_branches`]).
pub(crate) fn union_pages<V, R, K: Ord>(
    branches: Vec<V>,
    limit: i64,
    key: impl Fn(&R) -> K,
    mut run: impl FnMut(V) -> DbResult<Vec<R>>,
) -> DbResult<Vec<R>> {
    let merge = branches.len() > 1;
    let mut rows = Vec::new();
    for branch in branches {
        rows.extend(run(branch)?);
    }
    Ok(if merge { merge_branches(rows, key, limit) } else { rows })
}

/// Merges the rows of several queries of one page (each in key order from the same cursor, each
/// at most `limit` rows): in key order, each row once, the first `limit`.
fn merge_branches<R, K: Ord>(mut rows: Vec<R>, key: impl Fn(&R) -> K, limit: i64) -> Vec<R> {
    rows.sort_by_cached_key(&key);
    rows.dedup_by(|a, b| key(a) == key(b));
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    rows
}

/// A stored code list value back into its enum.
pub fn from_code<T: for<'de> serde::Deserialize<'de>>(code: &str) -> DbResult<T> {
    serde_json::from_value(serde_json::Value::String(code.to_owned())).map_err(|_| corrupt(code))
}

/// An enum into its stored code.
pub fn to_code<T: serde::Serialize>(value: &T) -> DbResult<String> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(DbError::Other("code list value is not a string".into())),
    }
}

pub fn corrupt(what: &str) -> DbError {
    DbError::Other(format!("stored value cannot be read: {what}"))
}

/// Converts a stored UTC timestamp.
pub fn utc(t: chrono::NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    t.and_utc()
}

/// Now, in UTC, truncated to microseconds (what both backends store).
pub fn now() -> chrono::NaiveDateTime {
    crate::domain::time::to_db(chrono::Utc::now())
}

/// Reads a stored JSON text column.
pub fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> DbResult<T> {
    serde_json::from_str(text).map_err(|_| corrupt(what))
}

/// Writes a JSON text column.
pub fn to_json<T: serde::Serialize>(value: &T) -> DbResult<String> {
    serde_json::to_string(value).map_err(|e| DbError::Other(e.to_string()))
}

/// Parses a stored id.
pub fn id<T: std::str::FromStr>(what: &str, text: &str) -> DbResult<T> {
    text.parse().map_err(|_| corrupt(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Info(&'static str);

    impl diesel::result::DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    diesel::table! {
        fixed_probe (id) {
            id -> Integer,
            a -> Nullable<Text>,
            b -> Nullable<Text>,
        }
    }

    fn probe_db() -> DbConn {
        let mut conn = DbConn::Sqlite(diesel::SqliteConnection::establish(":memory:").expect("in-memory SQLite"));
        conn.batch_execute("CREATE TABLE fixed_probe (id INTEGER PRIMARY KEY, a TEXT, b TEXT)").expect("table");
        conn
    }

    fn probe_rows(conn: &mut DbConn) -> Vec<(i32, Option<String>, Option<String>)> {
        use fixed_probe::dsl as f;
        f::fixed_probe.order(f::id).load(conn).expect("rows")
    }

    /// A kept text serves every call, whatever the values, NULL included.
    #[test]
    fn a_fixed_statement_binds_each_call_s_own_values() {
        use fixed_probe::dsl as f;
        statements!(ProbeInsert, ProbeUpdate);
        let mut conn = probe_db();
        for (id, a, b) in [(1, Some("x"), None), (2, None, Some("y")), (3, None, None)] {
            fixed::<ProbeInsert, _>(diesel::insert_into(f::fixed_probe).values((f::id.eq(id), f::a.eq(a), f::b.eq(b))))
                .run(&mut conn)
                .expect("insert");
        }
        for (id, a) in [(1, None), (3, Some("z"))] {
            fixed::<ProbeUpdate, _>(diesel::update(f::fixed_probe.find(id)).set(f::a.eq(a)))
                .run(&mut conn)
                .expect("update");
        }
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(probe_rows(&mut conn), vec![(1, None, None), (2, None, s("y")), (3, s("z"), None)]);
    }

    #[derive(AsChangeset)]
    #[diesel(table_name = fixed_probe)]
    struct Optional<'a> {
        a: Option<&'a str>,
        b: Option<&'a str>,
    }

    /// A changeset that leaves out its `None`s has a text per call: under one kept text, the
    /// second call would write `b`'s value into `a`. Debug builds refuse it instead.
    #[test]
    #[should_panic(expected = "a Fixed statement's text changed between calls")]
    fn a_statement_whose_text_varies_is_refused_in_debug_builds() {
        use fixed_probe::dsl as f;
        statements!(ProbeVarying);
        let mut conn = probe_db();
        diesel::insert_into(f::fixed_probe).values(f::id.eq(1)).execute(&mut conn).expect("insert");
        for changes in [Optional { a: Some("x"), b: None }, Optional { a: None, b: Some("y") }] {
            let _ = fixed::<ProbeVarying, _>(diesel::update(f::fixed_probe.find(1)).set(changes)).run(&mut conn);
        }
    }

    /// A SQLite database in `dir` with two read connections (and the writer).
    fn two_readers(dir: &std::path::Path, pool_timeout: Duration, cache_kib: u32) -> Db {
        Db::connect(&DbSettings {
            backend: Backend::Sqlite(dir.join("test.db")),
            pool_size: 2,
            pool_timeout,
            sqlite_busy_timeout: Duration::from_secs(5),
            sqlite_synchronous: "NORMAL".into(),
            sqlite_cache_kib: cache_kib,
        })
        .expect("database")
    }

    /// Each worker's blocking pool is bounded, so a task may queue for a thread before it asks
    /// for a connection: the time queued counts against the pool timeout. Here one thread and
    /// two connections: the second read finds a free connection, but only after waiting for
    /// the thread longer than the timeout, and is answered busy without running.
    #[test]
    fn time_queued_for_a_blocking_thread_counts_against_the_pool_timeout() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = two_readers(dir.path(), Duration::from_millis(300), 256);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let (first, second) = runtime.block_on(async {
            let first = db.read(|_| {
                std::thread::sleep(Duration::from_millis(900));
                Ok::<_, DbError>(())
            });
            let second = db.read(move |_| {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, DbError>(())
            });
            tokio::join!(first, second)
        });
        assert!(first.is_ok());
        assert!(matches!(second, Err(DbError::Busy(_))), "{second:?}");
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst), "a task that timed out in the queue must not run");
        // Queued within the timeout, a task runs as before.
        let quick = runtime.block_on(async {
            let a = db.read(|_| Ok::<_, DbError>(1));
            let b = db.read(|_| Ok::<_, DbError>(2));
            tokio::join!(a, b)
        });
        assert_eq!((quick.0.ok(), quick.1.ok()), (Some(1), Some(2)));
    }

    /// The page cache each SQLite connection may keep is the configured one, on the read
    /// connections and on the writer alike: it bounds how far the process's memory grows.
    #[test]
    fn sqlite_connections_keep_the_configured_page_cache() {
        #[derive(QueryableByName)]
        struct CacheSize {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            cache_size: i64,
        }
        fn cache_size(conn: &mut DbConn) -> Result<i64, DbError> {
            let row: CacheSize = diesel::sql_query("PRAGMA cache_size").get_result(conn)?;
            Ok(row.cache_size)
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let db = two_readers(dir.path(), Duration::from_secs(5), 300);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        // Each read waits for the other while holding its connection: two connections of the
        // read pool, for certain.
        let both = std::sync::Arc::new(std::sync::Barrier::new(2));
        let read = |both: std::sync::Arc<std::sync::Barrier>| {
            move |conn: &mut DbConn| {
                both.wait();
                cache_size(conn)
            }
        };
        let (a, b, written) = runtime
            .block_on(async { tokio::join!(db.read(read(both.clone())), db.read(read(both)), db.write(cache_size)) });
        // Negative: a size in KiB, not in pages.
        assert_eq!((a.ok(), b.ok(), written.ok()), (Some(-300), Some(-300), Some(-300)));
    }

    #[test]
    fn a_deadlock_is_retryable_and_other_unknown_errors_are_not() {
        let error = |m: &'static str| DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(Info(m)));
        assert!(matches!(DbError::from(error("deadlock detected")), DbError::Busy(_)));
        assert!(matches!(DbError::from(error("database is locked")), DbError::Busy(_)));
        assert!(matches!(DbError::from(error("something else")), DbError::Other(_)));
    }
}
