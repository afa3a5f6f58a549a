//! Instants and Japan dates. Requests may carry any offset; everything is stored and answered
//! in UTC. Calendar days (coverage notices, case dates) are days in Japan (JST, UTC+9, no DST).

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::error::FieldError;

/// Japan Standard Time.
pub fn jst() -> FixedOffset {
    // 9 hours is always a valid offset; the fallback is never taken.
    FixedOffset::east_opt(9 * 3600).unwrap_or(chrono::Offset::fix(&Utc))
}

/// Today's date in Japan.
pub fn today_jst(now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&jst()).date_naive()
}

/// The instant a Japan calendar day starts.
pub fn start_of_day_jst(day: NaiveDate) -> DateTime<Utc> {
    match jst().from_local_datetime(&day.and_time(chrono::NaiveTime::MIN)) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        // A fixed offset has neither gaps nor folds.
        _ => day.and_time(chrono::NaiveTime::MIN).and_utc(),
    }
}

/// Parses an RFC 3339 instant with any offset. A `+` decoded as a space from a query string is
/// put back, so `?at=2026-04-01T09:00:00+09:00` works unencoded.
pub fn parse_instant(field: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    let parsed = DateTime::parse_from_rfc3339(value.trim())
        .or_else(|_| DateTime::parse_from_rfc3339(&value.trim().replace(' ', "+")));
    match parsed {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "invalid_format",
                "must be an RFC 3339 time such as 2026-04-01T09:00:00+09:00",
            ));
            None
        }
    }
}

/// Parses a `YYYY-MM-DD` date.
pub fn parse_date(field: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.push(FieldError::new(field, "invalid_format", "must be a date such as 2026-04-01"));
            None
        }
    }
}

/// An instant as stored: UTC, microsecond precision (what both backends keep).
pub fn to_db(t: DateTime<Utc>) -> NaiveDateTime {
    use chrono::Timelike;
    let n = t.naive_utc();
    n.with_nanosecond(n.nanosecond() / 1000 * 1000).unwrap_or(n)
}

/// A half-open period `[starts_at, ends_at)`; `ends_at = None` is open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
}

impl Period {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.starts_at <= t && self.ends_at.is_none_or(|end| t < end)
    }

    /// Whether the period shares any instant with `[from, to)`.
    pub fn overlaps(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.starts_at < to && self.ends_at.is_none_or(|end| from < end)
    }
}

/// Checks a bounded period's order: `ends_at` must be after `starts_at`.
pub fn check_order(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>, errors: &mut Vec<FieldError>) -> bool {
    if ends_at <= starts_at {
        errors.push(FieldError::new("ends_at", "invalid_period", "must be after starts_at"));
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn offsets_are_normalised_to_utc_and_query_plus_signs_survive() {
        let mut e = Vec::new();
        assert_eq!(parse_instant("at", "2026-04-01T09:00:00+09:00", &mut e), Some(t("2026-04-01T00:00:00Z")));
        assert_eq!(parse_instant("at", "2026-04-01T09:00:00 09:00", &mut e), Some(t("2026-04-01T00:00:00Z")));
        assert!(parse_instant("at", "2026-04-01 09:00", &mut e).is_none());
        assert_eq!(e.len(), 1);
    }

    #[test]
    fn periods_are_half_open() {
        let p = Period { starts_at: t("2026-04-01T00:00:00Z"), ends_at: Some(t("2026-04-02T00:00:00Z")) };
        assert!(p.contains(t("2026-04-01T00:00:00Z")));
        assert!(p.contains(t("2026-04-01T23:59:59.999999Z")));
        assert!(!p.contains(t("2026-04-02T00:00:00Z")));
        assert!(!p.contains(t("2026-03-31T23:59:59Z")));
        assert!(p.overlaps(t("2026-04-01T12:00:00Z"), t("2026-04-03T00:00:00Z")));
        assert!(!p.overlaps(t("2026-04-02T00:00:00Z"), t("2026-04-03T00:00:00Z")));
        let open = Period { starts_at: t("2026-04-01T00:00:00Z"), ends_at: None };
        assert!(open.contains(t("2099-01-01T00:00:00Z")));
    }

    #[test]
    fn japan_days_start_at_15_utc_the_day_before() {
        let day = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
        assert_eq!(start_of_day_jst(day), t("2026-03-31T15:00:00Z"));
        assert_eq!(today_jst(t("2026-03-31T15:00:00Z")), day);
        assert_eq!(today_jst(t("2026-03-31T14:59:59Z")), day.pred_opt().unwrap());
    }
}
