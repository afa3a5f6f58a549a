//! The multidisciplinary care team and the primary/secondary physician system (DOMAIN.md §2–3).
//! Memberships have a role and a half-open period; ending one sets its end, nothing is deleted.
//! Primary and secondary change by handover: the old assignment ends exactly when the new starts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{CaseId, MemberId, PractitionerId};
use super::practitioner::Profession;
use super::time::Period;

/// A role in a care team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    /// 主治医
    PrimaryPhysician,
    /// 副主治医
    SecondaryPhysician,
    VisitingNurse,
    CareManager,
    Pharmacist,
    Dentist,
    Msw,
    Therapist,
    Coordinator,
    Other,
}

impl TeamRole {
    /// Primary and secondary are assigned only by handover, and only to physicians.
    pub fn is_physician_slot(self) -> bool {
        matches!(self, TeamRole::PrimaryPhysician | TeamRole::SecondaryPhysician)
    }
}

/// One membership of a care team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Member {
    pub id: MemberId,
    pub case_id: CaseId,
    pub practitioner_id: PractitionerId,
    pub role: TeamRole,
    pub starts_at: DateTime<Utc>,
    /// Exclusive; `null` while the membership lasts.
    pub ends_at: Option<DateTime<Utc>>,
}

impl Member {
    pub fn period(&self) -> Period {
        Period { starts_at: self.starts_at, ends_at: self.ends_at }
    }
}

/// Why a handover is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoverError {
    /// Only physicians may hold the primary or secondary slot.
    NotAPhysician,
    /// Deactivated practitioners take no new assignment.
    Inactive,
    /// The other slot is held by the same person at that time.
    SamePersonInBothSlots,
    /// `effective_at` is not after the start of the assignment it would end: history is never
    /// rewritten.
    BeforeCurrentStart { current_starts_at: DateTime<Utc> },
}

/// What a handover does: end the open assignment (if any) at `effective_at`, and start a new one
/// then. `None` when the practitioner already holds the slot (a repeated request is harmless).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoverPlan {
    pub end: Option<MemberId>,
    pub starts_at: DateTime<Utc>,
}

/// The facts a handover is decided on.
pub struct HandoverFacts<'a> {
    /// The open (not yet ended, or ending in the future) assignment of the slot, if any.
    pub open: Option<&'a Member>,
    /// The assignment of the other slot that is open at `effective_at`, if any.
    pub other_slot: Option<&'a Member>,
    pub profession: Profession,
    pub active: bool,
}

/// Plans a handover of a physician slot to `to` at `effective_at`.
pub fn plan_handover(
    facts: &HandoverFacts<'_>,
    to: PractitionerId,
    effective_at: DateTime<Utc>,
) -> Result<Option<HandoverPlan>, HandoverError> {
    if facts.open.is_some_and(|m| m.practitioner_id == to) {
        return Ok(None);
    }
    if facts.profession != Profession::Physician {
        return Err(HandoverError::NotAPhysician);
    }
    if !facts.active {
        return Err(HandoverError::Inactive);
    }
    if facts.other_slot.is_some_and(|m| m.practitioner_id == to) {
        return Err(HandoverError::SamePersonInBothSlots);
    }
    if let Some(open) = facts.open {
        if effective_at <= open.starts_at {
            return Err(HandoverError::BeforeCurrentStart { current_starts_at: open.starts_at });
        }
    }
    Ok(Some(HandoverPlan { end: facts.open.map(|m| m.id), starts_at: effective_at }))
}

/// The member of `role` whose period contains `at`.
pub fn holder_at(members: &[Member], role: TeamRole, at: DateTime<Utc>) -> Option<&Member> {
    members.iter().find(|m| m.role == role && m.period().contains(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: u32) -> DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 4, 1, h, 0, 0).unwrap()
    }

    fn member(who: PractitionerId, role: TeamRole, from: u32, to: Option<u32>) -> Member {
        Member {
            id: MemberId::new(),
            case_id: CaseId::new(),
            practitioner_id: who,
            role,
            starts_at: t(from),
            ends_at: to.map(t),
        }
    }

    fn facts<'a>(open: Option<&'a Member>, other: Option<&'a Member>) -> HandoverFacts<'a> {
        HandoverFacts { open, other_slot: other, profession: Profession::Physician, active: true }
    }

    #[test]
    fn a_handover_ends_the_old_assignment_exactly_when_the_new_starts() {
        let (a, b) = (PractitionerId::new(), PractitionerId::new());
        let current = member(a, TeamRole::PrimaryPhysician, 1, None);
        let plan = plan_handover(&facts(Some(&current), None), b, t(9)).unwrap().unwrap();
        assert_eq!(plan, HandoverPlan { end: Some(current.id), starts_at: t(9) });
        assert_eq!(plan_handover(&facts(None, None), b, t(9)).unwrap().unwrap().end, None);
    }

    #[test]
    fn handing_over_to_the_holder_changes_nothing() {
        let a = PractitionerId::new();
        let current = member(a, TeamRole::PrimaryPhysician, 1, None);
        assert_eq!(plan_handover(&facts(Some(&current), None), a, t(9)), Ok(None));
    }

    #[test]
    fn refusals() {
        let (a, b) = (PractitionerId::new(), PractitionerId::new());
        let current = member(a, TeamRole::PrimaryPhysician, 5, None);
        let secondary = member(b, TeamRole::SecondaryPhysician, 1, None);
        assert_eq!(
            plan_handover(&facts(Some(&current), None), b, t(5)),
            Err(HandoverError::BeforeCurrentStart { current_starts_at: t(5) })
        );
        assert_eq!(
            plan_handover(&facts(Some(&current), Some(&secondary)), b, t(9)),
            Err(HandoverError::SamePersonInBothSlots)
        );
        let nurse = HandoverFacts { profession: Profession::Nurse, ..facts(None, None) };
        assert_eq!(plan_handover(&nurse, b, t(9)), Err(HandoverError::NotAPhysician));
        let inactive = HandoverFacts { active: false, ..facts(None, None) };
        assert_eq!(plan_handover(&inactive, b, t(9)), Err(HandoverError::Inactive));
    }

    #[test]
    fn the_holder_at_an_instant_respects_half_open_periods() {
        let (a, b) = (PractitionerId::new(), PractitionerId::new());
        let team = [member(a, TeamRole::PrimaryPhysician, 1, Some(9)), member(b, TeamRole::PrimaryPhysician, 9, None)];
        assert_eq!(holder_at(&team, TeamRole::PrimaryPhysician, t(8)).unwrap().practitioner_id, a);
        assert_eq!(holder_at(&team, TeamRole::PrimaryPhysician, t(9)).unwrap().practitioner_id, b);
        assert!(holder_at(&team, TeamRole::PrimaryPhysician, t(0)).is_none());
    }
}
