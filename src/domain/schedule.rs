//! Practitioners' absences and organizations' on-call rosters (DOMAIN.md §2): the facts cover
//! resolution walks. Both are half-open periods `[starts_at, ends_at)`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{AbsenceId, OrganizationId, PractitionerId, ShiftId};
use super::required;
use super::text;
use super::time::{check_order, parse_instant, Period};
use crate::error::FieldError;

/// A practitioner's absence: away, not reachable for their patients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Absence {
    pub id: AbsenceId,
    pub practitioner_id: PractitionerId,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// e.g. 学会 (conference), 休暇 (leave).
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A shift of an organization's on-call roster (当番医).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Shift {
    pub id: ShiftId,
    pub organization_id: OrganizationId,
    pub practitioner_id: PractitionerId,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl Absence {
    pub fn period(&self) -> Period {
        Period { starts_at: self.starts_at, ends_at: Some(self.ends_at) }
    }
}

impl Shift {
    pub fn period(&self) -> Period {
        Period { starts_at: self.starts_at, ends_at: Some(self.ends_at) }
    }
}

/// The body of `POST /api/v1/practitioners/{id}/absences`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AbsenceInput {
    #[schema(value_type = String, format = DateTime, example = "2026-04-01T09:00:00+09:00")]
    pub starts_at: Option<String>,
    #[schema(value_type = String, format = DateTime, example = "2026-04-03T09:00:00+09:00")]
    pub ends_at: Option<String>,
    pub reason: Option<String>,
}

/// The body of `POST /api/v1/organizations/{id}/on-call-shifts`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShiftInput {
    #[schema(value_type = String, format = Uuid)]
    pub practitioner_id: Option<String>,
    #[schema(value_type = String, format = DateTime, example = "2026-04-01T18:00:00+09:00")]
    pub starts_at: Option<String>,
    #[schema(value_type = String, format = DateTime, example = "2026-04-02T09:00:00+09:00")]
    pub ends_at: Option<String>,
}

/// A validated absence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAbsence {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// A validated shift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShift {
    pub practitioner_id: PractitionerId,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// The longest absence one entry may cover.
const MAX_ABSENCE: Duration = Duration::days(366);
/// The longest on-call shift.
const MAX_SHIFT: Duration = Duration::days(7);

fn period(
    starts_at: Option<String>,
    ends_at: Option<String>,
    max: Duration,
    errors: &mut Vec<FieldError>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let start = required(errors, "starts_at", starts_at).and_then(|s| parse_instant("starts_at", &s, errors));
    let end = required(errors, "ends_at", ends_at).and_then(|s| parse_instant("ends_at", &s, errors));
    let (start, end) = (start?, end?);
    if !check_order(start, end, errors) {
        return None;
    }
    if end - start > max {
        errors.push(FieldError::new(
            "ends_at",
            "invalid_period",
            format!("the period may last at most {} days", max.num_days()),
        ));
        return None;
    }
    Some((start, end))
}

impl NewAbsence {
    pub fn parse(input: AbsenceInput) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let p = period(input.starts_at, input.ends_at, MAX_ABSENCE, &mut errors);
        let reason = text::optional_text("reason", input.reason, 200, &mut errors);
        match p {
            Some((starts_at, ends_at)) if errors.is_empty() => Ok(NewAbsence { starts_at, ends_at, reason }),
            _ => Err(errors),
        }
    }
}

impl NewShift {
    pub fn parse(input: ShiftInput) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let practitioner_id = required(&mut errors, "practitioner_id", input.practitioner_id).and_then(|id| {
            id.parse()
                .map_err(|_| errors.push(FieldError::new("practitioner_id", "invalid_format", "must be a UUID")))
                .ok()
        });
        let p = period(input.starts_at, input.ends_at, MAX_SHIFT, &mut errors);
        match (practitioner_id, p) {
            (Some(practitioner_id), Some((starts_at, ends_at))) if errors.is_empty() => {
                Ok(NewShift { practitioner_id, starts_at, ends_at })
            }
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_must_be_ordered_and_bounded() {
        let ok = NewAbsence::parse(AbsenceInput {
            starts_at: Some("2026-04-01T09:00:00+09:00".into()),
            ends_at: Some("2026-04-01T18:00:00+09:00".into()),
            reason: Some("学会".into()),
        })
        .unwrap();
        assert_eq!(ok.ends_at - ok.starts_at, Duration::hours(9));
        let reversed = NewAbsence::parse(AbsenceInput {
            starts_at: Some("2026-04-02T00:00:00Z".into()),
            ends_at: Some("2026-04-01T00:00:00Z".into()),
            reason: None,
        })
        .unwrap_err();
        assert_eq!(reversed[0].code, "invalid_period");
        let long = NewShift::parse(ShiftInput {
            practitioner_id: Some(PractitionerId::new().to_string()),
            starts_at: Some("2026-04-01T00:00:00Z".into()),
            ends_at: Some("2026-04-09T00:00:00Z".into()),
        })
        .unwrap_err();
        assert_eq!(long[0].field, "ends_at");
        let missing = NewShift::parse(ShiftInput::default()).unwrap_err();
        let fields: Vec<_> = missing.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["practitioner_id", "starts_at", "ends_at"]);
    }
}
