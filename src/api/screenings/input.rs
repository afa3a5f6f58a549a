//! The bodies of `/api/v1/screenings`, and the parsing of a sheet's body (new, revised, or a
//! draft's patch applied to the sheet): what it names (template, patient), its dates and texts.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::required_id;
use crate::api::screening_templates::TemplateSelector;
use crate::domain::ids::{OrganizationId, PatientId, TemplateId};
use crate::domain::organization::parse_enum;
use crate::domain::screening::{Answers, Demographics, DemographicsInput, Sheet, SheetStatus};
use crate::domain::time::{parse_date, parse_instant, today_jst};
use crate::domain::{text, Patch};
use crate::error::{ApiError, ApiResult, FieldError};

/// The body of `POST /api/v1/screenings`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SheetInput {
    /// The template by code (the hospital's own, else the built-in one) and optional version.
    pub template: Option<TemplateSelector>,
    /// Or the template version by id.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub template_id: Option<String>,
    /// The base the sheet is addressed to.
    #[schema(value_type = String, format = Uuid)]
    pub base_organization_id: Option<String>,
    /// The hospital's encounter (admission) number: one sheet per encounter.
    #[schema(value_type = String, example = "ADM-2026-000123")]
    pub encounter_ref: Option<String>,
    /// An existing patient record …
    #[schema(value_type = Option<String>, format = Uuid)]
    pub patient_id: Option<String>,
    /// … or the patient as the hospital knows them.
    pub patient: Option<DemographicsInput>,
    #[schema(value_type = String, example = "2026-11-24T10:30:00+09:00")]
    pub admitted_at: Option<String>,
    #[schema(value_type = bool)]
    pub emergency_admission: Option<bool>,
    #[schema(value_type = Option<String>, format = Date)]
    pub expected_discharge_on: Option<String>,
    /// Answers by item code: `true`/`false` for boolean items, an option code for choice items.
    #[schema(value_type = Object)]
    pub answers: Option<Answers>,
    pub notes: Option<String>,
    /// `draft` or `submitted` (the default).
    #[schema(value_type = Option<SheetStatus>)]
    pub status: Option<String>,
}

/// The body of `PATCH /api/v1/screenings/{id}` (drafts; `answers` merges item by item, `null`
/// removes an answer).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SheetPatch {
    #[schema(value_type = Option<String>, format = Uuid)]
    pub base_organization_id: Patch<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub patient_id: Patch<String>,
    #[schema(value_type = Option<DemographicsInput>)]
    pub patient: Patch<DemographicsInput>,
    #[schema(value_type = Option<String>)]
    pub admitted_at: Patch<String>,
    #[schema(value_type = Option<bool>)]
    pub emergency_admission: Patch<bool>,
    #[schema(value_type = Option<String>, format = Date)]
    pub expected_discharge_on: Patch<String>,
    #[schema(value_type = Option<Object>)]
    pub answers: Patch<serde_json::Map<String, serde_json::Value>>,
    #[schema(value_type = Option<String>)]
    pub notes: Patch<String>,
}

/// The body of `POST /api/v1/screenings/{id}/revisions`: the corrected sheet, whole (the
/// encounter stays; the template defaults to the corrected sheet's).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevisionInput {
    pub template: Option<TemplateSelector>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub template_id: Option<String>,
    #[schema(value_type = String, format = Uuid)]
    pub base_organization_id: Option<String>,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub patient_id: Option<String>,
    pub patient: Option<DemographicsInput>,
    #[schema(value_type = String)]
    pub admitted_at: Option<String>,
    #[schema(value_type = bool)]
    pub emergency_admission: Option<bool>,
    #[schema(value_type = Option<String>, format = Date)]
    pub expected_discharge_on: Option<String>,
    #[schema(value_type = Object)]
    pub answers: Option<Answers>,
    pub notes: Option<String>,
}

/// The body of `POST /api/v1/screenings/{id}/accept`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInput {
    /// Link the sheet to this open case of the base; without it a new `referred` case opens.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub case_id: Option<String>,
    /// For a sheet without a patient record: the record it is (one of `patient_candidates`).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub patient_id: Option<String>,
    /// For a sheet without a patient record: register a new patient although likely matches exist.
    pub new_patient: Option<bool>,
}

/// The body of `POST /api/v1/screenings/{id}/decline`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineInput {
    #[schema(value_type = String)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneKind {
    Interview,
    Conference,
}

/// The body of `POST /api/v1/screenings/{id}/milestones`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MilestoneInput {
    #[schema(value_type = MilestoneKind)]
    pub kind: Option<String>,
    #[schema(value_type = String)]
    pub held_at: Option<String>,
}

/// How a body names its template.
#[derive(Debug, Clone)]
pub(super) enum TemplateChoice {
    Id(TemplateId),
    Code(String, Option<i32>),
}

/// How a body names its patient.
#[derive(Debug, Clone)]
pub(super) enum PatientChoice {
    Record(PatientId),
    Described(Demographics),
}

/// The parts of a sheet body that need no database to check.
#[derive(Debug, Clone)]
pub(super) struct Parsed {
    pub(super) template: Option<TemplateChoice>,
    pub(super) base: OrganizationId,
    pub(super) patient: PatientChoice,
    pub(super) admitted_at: DateTime<Utc>,
    pub(super) emergency_admission: Option<bool>,
    pub(super) expected_discharge_on: Option<NaiveDate>,
    pub(super) answers: Answers,
    pub(super) notes: Option<String>,
}

fn template_choice(
    selector: Option<TemplateSelector>,
    template_id: Option<String>,
    errors: &mut Vec<FieldError>,
) -> Option<TemplateChoice> {
    match (selector, template_id) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new("template", "conflicting", "give template or template_id, not both"));
            None
        }
        (None, Some(id)) => required_id("template_id", Some(id), errors).map(TemplateChoice::Id),
        (Some(sel), None) => {
            let code = text::required_text("template.code", sel.code, 64, errors);
            let version = match sel.version {
                None => None,
                Some(v) => match i32::try_from(v) {
                    Ok(v) if v >= 1 => Some(v),
                    _ => {
                        errors.push(FieldError::new("template.version", "out_of_range", "must be 1 or more"));
                        None
                    }
                },
            };
            code.map(|c| TemplateChoice::Code(c, version))
        }
        (None, None) => None,
    }
}

fn patient_choice(
    patient_id: Option<String>,
    patient: Option<DemographicsInput>,
    now: DateTime<Utc>,
    errors: &mut Vec<FieldError>,
) -> Option<PatientChoice> {
    match (patient_id, patient) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new("patient", "conflicting", "give patient_id or patient, not both"));
            None
        }
        (Some(id), None) => required_id("patient_id", Some(id), errors).map(PatientChoice::Record),
        (None, Some(d)) => match Demographics::parse(d, now) {
            Ok(d) => Some(PatientChoice::Described(d)),
            Err(e) => {
                errors.extend(e);
                None
            }
        },
        (None, None) => {
            errors.push(FieldError::new("patient", "required", "give patient_id or patient"));
            None
        }
    }
}

fn admission(value: Option<String>, now: DateTime<Utc>, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    let t =
        crate::domain::required(errors, "admitted_at", value).and_then(|v| parse_instant("admitted_at", &v, errors))?;
    if t > now + chrono::Duration::minutes(5) {
        errors.push(FieldError::new("admitted_at", "in_the_future", "must not be in the future"));
        return None;
    }
    Some(t)
}

fn discharge_date(
    value: Option<String>,
    admitted_at: Option<DateTime<Utc>>,
    errors: &mut Vec<FieldError>,
) -> Option<NaiveDate> {
    let d = parse_date("expected_discharge_on", &value?, errors)?;
    if admitted_at.is_some_and(|a| d < today_jst(a)) {
        errors.push(FieldError::new("expected_discharge_on", "out_of_range", "must not be before the admission day"));
        return None;
    }
    Some(d)
}

fn encounter(value: Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    text::required_text("encounter_ref", value, 64, errors)
}

pub(super) fn parse_create(input: SheetInput, now: DateTime<Utc>) -> ApiResult<(Parsed, String, SheetStatus)> {
    let mut errors = Vec::new();
    let e = &mut errors;
    let template = template_choice(input.template, input.template_id, e);
    if template.is_none() && !e.iter().any(|x| x.field.starts_with("template")) {
        e.push(FieldError::new("template", "required", "give template {code, version?} or template_id"));
    }
    let base = required_id("base_organization_id", input.base_organization_id, e);
    let encounter_ref = encounter(input.encounter_ref, e);
    let patient = patient_choice(input.patient_id, input.patient, now, e);
    let admitted_at = admission(input.admitted_at, now, e);
    let expected = discharge_date(input.expected_discharge_on, admitted_at, e);
    let answers = crate::domain::required(e, "answers", input.answers);
    let notes = text::optional_text("notes", input.notes, 2000, e);
    let status = match input.status.as_deref() {
        None => Some(SheetStatus::Submitted),
        Some(s) => match parse_enum::<SheetStatus>("status", s, e) {
            Some(st @ (SheetStatus::Draft | SheetStatus::Submitted)) => Some(st),
            Some(_) => {
                e.push(FieldError::new("status", "not_allowed", "a new sheet is a draft or submitted"));
                None
            }
            None => None,
        },
    };
    match (base, encounter_ref, patient, admitted_at, answers, status) {
        (Some(base), Some(encounter_ref), Some(patient), Some(admitted_at), Some(answers), Some(status))
            if errors.is_empty() =>
        {
            let parsed = Parsed {
                template,
                base,
                patient,
                admitted_at,
                emergency_admission: input.emergency_admission,
                expected_discharge_on: expected,
                answers,
                notes,
            };
            Ok((parsed, encounter_ref, status))
        }
        _ => Err(ApiError::validation(errors)),
    }
}

pub(super) fn parse_revision(input: RevisionInput, now: DateTime<Utc>) -> ApiResult<Parsed> {
    let mut errors = Vec::new();
    let e = &mut errors;
    let template = template_choice(input.template, input.template_id, e);
    let base = required_id("base_organization_id", input.base_organization_id, e);
    let patient = patient_choice(input.patient_id, input.patient, now, e);
    let admitted_at = admission(input.admitted_at, now, e);
    let expected = discharge_date(input.expected_discharge_on, admitted_at, e);
    let answers = crate::domain::required(e, "answers", input.answers);
    let notes = text::optional_text("notes", input.notes, 2000, e);
    match (base, patient, admitted_at, answers) {
        (Some(base), Some(patient), Some(admitted_at), Some(answers)) if errors.is_empty() => Ok(Parsed {
            template,
            base,
            patient,
            admitted_at,
            emergency_admission: input.emergency_admission,
            expected_discharge_on: expected,
            answers,
            notes,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}

/// Applies a draft's patch to what it says now.
pub(super) fn patched(current: &Sheet, patch: SheetPatch, now: DateTime<Utc>) -> ApiResult<Parsed> {
    let mut errors = Vec::new();
    let e = &mut errors;
    let base = match crate::domain::required_patch(e, "base_organization_id", patch.base_organization_id) {
        Some(v) => required_id("base_organization_id", Some(v), e).unwrap_or(current.base_organization_id),
        None => current.base_organization_id,
    };
    let mut patient = match (&current.patient_id, &current.patient) {
        (Some(id), _) => Some(PatientChoice::Record(*id)),
        (None, Some(d)) => Some(PatientChoice::Described(d.clone())),
        (None, None) => None,
    };
    match (patch.patient_id, patch.patient) {
        (Patch::Value(_), Patch::Value(_)) => {
            e.push(FieldError::new("patient", "conflicting", "give patient_id or patient, not both"))
        }
        (Patch::Value(id), _) => patient = patient_choice(Some(id), None, now, e),
        (_, Patch::Value(d)) => patient = patient_choice(None, Some(d), now, e),
        (Patch::Null, Patch::Null) => e.push(FieldError::new("patient", "required", "give patient_id or patient")),
        _ => {}
    }
    let admitted_at = match crate::domain::required_patch(e, "admitted_at", patch.admitted_at) {
        Some(v) => admission(Some(v), now, e).unwrap_or(current.admitted_at),
        None => current.admitted_at,
    };
    let expected = match patch.expected_discharge_on {
        Patch::Absent => current.expected_discharge_on,
        Patch::Null => None,
        Patch::Value(d) => discharge_date(Some(d), Some(admitted_at), e),
    };
    let mut answers = current.answers.clone();
    let mirrored = "emergency_admission";
    let sets_mirror = matches!(&patch.answers, Patch::Value(m) if m.contains_key(mirrored));
    if !patch.emergency_admission.is_absent() && !sets_mirror {
        // The flag changed: the mirrored answer follows it.
        answers.remove(mirrored);
    }
    match patch.answers {
        Patch::Absent => {}
        Patch::Null => answers.clear(),
        Patch::Value(changes) => {
            for (code, value) in changes {
                if value.is_null() {
                    answers.remove(&code);
                } else {
                    answers.insert(code, value);
                }
            }
        }
    }
    let emergency = crate::domain::required_patch(e, "emergency_admission", patch.emergency_admission)
        .or(if sets_mirror { None } else { Some(current.emergency_admission) });
    let notes = match patch.notes {
        Patch::Absent => current.notes.clone(),
        Patch::Null => None,
        Patch::Value(n) => text::optional_text("notes", Some(n), 2000, e),
    };
    match patient {
        Some(patient) if errors.is_empty() => Ok(Parsed {
            template: Some(TemplateChoice::Id(current.template.id)),
            base,
            patient,
            admitted_at,
            emergency_admission: emergency,
            expected_discharge_on: expected,
            answers,
            notes,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}
