//! "Who covers this patient right now?" (DOMAIN.md §2). At an instant: the primary unless
//! absent; else the secondary unless absent; else the managing organization's on-call physician;
//! else nobody, and the coordinator must act. The answer names every step it walked and why
//! each was skipped. The same function, walked over a range of days, makes the patient's written
//! coverage notice.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::care_team::{holder_at, Member, TeamRole};
use super::ids::PractitionerId;
use super::schedule::{Absence, Shift};
use super::time::start_of_day_jst;

/// How the covering physician was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Primary,
    Secondary,
    OnCall,
}

/// Why a step of the chain was passed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Skipped {
    /// The physician is absent at that instant.
    Absent,
    /// Nobody holds the slot at that instant.
    NoneAssigned,
    /// No on-call shift of the managing organization covers that instant.
    NotOnDuty,
    /// The physician has been deactivated in the directory.
    Inactive,
}

/// One step of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Step {
    pub practitioner_id: Option<PractitionerId>,
    pub role: Via,
    /// Why this step was passed over; `null` on the step that answered.
    pub skipped: Option<Skipped>,
}

/// The answer at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub practitioner_id: Option<PractitionerId>,
    pub via: Option<Via>,
    pub chain: Vec<Step>,
}

/// Everything cover depends on, for the instants in question (the caller loads only what
/// overlaps them: a bounded number of queries, whatever the size of the region).
#[derive(Debug, Default)]
pub struct Facts {
    /// Primary and secondary assignments of the case.
    pub members: Vec<Member>,
    /// On-call shifts of the managing organization.
    pub shifts: Vec<Shift>,
    /// Absences of every practitioner above.
    pub absences: Vec<Absence>,
    /// Practitioners deactivated in the directory.
    pub inactive: HashSet<PractitionerId>,
}

impl Facts {
    fn unavailable(&self, who: PractitionerId, at: DateTime<Utc>) -> Option<Skipped> {
        if self.inactive.contains(&who) {
            Some(Skipped::Inactive)
        } else if self.absences.iter().any(|a| a.practitioner_id == who && a.period().contains(at)) {
            Some(Skipped::Absent)
        } else {
            None
        }
    }

    /// Walks the chain at `at`.
    pub fn resolve(&self, at: DateTime<Utc>) -> Resolution {
        let mut chain = Vec::new();
        for (role, via) in [(TeamRole::PrimaryPhysician, Via::Primary), (TeamRole::SecondaryPhysician, Via::Secondary)]
        {
            match holder_at(&self.members, role, at) {
                None => chain.push(Step { practitioner_id: None, role: via, skipped: Some(Skipped::NoneAssigned) }),
                Some(m) => match self.unavailable(m.practitioner_id, at) {
                    Some(why) => {
                        chain.push(Step { practitioner_id: Some(m.practitioner_id), role: via, skipped: Some(why) })
                    }
                    None => return Self::answer(chain, m.practitioner_id, via),
                },
            }
        }
        let mut on_duty: Vec<&Shift> = self.shifts.iter().filter(|s| s.period().contains(at)).collect();
        on_duty.sort_by_key(|s| (s.starts_at, s.id));
        if on_duty.is_empty() {
            chain.push(Step { practitioner_id: None, role: Via::OnCall, skipped: Some(Skipped::NotOnDuty) });
        }
        for shift in on_duty {
            match self.unavailable(shift.practitioner_id, at) {
                Some(why) => chain.push(Step {
                    practitioner_id: Some(shift.practitioner_id),
                    role: Via::OnCall,
                    skipped: Some(why),
                }),
                None => return Self::answer(chain, shift.practitioner_id, Via::OnCall),
            }
        }
        Resolution { practitioner_id: None, via: None, chain }
    }

    fn answer(mut chain: Vec<Step>, who: PractitionerId, via: Via) -> Resolution {
        chain.push(Step { practitioner_id: Some(who), role: via, skipped: None });
        Resolution { practitioner_id: Some(who), via: Some(via), chain }
    }

    /// Who covers when, day by day (Japan days `from..=to`): each day cut where any fact
    /// changes, neighbouring pieces with the same answer merged.
    pub fn notice(&self, from: NaiveDate, to: NaiveDate) -> Vec<Day> {
        let mut days = Vec::new();
        let mut day = from;
        while day <= to {
            let Some(next) = day.succ_opt() else { break };
            let (start, end) = (start_of_day_jst(day), start_of_day_jst(next));
            let mut cuts: BTreeSet<DateTime<Utc>> = BTreeSet::from([start]);
            let boundaries = self
                .members
                .iter()
                .flat_map(|m| [Some(m.starts_at), m.ends_at])
                .chain(self.shifts.iter().flat_map(|s| [Some(s.starts_at), Some(s.ends_at)]))
                .chain(self.absences.iter().flat_map(|a| [Some(a.starts_at), Some(a.ends_at)]))
                .flatten();
            cuts.extend(boundaries.filter(|t| start < *t && *t < end));
            let cuts: Vec<_> = cuts.into_iter().collect();
            let mut pieces: Vec<Piece> = Vec::new();
            for (i, from_t) in cuts.iter().enumerate() {
                let to_t = cuts.get(i + 1).copied().unwrap_or(end);
                let r = self.resolve(*from_t);
                match pieces.last_mut() {
                    Some(last) if last.practitioner_id == r.practitioner_id && last.via == r.via => last.to = to_t,
                    _ => pieces.push(Piece { from: *from_t, to: to_t, practitioner_id: r.practitioner_id, via: r.via }),
                }
            }
            days.push(Day { date: day, pieces });
            day = next;
        }
        days
    }
}

/// One day of a coverage notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    pub date: NaiveDate,
    pub pieces: Vec<Piece>,
}

/// A stretch of a day with one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub practitioner_id: Option<PractitionerId>,
    pub via: Option<Via>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::{AbsenceId, CaseId, MemberId, OrganizationId, ShiftId};
    use chrono::TimeZone;

    fn t(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 4, d, h, 0, 0).unwrap()
    }

    fn member(who: PractitionerId, role: TeamRole, from: DateTime<Utc>, to: Option<DateTime<Utc>>) -> Member {
        Member { id: MemberId::new(), case_id: CaseId::new(), practitioner_id: who, role, starts_at: from, ends_at: to }
    }

    fn absence(who: PractitionerId, from: DateTime<Utc>, to: DateTime<Utc>) -> Absence {
        Absence {
            id: AbsenceId::new(),
            practitioner_id: who,
            starts_at: from,
            ends_at: to,
            reason: None,
            created_at: from,
        }
    }

    fn shift(who: PractitionerId, from: DateTime<Utc>, to: DateTime<Utc>) -> Shift {
        Shift {
            id: ShiftId::new(),
            organization_id: OrganizationId::new(),
            practitioner_id: who,
            starts_at: from,
            ends_at: to,
            created_at: from,
        }
    }

    struct World {
        primary: PractitionerId,
        secondary: PractitionerId,
        on_call: PractitionerId,
        facts: Facts,
    }

    /// Primary all along; absent 1st 09:00–18:00 UTC. Secondary absent 1st 12:00–15:00.
    /// On-call shift 1st 12:00–14:00.
    fn world() -> World {
        let (primary, secondary, on_call) = (PractitionerId::new(), PractitionerId::new(), PractitionerId::new());
        let facts = Facts {
            members: vec![
                member(primary, TeamRole::PrimaryPhysician, t(1, 0), None),
                member(secondary, TeamRole::SecondaryPhysician, t(1, 0), None),
            ],
            shifts: vec![shift(on_call, t(1, 12), t(1, 14))],
            absences: vec![absence(primary, t(1, 9), t(1, 18)), absence(secondary, t(1, 12), t(1, 15))],
            inactive: HashSet::new(),
        };
        World { primary, secondary, on_call, facts }
    }

    #[test]
    fn the_primary_answers_when_present_including_the_instant_an_absence_ends() {
        let w = world();
        let r = w.facts.resolve(t(1, 8));
        assert_eq!((r.practitioner_id, r.via), (Some(w.primary), Some(Via::Primary)));
        assert_eq!(r.chain.len(), 1);
        assert_eq!(w.facts.resolve(t(1, 18)).via, Some(Via::Primary), "absences are half-open");
    }

    #[test]
    fn the_secondary_covers_from_the_instant_the_primary_leaves() {
        let w = world();
        let r = w.facts.resolve(t(1, 9));
        assert_eq!((r.practitioner_id, r.via), (Some(w.secondary), Some(Via::Secondary)));
        assert_eq!(
            r.chain[0],
            Step { practitioner_id: Some(w.primary), role: Via::Primary, skipped: Some(Skipped::Absent) }
        );
    }

    #[test]
    fn on_call_covers_when_both_are_absent_and_nobody_outside_its_shift() {
        let w = world();
        let r = w.facts.resolve(t(1, 12));
        assert_eq!((r.practitioner_id, r.via), (Some(w.on_call), Some(Via::OnCall)));
        assert_eq!(r.chain.len(), 3);
        let r = w.facts.resolve(t(1, 14));
        assert_eq!(r.practitioner_id, None, "the shift ended at 14:00 exactly");
        assert_eq!(r.chain.last().unwrap().skipped, Some(Skipped::NotOnDuty));
    }

    #[test]
    fn unassigned_and_inactive_physicians_are_skipped_with_their_reason() {
        let mut w = world();
        w.facts.members.retain(|m| m.role == TeamRole::PrimaryPhysician);
        w.facts.inactive.insert(w.primary);
        let r = w.facts.resolve(t(1, 12));
        let reasons: Vec<_> = r.chain.iter().map(|s| s.skipped).collect();
        assert_eq!(reasons, [Some(Skipped::Inactive), Some(Skipped::NoneAssigned), None]);
    }

    #[test]
    fn a_handover_switches_cover_exactly_at_its_instant() {
        let (a, b) = (PractitionerId::new(), PractitionerId::new());
        let facts = Facts {
            members: vec![
                member(a, TeamRole::PrimaryPhysician, t(1, 0), Some(t(2, 0))),
                member(b, TeamRole::PrimaryPhysician, t(2, 0), None),
            ],
            ..Facts::default()
        };
        assert_eq!(facts.resolve(t(1, 23)).practitioner_id, Some(a));
        assert_eq!(facts.resolve(t(2, 0)).practitioner_id, Some(b));
    }

    #[test]
    fn the_notice_cuts_each_japan_day_where_cover_changes() {
        let w = world();
        // The Japan day of 1 April runs from 31 March 15:00 to 1 April 15:00 UTC.
        let days =
            w.facts.notice(NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(), NaiveDate::from_ymd_opt(2026, 4, 2).unwrap());
        assert_eq!(days.len(), 2);
        let first: Vec<_> = days[0].pieces.iter().map(|p| (p.from, p.to, p.via)).collect();
        assert_eq!(
            first,
            [
                (Utc.with_ymd_and_hms(2026, 3, 31, 15, 0, 0).unwrap(), t(1, 0), None),
                (t(1, 0), t(1, 9), Some(Via::Primary)),
                (t(1, 9), t(1, 12), Some(Via::Secondary)),
                (t(1, 12), t(1, 14), Some(Via::OnCall)),
                (t(1, 14), t(1, 15), None),
            ]
        );
        let second: Vec<_> = days[1].pieces.iter().map(|p| p.via).collect();
        assert_eq!(second, [Some(Via::Secondary), Some(Via::Primary)], "the secondary is back at 15:00 UTC");
    }
}
