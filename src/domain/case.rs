//! Cases (DOMAIN.md §1): one period of home care for one patient, run by one managing
//! organization. The state machine is data: [`transition`] is the only way a status changes.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{CaseId, OrganizationId, PatientId};

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Referred to the base; not yet under home care.
    Referred,
    /// Under home care, with a primary physician.
    Active,
    /// Temporarily in hospital.
    OnHold,
    Closed,
    Cancelled,
}

impl CaseStatus {
    /// Open cases count against "one open case per patient per managing organization".
    pub fn is_open(self) -> bool {
        matches!(self, CaseStatus::Referred | CaseStatus::Active | CaseStatus::OnHold)
    }

    pub const OPEN: [CaseStatus; 3] = [CaseStatus::Referred, CaseStatus::Active, CaseStatus::OnHold];
}

/// Why a case closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    DiedAtHome,
    DiedInHospital,
    Moved,
    LongTermAdmission,
    Recovered,
    Other,
}

/// What can happen to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseEvent {
    Activate,
    Hold,
    Resume,
    Close,
    Cancel,
}

impl CaseEvent {
    /// The audit action of the transition.
    pub fn action(self) -> &'static str {
        match self {
            CaseEvent::Activate => "case.activate",
            CaseEvent::Hold => "case.hold",
            CaseEvent::Resume => "case.resume",
            CaseEvent::Close => "case.close",
            CaseEvent::Cancel => "case.cancel",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CaseEvent::Activate => "activate",
            CaseEvent::Hold => "hold",
            CaseEvent::Resume => "resume",
            CaseEvent::Close => "close",
            CaseEvent::Cancel => "cancel",
        }
    }
}

/// A transition the current state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    pub from: CaseStatus,
    pub event: CaseEvent,
}

/// `referred → active ⇄ on_hold → closed`, and `referred → cancelled`.
pub fn transition(from: CaseStatus, event: CaseEvent) -> Result<CaseStatus, InvalidTransition> {
    use CaseEvent as E;
    use CaseStatus as S;
    match (from, event) {
        (S::Referred, E::Activate) => Ok(S::Active),
        (S::Active, E::Hold) => Ok(S::OnHold),
        (S::OnHold, E::Resume) => Ok(S::Active),
        (S::Active | S::OnHold, E::Close) => Ok(S::Closed),
        (S::Referred, E::Cancel) => Ok(S::Cancelled),
        _ => Err(InvalidTransition { from, event }),
    }
}

/// A case as stored and answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Case {
    pub id: CaseId,
    pub patient_id: PatientId,
    pub managing_organization_id: OrganizationId,
    pub status: CaseStatus,
    /// The Japan date home care started (set on activation).
    pub started_on: Option<NaiveDate>,
    /// The Japan date the case closed or was cancelled.
    pub ended_on: Option<NaiveDate>,
    pub close_reason: Option<CloseReason>,
    /// Free text for the team (no clinical record: keep it short).
    pub notes: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One step of a case's status history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusChange {
    pub from_status: Option<CaseStatus>,
    pub to_status: CaseStatus,
    pub at: DateTime<Utc>,
    /// The token subject that made the change.
    pub actor: String,
    pub close_reason: Option<CloseReason>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use CaseEvent as E;
    use CaseStatus as S;

    #[test]
    fn the_allowed_paths() {
        assert_eq!(transition(S::Referred, E::Activate), Ok(S::Active));
        assert_eq!(transition(S::Active, E::Hold), Ok(S::OnHold));
        assert_eq!(transition(S::OnHold, E::Resume), Ok(S::Active));
        assert_eq!(transition(S::Active, E::Close), Ok(S::Closed));
        assert_eq!(transition(S::OnHold, E::Close), Ok(S::Closed));
        assert_eq!(transition(S::Referred, E::Cancel), Ok(S::Cancelled));
    }

    #[test]
    fn everything_else_is_refused() {
        let all_states = [S::Referred, S::Active, S::OnHold, S::Closed, S::Cancelled];
        let all_events = [E::Activate, E::Hold, E::Resume, E::Close, E::Cancel];
        let allowed = all_states
            .iter()
            .flat_map(|s| all_events.iter().map(move |e| (*s, *e)))
            .filter(|(s, e)| transition(*s, *e).is_ok())
            .count();
        assert_eq!(allowed, 6);
        assert!(transition(S::Referred, E::Close).is_err(), "a referral is cancelled, not closed");
        assert!(transition(S::Closed, E::Activate).is_err(), "closed is final");
        assert!(transition(S::Cancelled, E::Activate).is_err(), "cancelled is final");
        assert!(transition(S::Active, E::Cancel).is_err());
    }
}
