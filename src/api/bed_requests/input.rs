//! The bodies of `/api/v1/bed-requests`, the parsing of a new request's body, and the response
//! windows hospitals answer within (a setting).

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::{optional_id, required_id};
use crate::domain::bed::{BedKind, DeclineReason, Disposition};
use crate::domain::ids::{CaseId, OrganizationId};
use crate::domain::organization::parse_enum;
use crate::domain::text;
use crate::domain::time::parse_instant;
use crate::error::{ApiError, ApiResult, FieldError};

/// How long hospitals have to answer, by kind (configurable: `RENKEI_BED_RESPONSE_MINUTES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseWindows {
    pub emergency: Duration,
    pub urgent: Duration,
    pub respite: Duration,
}

impl Default for ResponseWindows {
    fn default() -> Self {
        ResponseWindows {
            emergency: BedKind::Emergency.default_response_window(),
            urgent: BedKind::Urgent.default_response_window(),
            respite: BedKind::Respite.default_response_window(),
        }
    }
}

impl ResponseWindows {
    pub fn of(&self, kind: BedKind) -> Duration {
        match kind {
            BedKind::Emergency => self.emergency,
            BedKind::Urgent => self.urgent,
            BedKind::Respite => self.respite,
        }
    }

    /// Parses `emergency=30,urgent=120,respite=4320` (minutes; kinds left out keep their default).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut w = ResponseWindows::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, minutes) = part.split_once('=').ok_or("expected kind=minutes")?;
            let minutes: i64 = minutes.trim().parse().map_err(|_| format!("'{minutes}' is not a number of minutes"))?;
            if !(1..=60 * 24 * 30).contains(&minutes) {
                return Err("response windows are 1 minute to 30 days".into());
            }
            let d = Duration::minutes(minutes);
            match kind.trim() {
                "emergency" => w.emergency = d,
                "urgent" => w.urgent = d,
                "respite" => w.respite = d,
                other => return Err(format!("unknown kind '{other}'")),
            }
        }
        Ok(w)
    }
}

/// The body of `POST /api/v1/bed-requests`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    #[schema(value_type = String, format = Uuid)]
    pub case_id: Option<String>,
    #[schema(value_type = BedKind)]
    pub kind: Option<String>,
    /// The hospital asked (default: the patient's active backup registration's).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub hospital_id: Option<String>,
    /// Capabilities the bed must have (`oxygen`, `suction`, …).
    pub needs: Option<Vec<String>>,
    /// When the bed is needed (default: now; required for respite).
    #[schema(value_type = Option<String>)]
    pub starts_at: Option<String>,
    /// Required for respite.
    #[schema(value_type = Option<String>)]
    pub ends_at: Option<String>,
    #[schema(value_type = String, example = "SpO2 低下、在宅酸素で改善せず")]
    pub reason: Option<String>,
}

/// The body of `POST …/accept`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInput {
    #[schema(value_type = String, format = Uuid)]
    pub bed_id: Option<String>,
    /// Default: the request's `starts_at` (also accepted as `from`).
    #[schema(value_type = Option<String>)]
    #[serde(alias = "from")]
    pub starts_at: Option<String>,
    /// The end of the allocation, exclusive (also accepted as `to`).
    #[schema(value_type = String)]
    #[serde(alias = "to")]
    pub ends_at: Option<String>,
}

/// The body of `POST …/decline`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineInput {
    #[schema(value_type = DeclineReason)]
    pub reason_code: Option<String>,
    pub note: Option<String>,
}

/// The body of `POST …/discharge`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DischargeInput {
    #[schema(value_type = Disposition)]
    pub disposition: Option<String>,
}

/// The body of `POST …/retarget`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetargetInput {
    #[schema(value_type = String, format = Uuid)]
    pub hospital_id: Option<String>,
}

pub(super) struct Parsed {
    pub(super) case_id: CaseId,
    pub(super) kind: BedKind,
    pub(super) hospital_id: Option<OrganizationId>,
    pub(super) needs: Vec<String>,
    pub(super) starts_at: DateTime<Utc>,
    pub(super) ends_at: Option<DateTime<Utc>>,
    pub(super) reason: String,
}

pub(super) fn parse_request(input: RequestInput, now: DateTime<Utc>) -> ApiResult<Parsed> {
    let mut errors = Vec::new();
    let e = &mut errors;
    let case_id = required_id("case_id", input.case_id, e);
    let kind: Option<BedKind> = crate::domain::required(e, "kind", input.kind).and_then(|k| parse_enum("kind", &k, e));
    let hospital_id = optional_id("hospital_id", input.hospital_id, e);
    let needs = crate::domain::bed::tags("needs", input.needs.unwrap_or_default(), e);
    let starts_at = match input.starts_at {
        Some(s) => parse_instant("starts_at", &s, e),
        None if kind == Some(BedKind::Respite) => {
            e.push(FieldError::new("starts_at", "required", "a respite stay is booked for a date"));
            None
        }
        None => Some(now),
    };
    let ends_at = input.ends_at.and_then(|s| parse_instant("ends_at", &s, e));
    if let (Some(s), Some(t)) = (starts_at, ends_at) {
        crate::domain::time::check_order(s, t, e);
    }
    if starts_at.is_some_and(|s| s < now - Duration::hours(1)) {
        e.push(FieldError::new("starts_at", "in_the_past", "a bed is asked for now or later"));
    }
    let reason = text::required_text("reason", input.reason, 1000, e);
    match (case_id, kind, starts_at, reason) {
        (Some(case_id), Some(kind), Some(starts_at), Some(reason)) if errors.is_empty() => {
            Ok(Parsed { case_id, kind, hospital_id, needs, starts_at, ends_at, reason })
        }
        _ => Err(ApiError::validation(errors)),
    }
}
