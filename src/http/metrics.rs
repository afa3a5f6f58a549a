//! Prometheus metrics: requests and latency by route and status, and the pools' state.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::db::Db;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Counters kept in memory per process; each instance exposes its own.
#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let Ok(mut series) = self.series.lock() else { return };
        let s = series.entry((method.to_owned(), route.to_owned(), status)).or_default();
        s.count += 1;
        s.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                s.buckets[i] += 1;
            }
        }
    }

    /// The exposition text (format 0.0.4).
    pub fn render(&self, db: &Db) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP renkei_http_requests_total HTTP requests answered.");
        let _ = writeln!(out, "# TYPE renkei_http_requests_total counter");
        let series = match self.series.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        for ((method, route, status), s) in series.iter() {
            let _ = writeln!(
                out,
                "renkei_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {}",
                escape(route),
                s.count
            );
        }
        let _ = writeln!(out, "# HELP renkei_http_request_duration_seconds Time to answer, by route and status.");
        let _ = writeln!(out, "# TYPE renkei_http_request_duration_seconds histogram");
        for ((method, route, status), s) in series.iter() {
            let labels = format!("method=\"{method}\",route=\"{}\",status=\"{status}\"", escape(route));
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                let _ = writeln!(out, "renkei_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "renkei_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", s.count);
            let _ = writeln!(out, "renkei_http_request_duration_seconds_sum{{{labels}}} {}", s.sum);
            let _ = writeln!(out, "renkei_http_request_duration_seconds_count{{{labels}}} {}", s.count);
        }
        drop(series);
        let _ = writeln!(out, "# HELP renkei_db_pool_connections Open database connections by pool.");
        let _ = writeln!(out, "# TYPE renkei_db_pool_connections gauge");
        let pools = db.pool_states();
        for (pool, open, _, _) in &pools {
            let _ = writeln!(out, "renkei_db_pool_connections{{pool=\"{pool}\",backend=\"{}\"}} {open}", db.backend());
        }
        let _ = writeln!(out, "# HELP renkei_db_pool_idle_connections Idle database connections by pool.");
        let _ = writeln!(out, "# TYPE renkei_db_pool_idle_connections gauge");
        for (pool, _, idle, _) in &pools {
            let _ =
                writeln!(out, "renkei_db_pool_idle_connections{{pool=\"{pool}\",backend=\"{}\"}} {idle}", db.backend());
        }
        let _ = writeln!(out, "# HELP renkei_db_pool_max_connections Pool size by pool.");
        let _ = writeln!(out, "# TYPE renkei_db_pool_max_connections gauge");
        for (pool, _, _, max) in &pools {
            let _ =
                writeln!(out, "renkei_db_pool_max_connections{{pool=\"{pool}\",backend=\"{}\"}} {max}", db.backend());
        }
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}
