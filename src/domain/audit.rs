//! The access log (DOMAIN.md §7, MHLW security guideline v6): every access to patient data —
//! reads, changes, exports and refused attempts — is one row saying who, when, what and how it
//! ended. Rows are hash-chained: each row's hash covers its content and the previous row's hash,
//! so a changed, removed or inserted row breaks the chain from there on.

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::ToSchema;

/// How an access ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// 401/403: the caller may not do this.
    Denied,
    /// 404: missing, or not visible to the caller.
    NotFound,
    /// 400/409/412/413/415/422/428: refused as asked.
    Rejected,
    /// 5xx.
    Error,
}

impl Outcome {
    pub fn from_status(status: u16) -> Outcome {
        match status {
            200..=399 => Outcome::Success,
            401 | 403 => Outcome::Denied,
            404 => Outcome::NotFound,
            400..=499 => Outcome::Rejected,
            _ => Outcome::Error,
        }
    }
}

/// Why the data was accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Care of one's own patients.
    Normal,
    /// Emergency access outside the caller's care teams (`X-Break-Glass`).
    BreakGlass,
}

/// One access, before it is placed in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub id: String,
    pub at: DateTime<Utc>,
    pub request_id: String,
    pub actor_sub: String,
    pub actor_org: String,
    pub actor_roles: Vec<String>,
    /// Set when the caller is an API client.
    pub client_id: Option<String>,
    /// e.g. `case.read`, `case.activate`, `patient.list`, `case.coverage_notice`.
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub patient_id: Option<String>,
    pub outcome: Outcome,
    pub status: u16,
    pub purpose: Purpose,
    /// The break-glass reason, or other context given by the caller.
    pub reason: Option<String>,
}

/// A row of the log as stored and answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Event {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    #[serde(flatten)]
    #[schema(inline, value_type = Object)]
    pub entry: Entry,
    pub prev_hash: String,
    pub hash: String,
}

/// The hash before the first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of a row: HMAC-SHA-256, under a key kept outside the database, over its fields in a
/// fixed order (separated by a unit separator that no field may contain unescaped) and the
/// previous row's hash. Without the key, nobody with only database access can re-hash rows they
/// changed.
pub fn chain_hash(key: &[u8], seq: i64, e: &Entry, prev_hash: &str) -> String {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut h) = Hmac::<Sha256>::new_from_slice(key) else { return String::new() };
    let fields: [&str; 15] = [
        &seq.to_string(),
        &e.id,
        &e.at.to_rfc3339_opts(SecondsFormat::Micros, true),
        &e.request_id,
        &e.actor_sub,
        &e.actor_org,
        &e.actor_roles.join(","),
        e.client_id.as_deref().unwrap_or(""),
        &e.action,
        &e.resource_type,
        e.resource_id.as_deref().unwrap_or(""),
        e.patient_id.as_deref().unwrap_or(""),
        &format!("{:?}/{}/{:?}", e.outcome, e.status, e.purpose),
        e.reason.as_deref().unwrap_or(""),
        prev_hash,
    ];
    for f in fields {
        h.update(f.replace('\u{1f}', "\u{1f}\u{1f}").as_bytes());
        h.update(&[0x1f]);
    }
    hex::encode(h.finalize().into_bytes())
}

/// The first row whose link is broken, if any: checks each row's hash and that it points at
/// the row before it, and that `seq` runs without gaps from `first_seq`.
pub fn first_broken(key: &[u8], events: &[Event], mut prev_hash: String, mut expected_seq: i64) -> Option<i64> {
    for ev in events {
        if ev.seq != expected_seq
            || ev.prev_hash != prev_hash
            || chain_hash(key, ev.seq, &ev.entry, &ev.prev_hash) != ev.hash
        {
            return Some(expected_seq.min(ev.seq));
        }
        prev_hash = ev.hash.clone();
        expected_seq += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"test-audit-key-test-audit-key-32";

    #[test]
    fn without_the_key_a_rewritten_chain_does_not_verify() {
        let c = chain(3);
        assert_eq!(first_broken(b"another-key-another-key-another!", &c, GENESIS.into(), 1), Some(1));
    }

    fn entry(n: u8) -> Entry {
        Entry {
            id: format!("id-{n}"),
            at: chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 4, 1, 9, 0, n.into()).unwrap(),
            request_id: "r".into(),
            actor_sub: "s".into(),
            actor_org: "o".into(),
            actor_roles: vec!["coordinator".into()],
            client_id: None,
            action: "case.read".into(),
            resource_type: "case".into(),
            resource_id: Some("c".into()),
            patient_id: Some("p".into()),
            outcome: Outcome::Success,
            status: 200,
            purpose: Purpose::Normal,
            reason: None,
        }
    }

    fn chain(n: u8) -> Vec<Event> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|i| {
                let e = entry(i);
                let hash = chain_hash(KEY, i.into(), &e, &prev);
                let ev = Event { seq: i.into(), entry: e, prev_hash: prev.clone(), hash: hash.clone() };
                prev = hash;
                ev
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(first_broken(KEY, &chain(5), GENESIS.into(), 1), None);
    }

    #[test]
    fn a_changed_field_breaks_the_chain_at_that_row() {
        let mut c = chain(5);
        c[2].entry.actor_sub = "someone-else".into();
        assert_eq!(first_broken(KEY, &c, GENESIS.into(), 1), Some(3));
        let mut c = chain(5);
        c[3].entry.outcome = Outcome::Denied;
        assert_eq!(first_broken(KEY, &c, GENESIS.into(), 1), Some(4));
    }

    #[test]
    fn a_removed_row_breaks_the_chain() {
        let mut c = chain(5);
        c.remove(1);
        assert_eq!(first_broken(KEY, &c, GENESIS.into(), 1), Some(2));
    }

    #[test]
    fn separators_inside_fields_cannot_forge_another_split() {
        let mut a = entry(1);
        let mut b = entry(1);
        a.actor_sub = "x\u{1f}y".into();
        a.actor_org = "z".into();
        b.actor_sub = "x".into();
        b.actor_org = "y\u{1f}z".into();
        assert_ne!(chain_hash(KEY, 1, &a, GENESIS), chain_hash(KEY, 1, &b, GENESIS));
    }

    #[test]
    fn outcomes_from_statuses() {
        assert_eq!(Outcome::from_status(200), Outcome::Success);
        assert_eq!(Outcome::from_status(403), Outcome::Denied);
        assert_eq!(Outcome::from_status(404), Outcome::NotFound);
        assert_eq!(Outcome::from_status(409), Outcome::Rejected);
        assert_eq!(Outcome::from_status(503), Outcome::Error);
    }
}
