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

/// Prometheus metrics of this instance.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"))
)]
#[get("/metrics")]
pub async fn metrics(metrics: web::Data<Metrics>, db: web::Data<Db>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(metrics.render(&db))
}
