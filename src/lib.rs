//! Renkei: the open case-coordination API for home medical care in Japan.
//!
//! `build` wires configuration, database, authentication and routes into a running server;
//! the binary (`main.rs`) and the integration tests both go through it.

pub mod api;
pub mod audit;
pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod malloc;
pub mod sequencer;
pub mod telemetry;
pub mod webhooks;

use std::net::TcpListener;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header;
use actix_web::{middleware, web, App, HttpServer};

use crate::auth::jwt::Verifier;
use crate::config::Config;
use crate::db::Db;
use crate::error::ApiError;
use crate::http::metrics::Metrics;

/// A server bound to its port, not yet awaited.
pub struct Application {
    port: u16,
    server: Server,
    db: Db,
}

impl Application {
    /// Connects to the database, applies migrations, binds the listener and starts the workers.
    /// Must be called inside an actix (tokio) runtime.
    pub fn build(config: &Config) -> Result<Self, String> {
        // Check the keys before touching the database: a bad JWKS file is a start-up error.
        let verifier = Verifier::new(&config.jwt)?;
        let db = Db::connect(&config.db)?;
        let applied = db.migrate()?;
        if applied > 0 {
            tracing::info!(applied, backend = db.backend(), "applied migrations");
        }
        let listener =
            TcpListener::bind(&config.listen).map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let db_data = web::Data::new(db.clone());
        let verifier = web::Data::new(verifier);
        let metrics = web::Data::new(Metrics::default());
        let active_cache = web::Data::new(auth::ActiveCache::default());
        let client_token_ttl = web::Data::new(api::clients::TokenTtl(config.client_token_ttl));
        let jwt_settings = web::Data::new(config.jwt.clone());
        let audit_log = web::Data::new(audit::AuditLog::start(db.clone(), config.audit_key.clone()));
        let bed_response = web::Data::new(config.bed_response);
        let webhook_settings = web::Data::new(config.webhooks.clone());
        let sequencer = sequencer::Sequencer::new(db.clone(), config.audit_key.expose());
        sequencer.start();
        if !config.webhooks.poll_interval.is_zero() {
            actix_web::rt::spawn(webhooks::dispatch(db.clone(), sequencer.clone(), config.webhooks.clone()));
        }
        let sequencer = web::Data::new(sequencer);
        if !config.bed_sweep_interval.is_zero() {
            actix_web::rt::spawn(sweep_bed_requests(db.clone(), config.audit_key.clone(), config.bed_sweep_interval));
        }
        if !config.audit_keys_interval.is_zero() {
            actix_web::rt::spawn(audit::key_rows(db.clone(), config.audit_keys_interval));
        }
        let probes = config.bench_probes;
        if probes {
            tracing::warn!("benchmark probes are on: /_probe/* answer without a token");
        }
        let server = HttpServer::new(move || {
            App::new()
                .app_data(db_data.clone())
                .app_data(verifier.clone())
                .app_data(metrics.clone())
                .app_data(audit_log.clone())
                .app_data(active_cache.clone())
                .app_data(client_token_ttl.clone())
                .app_data(jwt_settings.clone())
                .app_data(bed_response.clone())
                .app_data(webhook_settings.clone())
                .app_data(sequencer.clone())
                .app_data(web::PathConfig::default().error_handler(|err, _| {
                    ApiError::invalid_field("path", "invalid_format", format!("A path parameter is malformed: {err}"))
                        .into()
                }))
                .app_data(web::QueryConfig::default().error_handler(|err, _| query_error(&err).into()))
                .wrap(middleware::from_fn(http::idempotency::guard))
                .wrap(
                    middleware::DefaultHeaders::new()
                        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                        .add((header::CACHE_CONTROL, "no-store")),
                )
                .wrap(middleware::from_fn(http::request_id::observe))
                .configure(api::configure)
                .configure(|cfg| {
                    if probes {
                        cfg.route("/_probe/organizations/{id}", web::get().to(api::health::probe_read))
                            .route("/_probe/rows", web::post().to(api::health::probe_write));
                    }
                })
                .default_service(web::to(api::unmatched))
        })
        .workers(config.workers)
        .worker_max_blocking_threads(config.blocking_threads)
        .shutdown_timeout(config.shutdown_timeout.as_secs())
        .listen(listener)
        .map_err(|e| format!("cannot start the server: {e}"))?
        .run();
        tracing::info!(
            port,
            backend = db.backend(),
            workers = config.workers,
            malloc_arena_max = malloc::arenas_in_force(),
            "renkei listening"
        );
        Ok(Application { port, server, db })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// A handle to stop the server (gracefully or not) from elsewhere.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped; SIGTERM and SIGINT stop it gracefully (in-flight requests finish).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Expires unanswered bed requests at their deadline, every `interval`, for as long as the
/// server runs. Several instances may sweep the same database: each expiry is a compare-and-set.
async fn sweep_bed_requests(db: Db, key: auth::jwt::Secret, interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match api::bed_requests::expire_due(&db, key.clone(), chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "bed requests expired"),
            Err(e) => tracing::warn!(error = %e, "bed request sweep failed"),
        }
    }
}

fn query_error(err: &actix_web::error::QueryPayloadError) -> ApiError {
    match err {
        actix_web::error::QueryPayloadError::Deserialize(e) => {
            ApiError::validation(vec![http::json::field_error(".", &e.to_string())])
        }
        other => ApiError::bad_request("invalid_query", format!("The query string is malformed: {other}")),
    }
}
