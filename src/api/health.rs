//! Liveness, readiness and metrics: unauthenticated, for load balancers and Prometheus.

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::http::metrics::Metrics;

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers and carries every migration this binary knows.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready"), (status = 503, description = "Not ready", body = crate::error::Problem))
)]
#[get("/readyz")]
pub async fn readyz(db: web::Data<Db>) -> ApiResult<HttpResponse> {
    let backend = db.backend();
    let migrated = db.read(Db::ready).await.map_err(|e: crate::db::DbError| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::unavailable("The database is not reachable")
    })?;
    if !migrated {
        return Err(ApiError::unavailable("The database has pending migrations; run `renkei migrate`"));
    }
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "database": backend})))
}

/// How long a scrape waits for the keys' lag before it answers without it.
const LAG_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

/// Prometheus metrics of this instance.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"))
)]
#[get("/metrics")]
pub async fn metrics(metrics: web::Data<Metrics>, db: web::Data<Db>) -> HttpResponse {
    let mut body = metrics.render(&db);
    // How far the access log's keys lag behind it (DESIGN §19), read at each scrape so that every
    // instance shows it, whether it keys or not. The scrape must still answer when the database
    // does not, or only slowly (a saturated pool, a lost connection): then the series is left out
    // (`/readyz` reports the database) and the rest of the page is served at once.
    let read = db.read(|c| {
        let (keyed, chained) = crate::db::audit_keys::heads(c)?;
        Ok::<_, crate::db::DbError>(chained - keyed)
    });
    let lag = match tokio::time::timeout(LAG_READ_TIMEOUT, read).await {
        Ok(Ok(rows)) => Some(rows),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: cannot read the access log's keys' lag");
            None
        }
        Err(_) => {
            tracing::warn!("metrics: reading the access log's keys' lag timed out");
            None
        }
    };
    if let Some(rows) = lag {
        body.push_str(
            "# HELP renkei_audit_keys_lag_rows Access-log rows not yet keyed by patient and actor; \
             listings by either walk them one by one.\n\
             # TYPE renkei_audit_keys_lag_rows gauge\n",
        );
        body.push_str(&format!("renkei_audit_keys_lag_rows {rows}\n"));
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body)
}

/// The benchmark's read probe (`RENKEI_BENCH_PROBES` only): one organization row by id through
/// the read pool, with no token, policy or audit — the ceiling a real read is compared with.
pub async fn probe_read(db: web::Data<Db>, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let id: crate::domain::ids::OrganizationId =
        id.parse().map_err(|_| ApiError::invalid_field("id", "invalid_format", "must be a UUID"))?;
    let org = db.read(move |c| Ok::<_, ApiError>(crate::db::organizations::get(c, id)?)).await?;
    Ok(HttpResponse::Ok().json(org))
}

/// The benchmark's write probe: one durable ~1 KB insert through the write pool, nothing else.
pub async fn probe_write(db: web::Data<Db>) -> ApiResult<HttpResponse> {
    use crate::db::schema::bench_probe::dsl as b;
    use diesel::prelude::*;
    let id = uuid::Uuid::now_v7().to_string();
    let row = id.clone();
    db.write(move |c| {
        diesel::insert_into(b::bench_probe)
            .values((b::id.eq(&row), b::payload.eq("x".repeat(1000)), b::created_at.eq(crate::db::now())))
            .execute(c)
            .map_err(crate::db::DbError::from)?;
        Ok::<_, ApiError>(())
    })
    .await?;
    Ok(HttpResponse::Created().json(json!({ "id": id })))
}
