//! Configuration: defaults in code, `RENKEI_*` variables and flags on top (API.md's table).
//! Secrets come from the environment or the data directory, never from flags, and are never
//! printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::auth::jwt::{JwtSettings, Secret};
use crate::db::{Backend, DbSettings};

/// Renkei: the open case-coordination API for home medical care.
#[derive(Debug, Parser)]
#[command(name = "renkei", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Database: sqlite://PATH (default: sqlite://<data-dir>/renkei.db) or postgres://…
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory for the SQLite file and the generated token secret.
    #[arg(long, env = "RENKEI_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "RENKEI_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub listen: String,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "RENKEI_WORKERS", global = true)]
    pub workers: Option<usize>,
    /// Database connections for reads (PostgreSQL: for everything).
    #[arg(long, env = "RENKEI_DB_POOL_SIZE", default_value_t = 8, global = true)]
    pub db_pool_size: u32,
    /// Threads each HTTP worker keeps for blocking calls (database, password hashing, webhook
    /// host lookups); default: the pool size. Tasks beyond it queue.
    #[arg(long, env = "RENKEI_BLOCKING_THREADS", global = true)]
    pub blocking_threads: Option<usize>,
    /// Milliseconds a request waits for a database connection before it is answered 503.
    #[arg(long, env = "RENKEI_DB_POOL_TIMEOUT_MS", default_value_t = 2000, global = true)]
    pub db_pool_timeout_ms: u64,
    /// SQLite: milliseconds a writer waits for the file lock before answering 503.
    #[arg(long, env = "RENKEI_SQLITE_BUSY_TIMEOUT_MS", default_value_t = 5000, global = true)]
    pub sqlite_busy_timeout_ms: u64,
    /// SQLite `synchronous` pragma: FULL (default: acknowledged writes survive power loss) or NORMAL.
    #[arg(long, env = "RENKEI_SQLITE_SYNCHRONOUS", default_value = "FULL", global = true)]
    pub sqlite_synchronous: String,
    /// SQLite: KiB of page cache each connection may keep (the read pool's and the writer's;
    /// SQLite's own default is 2000). Memory grows until every connection's cache is full.
    #[arg(long, env = "RENKEI_SQLITE_CACHE_KIB", default_value_t = 256, global = true)]
    pub sqlite_cache_kib: u32,
    /// Most arenas glibc's allocator may keep (`serve` starts itself again once with
    /// `GLIBC_TUNABLES` set, unless it already names `glibc.malloc.arena_max`); default: one per
    /// core; 0: glibc's own default, eight per core.
    #[arg(long, env = "RENKEI_MALLOC_ARENAS", global = true)]
    pub malloc_arenas: Option<u32>,
    /// Minutes hospitals have to answer bed requests, by kind (e.g. `emergency=30,urgent=120,respite=4320`).
    #[arg(long, env = "RENKEI_BED_RESPONSE_MINUTES", global = true)]
    pub bed_response_minutes: Option<String>,
    /// Seconds between sweeps that expire unanswered bed requests (0: this instance does not sweep).
    #[arg(long, env = "RENKEI_BED_SWEEP_SECONDS", default_value_t = 15, global = true)]
    pub bed_sweep_seconds: u64,
    /// Milliseconds between passes that key the access log's new rows by patient and by actor
    /// (0: this instance does not; another must, or lists by patient or actor walk the log).
    #[arg(long, env = "RENKEI_AUDIT_KEYS_MS", default_value_t = 1000, global = true)]
    pub audit_keys_ms: u64,
    /// Allow webhook receivers on private, loopback and link-local addresses.
    #[arg(long, env = "RENKEI_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, global = true)]
    pub webhook_allow_private: bool,
    /// Milliseconds between looks for due webhook deliveries (0: this instance does not deliver).
    #[arg(long, env = "RENKEI_WEBHOOK_POLL_MS", default_value_t = 1000, global = true)]
    pub webhook_poll_ms: u64,
    /// Attempts before a webhook delivery is marked failed.
    #[arg(long, env = "RENKEI_WEBHOOK_MAX_ATTEMPTS", default_value_t = 8, global = true)]
    pub webhook_max_attempts: i32,
    /// Serve the benchmark's probes (`/_probe/…`: a bare read and a bare insert, no token). Never in production.
    #[arg(long, env = "RENKEI_BENCH_PROBES", default_value_t = false, global = true)]
    pub bench_probes: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print a token signed with the configured secret (bootstrap and local use).
    Token(TokenArgs),
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Subject: a practitioner id, or client:<id>.
    #[arg(long)]
    pub sub: String,
    /// Organization id the caller acts for.
    #[arg(long)]
    pub org: String,
    /// A role (repeat for several): admin, coordinator, physician, …
    #[arg(long = "role", required = true)]
    pub roles: Vec<String>,
    /// Lifetime, e.g. 15m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
}

/// The largest page cache a SQLite connection may be given, in KiB (1 GiB).
const MAX_SQLITE_CACHE_KIB: u32 = 1 << 20;

/// Everything the server needs, resolved and checked.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub workers: usize,
    /// Threads of each worker's blocking pool. Bounded so that a burst cannot leave hundreds
    /// of threads behind (each with its stack and its allocator arena) to wait for a few
    /// connections; tasks beyond it queue, and the time queued counts against the pool timeout.
    pub blocking_threads: usize,
    pub db: DbSettings,
    pub jwt: JwtSettings,
    /// The key of the access log's hash chain (HMAC): outside the database, the same on every
    /// instance.
    pub audit_key: Secret,
    /// Lifetime of tokens issued by the client-credentials grant.
    pub client_token_ttl: Duration,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// How long hospitals have to answer bed requests.
    pub bed_response: crate::api::bed_requests::ResponseWindows,
    /// Between sweeps expiring unanswered bed requests; zero: no sweeping here.
    pub bed_sweep_interval: Duration,
    /// Between passes keying the access log by patient and by actor; zero: no keying here.
    pub audit_keys_interval: Duration,
    pub webhooks: crate::webhooks::WebhookSettings,
    /// Serve the benchmark's unauthenticated probes.
    pub bench_probes: bool,
}

impl Config {
    /// Resolves the configuration from parsed flags and the environment.
    pub fn load(args: &GlobalArgs) -> Result<Self, String> {
        let url = match &args.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", args.data_dir.join("renkei.db").display()),
        };
        let synchronous = args.sqlite_synchronous.to_ascii_uppercase();
        if !matches!(synchronous.as_str(), "FULL" | "NORMAL" | "EXTRA") {
            return Err("RENKEI_SQLITE_SYNCHRONOUS must be FULL, NORMAL or EXTRA".into());
        }
        // SQLite reads the size as a 32-bit number and silently turns a larger one into no
        // cache at all; a gibibyte per connection is already far more than any file here.
        if !(1..=MAX_SQLITE_CACHE_KIB).contains(&args.sqlite_cache_kib) {
            return Err(format!("RENKEI_SQLITE_CACHE_KIB must be from 1 to {MAX_SQLITE_CACHE_KIB}"));
        }
        if let Some(n) = args.malloc_arenas {
            crate::malloc::check(n)?;
        }
        if args.db_pool_size == 0 {
            return Err("RENKEI_DB_POOL_SIZE must be at least 1".into());
        }
        if args.blocking_threads == Some(0) {
            return Err("RENKEI_BLOCKING_THREADS must be at least 1".into());
        }
        let secret = match std::env::var("RENKEI_JWT_SECRET") {
            Ok(s) if !s.is_empty() => {
                if s.len() < 32 {
                    return Err("RENKEI_JWT_SECRET must be at least 32 bytes long".into());
                }
                Secret::new(s.into_bytes())
            }
            _ => load_or_create_secret(&args.data_dir, "jwt-secret")?,
        };
        let audit_key = match std::env::var("RENKEI_AUDIT_KEY") {
            Ok(s) if !s.is_empty() => {
                if s.len() < 32 {
                    return Err("RENKEI_AUDIT_KEY must be at least 32 bytes long".into());
                }
                Secret::new(s.into_bytes())
            }
            _ => load_or_create_secret(&args.data_dir, "audit-key")?,
        };
        let env_or = |key: &str, default: &str| {
            std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned())
        };
        Ok(Config {
            listen: args.listen.clone(),
            workers: args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            blocking_threads: args.blocking_threads.unwrap_or(args.db_pool_size as usize),
            db: DbSettings {
                backend: Backend::from_url(&url)?,
                pool_size: args.db_pool_size,
                pool_timeout: Duration::from_millis(args.db_pool_timeout_ms),
                sqlite_busy_timeout: Duration::from_millis(args.sqlite_busy_timeout_ms),
                sqlite_synchronous: synchronous,
                sqlite_cache_kib: args.sqlite_cache_kib,
            },
            jwt: JwtSettings {
                secret,
                issuers: env_or("RENKEI_JWT_ISSUER", "renkei")
                    .split(',')
                    .map(|i| i.trim().to_owned())
                    .filter(|i| !i.is_empty())
                    .collect(),
                audience: env_or("RENKEI_JWT_AUDIENCE", "renkei"),
                keys_file: std::env::var_os("RENKEI_JWT_KEYS").filter(|v| !v.is_empty()).map(PathBuf::from),
            },
            audit_key,
            client_token_ttl: Duration::from_secs(
                env_or("RENKEI_CLIENT_TOKEN_TTL_SECS", "900")
                    .parse::<u64>()
                    .ok()
                    .filter(|s| (60..=86_400).contains(s))
                    .ok_or("RENKEI_CLIENT_TOKEN_TTL_SECS must be a number of seconds from 60 to 86400")?,
            ),
            shutdown_timeout: Duration::from_secs(30),
            bed_response: match &args.bed_response_minutes {
                Some(text) => crate::api::bed_requests::ResponseWindows::parse(text)
                    .map_err(|e| format!("RENKEI_BED_RESPONSE_MINUTES: {e}"))?,
                None => Default::default(),
            },
            bed_sweep_interval: Duration::from_secs(args.bed_sweep_seconds),
            audit_keys_interval: Duration::from_millis(args.audit_keys_ms),
            webhooks: crate::webhooks::WebhookSettings {
                allow_private: args.webhook_allow_private,
                poll_interval: Duration::from_millis(args.webhook_poll_ms),
                max_attempts: args.webhook_max_attempts.clamp(1, 50),
                ..Default::default()
            },
            bench_probes: args.bench_probes,
        })
    }
}

/// A secret kept in the data directory (`jwt-secret`, `audit-key`): read it, or generate 256
/// random bits on first start and write them readable by the owner only.
pub fn load_or_create_secret(data_dir: &Path, name: &str) -> Result<Secret, String> {
    let path = data_dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= 32 => {
            warn_if_readable_by_others(&path);
            return Ok(Secret::new(text.trim().as_bytes().to_vec()));
        }
        Ok(_) => {
            return Err(format!("{} is too short to be a secret; delete it to generate a new one", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    std::fs::create_dir_all(data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    use base64::Engine;
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new secret");
            Ok(Secret::new(text.into_bytes()))
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_secret(data_dir, name),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the token secret is readable by other users; chmod 600 it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_generated_once_owner_only_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_secret(dir.path(), "jwt-secret").unwrap();
        let second = load_or_create_secret(dir.path(), "jwt-secret").unwrap();
        assert_eq!(first.expose(), second.expose());
        assert_eq!(first.expose().len(), 43);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("jwt-secret")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
