//! Webhook deliveries: a dispatcher in every instance sends pending deliveries, signed, with
//! exponential backoff. Deliveries are leased by compare-and-set, so instances sharing one
//! database never send the same attempt at once; a crashed instance's leases run out and the
//! deliveries are taken over. Receivers on private, loopback or link-local addresses are refused
//! unless configured otherwise, at subscription and again at every connection.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::db::{self, Db, DbError};

/// The header carrying the signature: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub const SIGNATURE_HEADER: &str = "Renkei-Signature";

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Allow receivers on private, loopback and link-local addresses (tests, closed networks).
    pub allow_private: bool,
    /// Between looks for due deliveries; zero: this instance does not deliver.
    pub poll_interval: Duration,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: i32,
    /// The first retry waits this long; each next one twice as long (at most an hour).
    pub backoff_base: Duration,
    /// How long an instance holds a delivery it is sending.
    pub lease: Duration,
    /// Per attempt.
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private: false,
            poll_interval: Duration::from_secs(1),
            max_attempts: 8,
            backoff_base: Duration::from_secs(10),
            lease: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Addresses a receiver may not have unless allowed: loopback, private (RFC 1918, ULA),
/// link-local, shared (CGNAT), unspecified, multicast and broadcast.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || (seg[0] & 0xffc0) == 0xfec0
                // NAT64 (can reach IPv4 internals), 6to4, IPv4-compatible.
                || (seg[0] == 0x64 && seg[1] == 0xff9b)
                || seg[0] == 0x2002
                || (seg[..6] == [0, 0, 0, 0, 0, 0] && !v6.is_loopback() && !v6.is_unspecified())
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

/// Resolves `host:port` and keeps the addresses a receiver may have.
fn allowed_addrs(host_port: &str, allow_private: bool) -> std::io::Result<Vec<SocketAddr>> {
    let all: Vec<SocketAddr> = host_port.to_socket_addrs()?.collect();
    let ok: Vec<SocketAddr> = all.into_iter().filter(|a| allow_private || !is_internal(a.ip())).collect();
    if ok.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "the receiver's address is private, loopback or link-local",
        ));
    }
    Ok(ok)
}

/// Checks a receiver URL: http(s), a host, no credentials, and an address that may be called.
pub fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, String> {
    let u = url::Url::parse(raw.trim()).map_err(|_| "must be an absolute http(s) URL".to_owned())?;
    // Events carry patient data: cleartext only where private receivers are allowed (closed networks).
    if !(u.scheme() == "https" || (u.scheme() == "http" && allow_private)) {
        return Err("must be an https URL".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let host = u.host_str().ok_or("must name a host")?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = u.port_or_known_default().unwrap_or(443);
    allowed_addrs(&format!("{host}:{port}"), allow_private).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => "names a private, loopback or link-local address".to_owned(),
        _ => "names a host that does not resolve".to_owned(),
    })?;
    Ok(u)
}

/// The signature header's value for `body` at `t` (unix seconds).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait before attempt `n + 1` after `n` failed ones.
pub fn backoff(base: Duration, failed: i32) -> Duration {
    let factor = 2u32.saturating_pow(u32::try_from(failed.max(1) - 1).unwrap_or(0).min(20));
    base.saturating_mul(factor).min(Duration::from_secs(3600))
}

/// Sends one attempt; `Ok(status)` when the receiver answered.
fn post(settings: &WebhookSettings, job: &db::webhooks::Job, event: &db::events::Event) -> Result<u16, String> {
    let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
    let t = Utc::now().timestamp();
    let allow = settings.allow_private;
    // Resolve again at connection time and refuse internal addresses then too (DNS rebinding).
    let agent = ureq::AgentBuilder::new()
        .timeout(settings.timeout)
        .redirects(0)
        .resolver(move |addr: &str| allowed_addrs(addr, allow))
        .build();
    let result = agent
        .post(&job.url)
        .set("Content-Type", "application/json")
        .set("User-Agent", "Renkei-Webhooks/1")
        .set(SIGNATURE_HEADER, &sign(&job.secret, t, &body))
        .set("Renkei-Event-Type", &event.kind)
        .set("Renkei-Event-Seq", &event.seq.to_string())
        .set("Renkei-Delivery-Id", &job.delivery_id)
        .send_bytes(&body);
    match result {
        Ok(r) => Ok(r.status()),
        Err(ureq::Error::Status(code, _)) => Ok(code),
        Err(ureq::Error::Transport(t)) => Err(t.kind().to_string()),
    }
}

/// Looks for due deliveries and sends them, every `poll_interval`, for as long as the server runs.
pub async fn dispatch(db: Db, sequencer: crate::sequencer::Sequencer, settings: WebhookSettings) {
    let me = format!("instance:{}", uuid::Uuid::now_v7());
    let mut tick = tokio::time::interval(settings.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Deliveries are written when events are numbered: number what is waiting first.
        if let Err(e) = sequencer.catch_up_events().await {
            tracing::warn!(error = %e, "events could not be numbered before dispatch");
        }
        if let Err(e) = dispatch_once(&db, &settings, &me).await {
            tracing::warn!(error = %e, "webhook dispatch failed");
        }
    }
}

/// One look: every due delivery this instance can lease is sent, concurrently.
pub async fn dispatch_once(db: &Db, settings: &WebhookSettings, me: &str) -> Result<usize, DbError> {
    let due = db.read(|c| db::webhooks::due(c, Utc::now(), 32)).await?;
    let sends = due.into_iter().map(|id| {
        let (db, settings, me) = (db.clone(), settings.clone(), me.to_owned());
        async move { send_one(&db, &settings, &me, &id).await }
    });
    let results = futures_util::future::join_all(sends).await;
    let mut sent = 0;
    for r in results {
        match r {
            Ok(true) => sent += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "a webhook delivery could not be recorded"),
        }
    }
    Ok(sent)
}

async fn send_one(db: &Db, settings: &WebhookSettings, me: &str, id: &str) -> Result<bool, DbError> {
    let now = Utc::now();
    let until = now + chrono::Duration::from_std(settings.lease).unwrap_or_else(|_| chrono::Duration::seconds(60));
    let (m, i) = (me.to_owned(), id.to_owned());
    if !db.write(move |c| db::webhooks::lease(c, &i, &m, now, until)).await? {
        return Ok(false);
    }
    let i = id.to_owned();
    let found = db
        .write(move |c| {
            let Some(job) = db::webhooks::job(c, &i)? else { return Ok::<_, DbError>(None) };
            let event = db::events::get(c, job.event_seq)?;
            Ok(Some((job, event)))
        })
        .await?;
    let Some((job, event)) = found else { return Ok(false) };
    let s = settings.clone();
    let started = Instant::now();
    let outcome = actix_web::web::block(move || {
        let r = post(&s, &job, &event);
        (job, r)
    })
    .await
    .map_err(|e| DbError::Other(e.to_string()))?;
    let (job, result) = outcome;
    let ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status, error) = match &result {
        Ok(code) => (Some(*code), (!(200..300).contains(code)).then(|| format!("the receiver answered {code}"))),
        Err(e) => (None, Some(e.clone())),
    };
    let delivered = status.is_some_and(|c| (200..300).contains(&c));
    let failed_so_far = job.attempts + 1;
    let next = (!delivered && failed_so_far < settings.max_attempts).then(|| {
        Utc::now()
            + chrono::Duration::from_std(backoff(settings.backoff_base, failed_so_far))
                .unwrap_or_else(|_| chrono::Duration::hours(1))
    });
    let m = me.to_owned();
    db.write(move |c| db::webhooks::record(c, &job, &m, status, error.as_deref(), ms, next, delivered)).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["64:ff9b::a9fe:a9fe", "2002:a00::1", "::a00:1", "198.18.0.1", "240.0.0.1", "fec0::1"] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "133.1.1.1", "2001:db8::1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
        assert!(check_url("http://127.0.0.1:9/hook", false).is_err());
        assert!(check_url("http://127.0.0.1:9/hook", true).is_ok());
        assert!(check_url("ftp://example.org/", true).is_err());
        assert!(check_url("http://8.8.8.8/", false).unwrap_err().contains("https"));
        assert!(check_url("https://user:pw@example.org/", true).is_err());
    }

    #[test]
    fn signatures_cover_the_time_and_the_body() {
        let s = sign("secret", 1_700_000_000, b"{}");
        assert!(s.starts_with("t=1700000000,v1="));
        assert_ne!(s, sign("secret", 1_700_000_001, b"{}"));
        assert_ne!(s, sign("secret", 1_700_000_000, b"{ }"));
        assert_ne!(s, sign("other", 1_700_000_000, b"{}"));
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 1), Duration::from_secs(10));
        assert_eq!(backoff(base, 3), Duration::from_secs(40));
        assert_eq!(backoff(base, 30), Duration::from_secs(3600));
    }
}
