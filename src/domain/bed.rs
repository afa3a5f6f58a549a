//! Backup beds (後方支援病床, DOMAIN.md §5): the beds hospitals hold for home-care patients, their
//! respite rules, and the requests physicians send when a patient deteriorates or the family
//! needs rest. Pure rules; the storage layer keeps what they decide.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{BedId, BedRequestId, CaseId, OrganizationId, PatientId, RegistrationId};
use super::organization::parse_enum;
use super::text;
use super::time::jst;
use crate::error::FieldError;

/// How soon the bed is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BedKind {
    /// Now (the patient deteriorated).
    Emergency,
    /// Within the day.
    Urgent,
    /// Planned rest for the family (レスパイト入院), booked ahead.
    Respite,
}

impl BedKind {
    /// How long the hospital has to answer, by default (DOMAIN.md §5).
    pub fn default_response_window(self) -> Duration {
        match self {
            BedKind::Emergency => Duration::minutes(30),
            BedKind::Urgent => Duration::hours(2),
            BedKind::Respite => Duration::days(3),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BedStatus {
    Open,
    Closed,
}

/// A backup bed as stored and answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Bed {
    pub id: BedId,
    pub hospital_id: OrganizationId,
    pub ward: String,
    pub label: String,
    pub kinds: Vec<BedKind>,
    /// Capabilities matched against a request's needs (`oxygen`, `suction`, `isolation`, …).
    pub tags: Vec<String>,
    pub status: BedStatus,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/organizations/{id}/beds`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BedInput {
    #[schema(value_type = String, example = "3階東病棟")]
    pub ward: Option<String>,
    #[schema(value_type = String, example = "305-1")]
    pub label: Option<String>,
    #[schema(value_type = Vec<BedKind>)]
    pub kinds: Option<Vec<String>>,
    #[schema(example = json!(["oxygen", "suction"]))]
    pub tags: Option<Vec<String>>,
    /// `open` (the default) or `closed`.
    #[schema(value_type = Option<BedStatus>)]
    pub status: Option<String>,
}

/// The body of `PATCH …/beds/{bed_id}` (members replace whole).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BedPatch {
    #[schema(value_type = Option<String>)]
    pub ward: super::Patch<String>,
    #[schema(value_type = Option<String>)]
    pub label: super::Patch<String>,
    #[schema(value_type = Option<Vec<BedKind>>)]
    pub kinds: super::Patch<Vec<String>>,
    #[schema(value_type = Option<Vec<String>>)]
    pub tags: super::Patch<Vec<String>>,
    #[schema(value_type = Option<BedStatus>)]
    pub status: super::Patch<String>,
}

/// The validated fields of a bed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BedFields {
    pub ward: String,
    pub label: String,
    pub kinds: Vec<BedKind>,
    pub tags: Vec<String>,
    pub status: BedStatus,
}

/// A capability tag or a need: a code of lower-case letters, digits and `_`.
pub fn tags(field: &str, values: Vec<String>, errors: &mut Vec<FieldError>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, v) in values.into_iter().enumerate() {
        let v = v.trim().to_owned();
        let ok = (1..=40).contains(&v.len())
            && v.starts_with(|c: char| c.is_ascii_lowercase())
            && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            out.push(v);
        } else {
            errors.push(FieldError::new(format!("{field}[{i}]"), "invalid_format", "must be a code such as oxygen"));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn kinds(values: Vec<String>, errors: &mut Vec<FieldError>) -> Vec<BedKind> {
    let mut out: Vec<BedKind> =
        values.iter().enumerate().filter_map(|(i, k)| parse_enum(&format!("kinds[{i}]"), k, errors)).collect();
    out.sort();
    out.dedup();
    if out.is_empty() && !errors.iter().any(|e| e.field.starts_with("kinds")) {
        errors.push(FieldError::new("kinds", "required", "a bed takes at least one kind of request"));
    }
    out
}

impl BedFields {
    pub fn parse(input: BedInput) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let ward = text::required_text("ward", input.ward, 100, e);
        let label = text::required_text("label", input.label, 50, e);
        let kinds = kinds(super::required(e, "kinds", input.kinds).unwrap_or_default(), e);
        let tags = tags("tags", input.tags.unwrap_or_default(), e);
        let status = input.status.map_or(Some(BedStatus::Open), |s| parse_enum("status", &s, e));
        match (ward, label, status) {
            (Some(ward), Some(label), Some(status)) if errors.is_empty() => {
                Ok(BedFields { ward, label, kinds, tags, status })
            }
            _ => Err(errors),
        }
    }

    pub fn patched(&self, patch: BedPatch) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let mut next = self.clone();
        if let Some(v) = super::required_patch(e, "ward", patch.ward) {
            next.ward = text::required_text("ward", Some(v), 100, e).unwrap_or(next.ward);
        }
        if let Some(v) = super::required_patch(e, "label", patch.label) {
            next.label = text::required_text("label", Some(v), 50, e).unwrap_or(next.label);
        }
        if let Some(v) = super::required_patch(e, "kinds", patch.kinds) {
            next.kinds = kinds(v, e);
        }
        match patch.tags {
            super::Patch::Absent => {}
            super::Patch::Null => next.tags.clear(),
            super::Patch::Value(v) => next.tags = tags("tags", v, e),
        }
        if let Some(v) = super::required_patch(e, "status", patch.status) {
            next.status = parse_enum("status", &v, e).unwrap_or(next.status);
        }
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(errors)
        }
    }
}

impl Bed {
    /// Whether the bed may take a request of `kind` needing `needs` (ignoring other bookings).
    pub fn suits(&self, kind: BedKind, needs: &[String]) -> bool {
        self.status == BedStatus::Open && self.kinds.contains(&kind) && needs.iter().all(|n| self.tags.contains(n))
    }
}

/// A hospital's rules for respite admissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RespitePolicy {
    pub hospital_id: OrganizationId,
    /// Longest stay, in days (default 14).
    pub max_stay_days: i32,
    /// How many days ahead a respite stay must be asked for (default 0).
    pub min_notice_days: i32,
    /// Weekdays admissions happen on (`mon` … `sun`; default Monday to Friday).
    pub admission_weekdays: Vec<String>,
    /// Most respite days per patient per (Japan) calendar year at this hospital; `null`: no limit.
    pub yearly_limit_days: Option<i32>,
    pub version: i64,
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl RespitePolicy {
    /// The policy of a hospital that has not written one.
    pub fn default_for(hospital_id: OrganizationId) -> Self {
        RespitePolicy {
            hospital_id,
            max_stay_days: 14,
            min_notice_days: 0,
            admission_weekdays: WEEKDAYS[..5].iter().map(|d| (*d).to_owned()).collect(),
            yearly_limit_days: None,
            version: 0,
        }
    }
}

/// The body of `PUT /api/v1/organizations/{id}/respite-policy` (the whole policy).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RespitePolicyInput {
    pub max_stay_days: Option<i64>,
    pub min_notice_days: Option<i64>,
    #[schema(example = json!(["mon", "tue", "wed", "thu", "fri"]))]
    pub admission_weekdays: Option<Vec<String>>,
    pub yearly_limit_days: Option<i64>,
}

fn days(field: &str, v: Option<i64>, default: i32, min: i64, errors: &mut Vec<FieldError>) -> i32 {
    match v {
        None => default,
        Some(d) if (min..=366).contains(&d) => i32::try_from(d).unwrap_or(default),
        Some(_) => {
            errors.push(FieldError::new(field, "out_of_range", format!("must be between {min} and 366")));
            default
        }
    }
}

impl RespitePolicyInput {
    pub fn parse(self, hospital_id: OrganizationId) -> Result<RespitePolicy, Vec<FieldError>> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let mut p = RespitePolicy::default_for(hospital_id);
        p.max_stay_days = days("max_stay_days", self.max_stay_days, p.max_stay_days, 1, e);
        p.min_notice_days = days("min_notice_days", self.min_notice_days, p.min_notice_days, 0, e);
        p.yearly_limit_days = self.yearly_limit_days.map(|d| days("yearly_limit_days", Some(d), 1, 1, e));
        if let Some(w) = self.admission_weekdays {
            let mut out: Vec<String> = Vec::new();
            for (i, d) in w.iter().enumerate() {
                match WEEKDAYS.iter().position(|x| x == d) {
                    Some(_) => out.push(d.clone()),
                    None => {
                        e.push(FieldError::new(format!("admission_weekdays[{i}]"), "unknown_code", "must be mon … sun"))
                    }
                }
            }
            out.sort_by_key(|d| WEEKDAYS.iter().position(|x| x == d));
            out.dedup();
            if out.is_empty() && e.is_empty() {
                e.push(FieldError::new("admission_weekdays", "required", "at least one weekday"));
            }
            p.admission_weekdays = out;
        }
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(errors)
        }
    }
}

/// A respite rule a requested window breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleBroken {
    /// `end_required`, `max_stay`, `min_notice`, `admission_weekday` or `yearly_limit`.
    pub rule: &'static str,
    pub field: &'static str,
    pub message: String,
}

/// The length of a stay in days: the nights between the Japan dates it starts and ends on (a
/// stay within one day counts as one), whatever the hours.
pub fn stay_days(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> i64 {
    let day = |t: DateTime<Utc>| t.with_timezone(&jst()).date_naive();
    (day(ends_at) - day(starts_at)).num_days().max(i64::from(ends_at > starts_at))
}

fn weekday_code(d: Weekday) -> &'static str {
    WEEKDAYS[d.num_days_from_monday() as usize]
}

impl RespitePolicy {
    /// Checks a respite window; `used_days` are the patient's respite days at this hospital in
    /// the Japan calendar year the stay starts in.
    pub fn check(
        &self,
        starts_at: DateTime<Utc>,
        ends_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        used_days: i64,
    ) -> Result<(), RuleBroken> {
        let Some(ends_at) = ends_at else {
            return Err(RuleBroken {
                rule: "end_required",
                field: "ends_at",
                message: "a respite stay has an end".into(),
            });
        };
        let stay = stay_days(starts_at, ends_at);
        if stay > i64::from(self.max_stay_days) {
            return Err(RuleBroken {
                rule: "max_stay",
                field: "ends_at",
                message: format!("this hospital takes respite stays of at most {} days", self.max_stay_days),
            });
        }
        let start_day = starts_at.with_timezone(&jst()).date_naive();
        let today = now.with_timezone(&jst()).date_naive();
        if (start_day - today).num_days() < i64::from(self.min_notice_days) {
            return Err(RuleBroken {
                rule: "min_notice",
                field: "starts_at",
                message: format!("this hospital needs {} days' notice for a respite stay", self.min_notice_days),
            });
        }
        let weekday = weekday_code(start_day.weekday());
        if !self.admission_weekdays.iter().any(|d| d == weekday) {
            return Err(RuleBroken {
                rule: "admission_weekday",
                field: "starts_at",
                message: format!(
                    "this hospital admits respite patients on {} only",
                    self.admission_weekdays.join(", ")
                ),
            });
        }
        if let Some(limit) = self.yearly_limit_days {
            if used_days + stay > i64::from(limit) {
                return Err(RuleBroken {
                    rule: "yearly_limit",
                    field: "ends_at",
                    message: format!(
                        "this hospital allows {limit} respite days per patient per year; {used_days} are used"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Where a bed request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for the hospital's answer.
    Pending,
    /// A bed is allocated.
    Accepted,
    Declined,
    /// Withdrawn by the requester.
    Cancelled,
    /// Not answered in time.
    Expired,
    /// The patient is in the bed (the case is on hold).
    Admitted,
    /// The patient left the bed.
    Discharged,
}

/// What can happen to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestEvent {
    Accept,
    Decline,
    Cancel,
    Expire,
    Admit,
    Discharge,
}

impl RequestEvent {
    pub fn name(self) -> &'static str {
        match self {
            RequestEvent::Accept => "accept",
            RequestEvent::Decline => "decline",
            RequestEvent::Cancel => "cancel",
            RequestEvent::Expire => "expire",
            RequestEvent::Admit => "admit",
            RequestEvent::Discharge => "discharge",
        }
    }
}

/// `pending → accepted | declined | cancelled | expired`, `accepted → admitted | cancelled`,
/// `admitted → discharged`.
pub fn transition(from: RequestStatus, event: RequestEvent) -> Option<RequestStatus> {
    use RequestEvent as E;
    use RequestStatus as S;
    match (from, event) {
        (S::Pending, E::Accept) => Some(S::Accepted),
        (S::Pending, E::Decline) => Some(S::Declined),
        (S::Pending | S::Accepted, E::Cancel) => Some(S::Cancelled),
        (S::Pending, E::Expire) => Some(S::Expired),
        (S::Accepted, E::Admit) => Some(S::Admitted),
        (S::Admitted, E::Discharge) => Some(S::Discharged),
        _ => None,
    }
}

/// Why a hospital declines (the MHLW survey's reasons for refusing admissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    NoKin,
    LtcApplicationNeeded,
    CommunicationSupportNeeded,
    CancerPain,
    NeurologicalIntractableDisease,
    Dementia,
    Parkinsons,
    InfectionControl,
    Chemotherapy,
    Tracheostomy,
    TubeFeeding,
    CentralVenousNutrition,
    Drainage,
    Oxygen,
    InsulinManagement,
    StomaOrNephrostomy,
    Dialysis,
    PressureUlcer,
    ExpensiveDrugs,
    NoBedAvailable,
    Other,
}

/// How a stay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Back home: the case resumes.
    Home,
    /// Died in hospital: the case closes (`died_in_hospital`).
    Died,
    /// Stays in long-term care: the case closes (`long_term_admission`).
    LongTermAdmission,
    /// Moved away: the case closes (`moved`).
    Moved,
}

/// A bed given for a half-open period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Allocation {
    pub bed_id: BedId,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// When the bed was given back early (cancelled, or discharged before `ends_at`).
    pub released_at: Option<DateTime<Utc>>,
}

/// A hospital with free matching beds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Alternative {
    pub hospital_id: OrganizationId,
    pub free_beds: i64,
}

/// A bed request as stored and answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BedRequest {
    pub id: BedRequestId,
    pub case_id: CaseId,
    pub patient_id: PatientId,
    pub hospital_id: OrganizationId,
    pub kind: BedKind,
    pub needs: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub reason: String,
    pub status: RequestStatus,
    pub response_due_at: DateTime<Utc>,
    /// The token subject that asked.
    pub requested_by: String,
    /// The request this one re-targets.
    pub previous_request_id: Option<BedRequestId>,
    pub bed_id: Option<BedId>,
    pub allocation: Option<Allocation>,
    pub decline_reason: Option<DeclineReason>,
    pub decline_note: Option<String>,
    pub disposition: Option<Disposition>,
    pub answered_by: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
    /// After a decline or expiry: other hospitals with free matching beds for the window, read
    /// once the answer is stored (absent from an answer only if they could not be read then; a
    /// read of the request names them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alternatives: Option<Vec<Alternative>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where a pre-registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    /// Asked by the clinic or the base; the hospital has not answered.
    Requested,
    /// The patient's one backup hospital.
    Active,
    Rejected,
    /// Ended by the clinic or the base.
    Withdrawn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationEvent {
    Activate,
    Reject,
    Withdraw,
}

impl RegistrationEvent {
    pub fn name(self) -> &'static str {
        match self {
            RegistrationEvent::Activate => "activate",
            RegistrationEvent::Reject => "reject",
            RegistrationEvent::Withdraw => "withdraw",
        }
    }
}

/// `requested → active | rejected`, `requested | active → withdrawn`.
pub fn registration_transition(from: RegistrationStatus, event: RegistrationEvent) -> Option<RegistrationStatus> {
    use RegistrationEvent as E;
    use RegistrationStatus as S;
    match (from, event) {
        (S::Requested, E::Activate) => Some(S::Active),
        (S::Requested, E::Reject) => Some(S::Rejected),
        (S::Requested | S::Active, E::Withdraw) => Some(S::Withdrawn),
        _ => None,
    }
}

/// Information is exchanged at least every 3 months (DOMAIN.md §5).
pub const EXCHANGE_MONTHS: u32 = 3;

/// When the next exchange is due after one on `last`.
pub fn next_exchange_due(last: NaiveDate) -> NaiveDate {
    last.checked_add_months(chrono::Months::new(EXCHANGE_MONTHS)).unwrap_or(last)
}

/// A pre-registration as stored and answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Registration {
    pub id: RegistrationId,
    pub case_id: CaseId,
    pub patient_id: PatientId,
    pub hospital_id: OrganizationId,
    pub status: RegistrationStatus,
    pub consent_obtained_on: NaiveDate,
    /// The referral summary (診療情報提供書 の要旨).
    pub summary: String,
    pub requested_by: String,
    pub reject_reason: Option<String>,
    pub last_exchange_on: Option<NaiveDate>,
    pub next_exchange_due: Option<NaiveDate>,
    /// An active registration whose next exchange is past due (Japan date).
    pub exchange_overdue: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn policy() -> RespitePolicy {
        RespitePolicy {
            min_notice_days: 3,
            yearly_limit_days: Some(20),
            ..RespitePolicy::default_for(OrganizationId::new())
        }
    }

    #[test]
    fn respite_windows_are_checked_rule_by_rule() {
        // Now: Tuesday 2026-11-24 10:00 JST. Monday 2026-11-30 09:00 JST is six days ahead.
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 1, 0, 0).unwrap();
        let monday = Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap();
        let p = policy();
        assert_eq!(p.check(monday, Some(monday + Duration::days(14)), now, 0), Ok(()));
        let rule = |r: Result<(), RuleBroken>| r.unwrap_err().rule;
        assert_eq!(rule(p.check(monday, None, now, 0)), "end_required");
        assert_eq!(
            p.check(monday, Some(monday + Duration::days(14) + Duration::hours(10)), now, 0),
            Ok(()),
            "14 nights"
        );
        assert_eq!(rule(p.check(monday, Some(monday + Duration::days(15)), now, 0)), "max_stay");
        let thursday = Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap();
        assert_eq!(rule(p.check(thursday, Some(thursday + Duration::days(2)), now, 0)), "min_notice");
        // Saturday 2026-11-28 23:30 JST is still Saturday in Japan although Saturday 14:30 UTC.
        let saturday = Utc.with_ymd_and_hms(2026, 11, 28, 14, 30, 0).unwrap();
        assert_eq!(rule(p.check(saturday, Some(saturday + Duration::days(2)), now, 0)), "admission_weekday");
        assert_eq!(rule(p.check(monday, Some(monday + Duration::days(7)), now, 14)), "yearly_limit");
        assert_eq!(p.check(monday, Some(monday + Duration::days(6)), now, 14), Ok(()));
    }

    #[test]
    fn exchanges_are_due_three_months_on() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(next_exchange_due(d(2026, 11, 24)), d(2027, 2, 24));
        assert_eq!(next_exchange_due(d(2026, 11, 30)), d(2027, 2, 28), "the end of a shorter month");
        use RegistrationEvent as E;
        use RegistrationStatus as S;
        assert_eq!(registration_transition(S::Requested, E::Activate), Some(S::Active));
        assert_eq!(registration_transition(S::Active, E::Activate), None);
        assert_eq!(registration_transition(S::Rejected, E::Withdraw), None);
    }

    #[test]
    fn the_request_workflow_allows_only_its_steps() {
        use RequestEvent as E;
        use RequestStatus as S;
        assert_eq!(transition(S::Pending, E::Accept), Some(S::Accepted));
        assert_eq!(transition(S::Accepted, E::Accept), None);
        assert_eq!(transition(S::Accepted, E::Cancel), Some(S::Cancelled));
        assert_eq!(transition(S::Admitted, E::Cancel), None);
        assert_eq!(transition(S::Declined, E::Expire), None);
        assert_eq!(transition(S::Admitted, E::Discharge), Some(S::Discharged));
    }

    #[test]
    fn beds_suit_kinds_and_needs() {
        let bed = BedFields::parse(BedInput {
            ward: Some("3東".into()),
            label: Some("305".into()),
            kinds: Some(vec!["emergency".into(), "respite".into()]),
            tags: Some(vec!["oxygen".into(), "suction".into()]),
            status: None,
        })
        .unwrap();
        assert_eq!(bed.status, BedStatus::Open);
        let bad = BedFields::parse(BedInput {
            kinds: Some(vec![]),
            tags: Some(vec!["Oxygen!".into()]),
            ..Default::default()
        });
        let fields: Vec<String> = bad.unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["ward", "label", "kinds", "tags[0]"]);
    }
}
