//! Patients of home care (DOMAIN.md §1, §9): who they are, where they live, their long-term-care
//! level, their key person, the electricity-dependent devices that matter in a disaster, and
//! what they consented to.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::codes::MunicipalityCode;
use super::ids::{OrganizationId, PatientId};
use super::organization::{apply_optional, parse_enum};
use super::text;
use super::Patch;
use super::{required, required_patch};
use crate::error::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
    Other,
    Unknown,
}

/// 要介護度: the long-term-care insurance level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CareLevel {
    /// 非該当・未認定
    None,
    /// 申請中
    Applying,
    /// 要支援1
    #[serde(rename = "support_1")]
    Support1,
    /// 要支援2
    #[serde(rename = "support_2")]
    Support2,
    /// 要介護1
    #[serde(rename = "care_1")]
    Care1,
    /// 要介護2
    #[serde(rename = "care_2")]
    Care2,
    /// 要介護3
    #[serde(rename = "care_3")]
    Care3,
    /// 要介護4
    #[serde(rename = "care_4")]
    Care4,
    /// 要介護5
    #[serde(rename = "care_5")]
    Care5,
}

/// An electricity-dependent device (DOMAIN.md §9: evacuation planning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    Ventilator,
    Oxygen,
    Suction,
    Dialysis,
    Other,
}

/// The family member or other person to call (キーパーソン).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyPerson {
    pub name: String,
    /// e.g. 長女 (eldest daughter), 妻, 甥.
    pub relation: String,
    pub phone: Option<String>,
}

/// What the patient (or their representative) agreed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Consent {
    /// Sharing of their information within the care team and the base.
    pub information_sharing: bool,
    /// Listing in the municipality's disaster-preparedness register.
    pub disaster_registry: bool,
}

/// A patient as stored and answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Patient {
    pub id: PatientId,
    pub name: String,
    pub kana: String,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub municipality_code: String,
    pub postal_code: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub care_level: Option<CareLevel>,
    pub key_person: Option<KeyPerson>,
    pub devices: Vec<Device>,
    pub consent: Consent,
    /// The organization that registered the patient.
    pub registered_by: OrganizationId,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/patients`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientInput {
    #[schema(value_type = String, example = "山田 花子")]
    pub name: Option<String>,
    #[schema(value_type = String, example = "ヤマダ ハナコ")]
    pub kana: Option<String>,
    #[schema(value_type = String, format = Date, example = "1938-05-12")]
    pub birth_date: Option<String>,
    #[schema(value_type = Sex)]
    pub sex: Option<String>,
    #[schema(value_type = String, example = "131016")]
    pub municipality_code: Option<String>,
    pub postal_code: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    #[schema(value_type = Option<CareLevel>)]
    pub care_level: Option<String>,
    pub key_person: Option<KeyPerson>,
    #[schema(value_type = Option<Vec<Device>>)]
    pub devices: Option<Vec<String>>,
    pub consent: Option<Consent>,
}

/// The body of `PATCH /api/v1/patients/{id}` (JSON merge patch; `consent` and `key_person`
/// are replaced whole).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PatientPatch {
    #[schema(value_type = Option<String>)]
    pub name: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub kana: Patch<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub birth_date: Patch<String>,
    #[schema(value_type = Option<Sex>)]
    pub sex: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub municipality_code: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub postal_code: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub address: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub phone: Patch<String>,
    #[schema(value_type = Option<CareLevel>)]
    pub care_level: Patch<String>,
    #[schema(value_type = Option<KeyPerson>)]
    pub key_person: Patch<KeyPerson>,
    #[schema(value_type = Option<Vec<Device>>)]
    pub devices: Patch<Vec<String>>,
    #[schema(value_type = Option<Consent>)]
    pub consent: Patch<Consent>,
}

/// The validated fields of a patient, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientFields {
    pub name: String,
    pub kana: String,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub municipality_code: String,
    pub postal_code: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub care_level: Option<CareLevel>,
    pub key_person: Option<KeyPerson>,
    pub devices: Vec<Device>,
    pub consent: Consent,
}

impl PatientFields {
    /// Parses a create body, reporting every invalid field at once. `today` bounds birth dates.
    pub fn parse(input: PatientInput, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let name = text::required_text("name", input.name, 100, e);
        let kana = required(e, "kana", input.kana).and_then(|k| text::kana("kana", k, e));
        let birth_date = required(e, "birth_date", input.birth_date).and_then(|d| birth_date(&d, today, e));
        let sex = required(e, "sex", input.sex).and_then(|s| parse_enum("sex", &s, e));
        let municipality_code =
            required(e, "municipality_code", input.municipality_code).and_then(|c| municipality(&c, e));
        let postal_code = input.postal_code.and_then(|p| text::postal_code("postal_code", &p, e));
        let address = text::optional_text("address", input.address, 300, e);
        let phone = input.phone.and_then(|p| text::phone("phone", p, e));
        let care_level = input.care_level.and_then(|c| parse_enum("care_level", &c, e));
        let key_person = input.key_person.and_then(|k| key_person(k, e));
        let devices = devices(input.devices.unwrap_or_default(), e);
        let (Some(name), Some(kana), Some(birth_date), Some(sex), Some(municipality_code)) =
            (name, kana, birth_date, sex, municipality_code)
        else {
            return Err(errors);
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            name,
            kana,
            birth_date,
            sex,
            municipality_code,
            postal_code,
            address,
            phone,
            care_level,
            key_person,
            devices,
            consent: input.consent.unwrap_or_default(),
        })
    }

    /// Applies a merge patch; required fields cannot be cleared.
    pub fn patched(&self, patch: PatientPatch, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let mut next = self.clone();
        if let Some(v) = required_patch(e, "name", patch.name) {
            next.name = text::required_text("name", Some(v), 100, e).unwrap_or(next.name);
        }
        if let Some(v) = required_patch(e, "kana", patch.kana) {
            next.kana = text::kana("kana", v, e).unwrap_or(next.kana);
        }
        if let Some(v) = required_patch(e, "birth_date", patch.birth_date) {
            next.birth_date = birth_date(&v, today, e).unwrap_or(next.birth_date);
        }
        if let Some(v) = required_patch(e, "sex", patch.sex) {
            next.sex = parse_enum("sex", &v, e).unwrap_or(next.sex);
        }
        if let Some(v) = required_patch(e, "municipality_code", patch.municipality_code) {
            next.municipality_code = municipality(&v, e).unwrap_or(next.municipality_code);
        }
        if let Some(v) = required_patch(e, "consent", patch.consent) {
            next.consent = v;
        }
        match patch.devices {
            Patch::Absent => {}
            Patch::Null => next.devices = Vec::new(),
            Patch::Value(d) => next.devices = devices(d, e),
        }
        apply_optional(&mut next.postal_code, patch.postal_code, |p| text::postal_code("postal_code", &p, e));
        apply_optional(&mut next.address, patch.address, |a| text::optional_text("address", Some(a), 300, e));
        apply_optional(&mut next.phone, patch.phone, |p| text::phone("phone", p, e));
        match patch.care_level {
            Patch::Absent => {}
            Patch::Null => next.care_level = None,
            Patch::Value(c) => next.care_level = parse_enum("care_level", &c, e).or(next.care_level),
        }
        apply_optional(&mut next.key_person, patch.key_person, |k| key_person(k, e));
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(errors)
        }
    }
}

fn birth_date(value: &str, today: NaiveDate, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    let d = super::time::parse_date("birth_date", value, errors)?;
    let earliest = NaiveDate::from_ymd_opt(1890, 1, 1).unwrap_or(NaiveDate::MIN);
    if d > today || d < earliest {
        errors.push(FieldError::new("birth_date", "out_of_range", "must be a past date after 1890"));
        return None;
    }
    Some(d)
}

fn municipality(value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match MunicipalityCode::parse(value.trim()) {
        Ok(c) => Some(c.as_str().to_owned()),
        Err(why) => {
            errors.push(FieldError::new("municipality_code", "invalid_format", why));
            None
        }
    }
}

fn key_person(k: KeyPerson, errors: &mut Vec<FieldError>) -> Option<KeyPerson> {
    let before = errors.len();
    let name = text::required_text("key_person.name", Some(k.name), 100, errors);
    let relation = text::required_text("key_person.relation", Some(k.relation), 50, errors);
    let phone = k.phone.and_then(|p| text::phone("key_person.phone", p, errors));
    if errors.len() > before {
        return None;
    }
    Some(KeyPerson { name: name?, relation: relation?, phone })
}

fn devices(values: Vec<String>, errors: &mut Vec<FieldError>) -> Vec<Device> {
    let mut out: Vec<Device> =
        values.iter().enumerate().filter_map(|(i, d)| parse_enum(&format!("devices[{i}]"), d, errors)).collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    fn valid() -> PatientInput {
        PatientInput {
            name: Some("山田 花子".into()),
            kana: Some("やまだ はなこ".into()),
            birth_date: Some("1938-05-12".into()),
            sex: Some("female".into()),
            municipality_code: Some("131016".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_minimal_patient_parses_with_safe_defaults() {
        let p = PatientFields::parse(valid(), today()).unwrap();
        assert_eq!(p.kana, "ヤマダ ハナコ");
        assert_eq!(p.consent, Consent { information_sharing: false, disaster_registry: false });
        assert!(p.devices.is_empty());
    }

    #[test]
    fn every_bad_field_is_named() {
        let input = PatientInput {
            name: None,
            birth_date: Some("2030-01-01".into()),
            sex: Some("robot".into()),
            care_level: Some("care_9".into()),
            devices: Some(vec!["oxygen".into(), "toaster".into()]),
            key_person: Some(KeyPerson { name: " ".into(), relation: "長女".into(), phone: Some("1".into()) }),
            ..valid()
        };
        let errors = PatientFields::parse(input, today()).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["name", "birth_date", "sex", "care_level", "key_person.name", "key_person.phone", "devices[1]"]
        );
    }

    #[test]
    fn patch_replaces_consent_and_clears_optional_fields() {
        let mut input = valid();
        input.care_level = Some("care_3".into());
        let p = PatientFields::parse(input, today()).unwrap();
        let patch = PatientPatch {
            care_level: Patch::Null,
            consent: Patch::Value(Consent { information_sharing: true, disaster_registry: true }),
            devices: Patch::Value(vec!["ventilator".into(), "oxygen".into()]),
            ..Default::default()
        };
        let next = p.patched(patch, today()).unwrap();
        assert_eq!(next.care_level, None);
        assert!(next.consent.disaster_registry);
        assert_eq!(next.devices, [Device::Ventilator, Device::Oxygen]);
        let err = p.patched(PatientPatch { birth_date: Patch::Null, ..Default::default() }, today()).unwrap_err();
        assert_eq!(err[0].field, "birth_date");
    }
}
