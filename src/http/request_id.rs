//! The request id and the per-request span: every response carries `X-Request-Id` (the
//! client's, when it sent a sane one), every log line of the request carries it, and so does
//! every problem body. Logs name the route pattern, never the path or query: those can hold
//! names and other patient data.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;
use tracing::Instrument;

use super::metrics::Metrics;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Middleware: request id, span, access log line and metrics for every request.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(|| uuid::Uuid::now_v7().simple().to_string(), str::to_owned);
    let method = req.method().to_string();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = tracing::field::Empty);
    let mut res = REQUEST_ID.scope(id.clone(), next.call(req)).instrument(span.clone()).await?;

    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    span.record("route", route.as_str());
    span.in_scope(|| {
        tracing::info!(status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "served");
    });
    if let Some(metrics) = metrics {
        metrics.observe(&method, &route, status, elapsed);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HeaderName::from_static(HEADER), value);
    }
    Ok(res)
}
