//! Organizations of the regional directory (DOMAIN.md §6): clinics, hospitals, visiting-nursing
//! stations and the rest, with their public codes and the services they offer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::codes::{MedicalInstitutionCode, MunicipalityCode};
use super::ids::OrganizationId;
use super::text;
use super::{required, required_patch, Patch};
use crate::error::FieldError;

/// What an organization is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrganizationKind {
    /// 診療所
    Clinic,
    /// 病院
    Hospital,
    /// 訪問看護ステーション
    VisitingNursingStation,
    /// 居宅介護支援事業所
    CareManagementOffice,
    /// 薬局
    Pharmacy,
    /// 歯科診療所
    DentalClinic,
    /// 地域包括支援センター
    RegionalComprehensiveSupportCenter,
    /// 市町村
    Municipality,
    /// 医師会
    PhysiciansAssociation,
}

/// A service an organization offers to home-care patients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// 訪問診療 (scheduled home visits)
    HomeVisitCare,
    /// 往診 (house calls on demand)
    HouseCalls,
    /// 24時間対応
    RoundTheClock,
    /// 在宅療養支援診療所・病院 (home-care support clinic/hospital status)
    HomeCareSupportInstitution,
    /// 看取り (end-of-life care at home)
    EndOfLifeCare,
    /// 訪問看護
    VisitingNursing,
    /// 訪問リハビリテーション
    VisitingRehabilitation,
    /// 訪問薬剤管理指導
    HomePharmacy,
    /// 訪問歯科診療
    HomeDentalCare,
    /// 居宅介護支援 (care management)
    CareManagement,
    /// 後方支援病床
    BackupBeds,
    /// レスパイト入院
    RespiteAdmission,
    /// 退院支援 (discharge support)
    DischargeSupport,
    /// 相談支援
    Consultation,
}

/// An organization as stored and answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Organization {
    pub id: OrganizationId,
    pub kind: OrganizationKind,
    pub name: String,
    /// Reading of the name in katakana.
    pub kana: Option<String>,
    /// 10-digit 医療機関コード, unique where present.
    pub medical_institution_code: Option<String>,
    /// 6-digit 全国地方公共団体コード of the municipality the organization is in.
    pub municipality_code: String,
    pub postal_code: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub services: Vec<Service>,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/organizations`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationInput {
    #[schema(value_type = OrganizationKind)]
    pub kind: Option<String>,
    #[schema(value_type = String, example = "さくら在宅クリニック")]
    pub name: Option<String>,
    #[schema(example = "サクラザイタククリニック")]
    pub kana: Option<String>,
    #[schema(example = "1311234567")]
    pub medical_institution_code: Option<String>,
    #[schema(value_type = String, example = "131016")]
    pub municipality_code: Option<String>,
    #[schema(example = "100-0001")]
    pub postal_code: Option<String>,
    pub address: Option<String>,
    #[schema(example = "03-1234-5678")]
    pub phone: Option<String>,
    #[schema(value_type = Option<Vec<Service>>)]
    pub services: Option<Vec<String>>,
    pub active: Option<bool>,
}

/// The body of `PATCH /api/v1/organizations/{id}` (JSON merge patch).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OrganizationPatch {
    #[schema(value_type = Option<OrganizationKind>)]
    pub kind: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub name: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub kana: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub medical_institution_code: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub municipality_code: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub postal_code: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub address: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub phone: Patch<String>,
    #[schema(value_type = Option<Vec<Service>>)]
    pub services: Patch<Vec<String>>,
    #[schema(value_type = Option<bool>)]
    pub active: Patch<bool>,
}

/// The validated fields of an organization, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct OrganizationFields {
    pub kind: OrganizationKind,
    pub name: String,
    pub kana: Option<String>,
    pub medical_institution_code: Option<String>,
    pub municipality_code: String,
    pub postal_code: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub services: Vec<Service>,
    pub active: bool,
}

impl OrganizationFields {
    /// Parses a create body, reporting every invalid field at once.
    pub fn parse(input: OrganizationInput) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let kind = required(&mut errors, "kind", input.kind).and_then(|k| parse_kind(&k, &mut errors));
        let name = text::required_text("name", input.name, 200, &mut errors);
        let kana = input.kana.and_then(|k| text::kana("kana", k, &mut errors));
        let medical_institution_code = input.medical_institution_code.and_then(|c| parse_mic(&c, &mut errors));
        let municipality_code = required(&mut errors, "municipality_code", input.municipality_code)
            .and_then(|c| parse_municipality(&c, &mut errors));
        let postal_code = input.postal_code.and_then(|p| text::postal_code("postal_code", &p, &mut errors));
        let address = text::optional_text("address", input.address, 300, &mut errors);
        let phone = input.phone.and_then(|p| text::phone("phone", p, &mut errors));
        let services = parse_services(input.services.unwrap_or_default(), &mut errors);
        match (kind, name, municipality_code) {
            (Some(kind), Some(name), Some(municipality_code)) if errors.is_empty() => Ok(Self {
                kind,
                name,
                kana,
                medical_institution_code,
                municipality_code,
                postal_code,
                address,
                phone,
                services,
                active: input.active.unwrap_or(true),
            }),
            _ => Err(errors),
        }
    }

    /// Applies a merge patch to the current fields; required fields cannot be cleared.
    pub fn patched(&self, patch: OrganizationPatch) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut next = self.clone();
        if let Some(k) = required_patch(&mut errors, "kind", patch.kind) {
            next.kind = parse_kind(&k, &mut errors).unwrap_or(next.kind);
        }
        if let Some(n) = required_patch(&mut errors, "name", patch.name) {
            next.name = text::required_text("name", Some(n), 200, &mut errors).unwrap_or(next.name);
        }
        if let Some(c) = required_patch(&mut errors, "municipality_code", patch.municipality_code) {
            next.municipality_code = parse_municipality(&c, &mut errors).unwrap_or(next.municipality_code);
        }
        if let Some(a) = required_patch(&mut errors, "active", patch.active) {
            next.active = a;
        }
        match patch.services {
            Patch::Absent => {}
            Patch::Null => next.services = Vec::new(),
            Patch::Value(s) => next.services = parse_services(s, &mut errors),
        }
        apply_optional(&mut next.kana, patch.kana, |k| text::kana("kana", k, &mut errors));
        apply_optional(&mut next.medical_institution_code, patch.medical_institution_code, |c| {
            parse_mic(&c, &mut errors)
        });
        apply_optional(&mut next.postal_code, patch.postal_code, |p| text::postal_code("postal_code", &p, &mut errors));
        apply_optional(&mut next.address, patch.address, |a| text::optional_text("address", Some(a), 300, &mut errors));
        apply_optional(&mut next.phone, patch.phone, |p| text::phone("phone", p, &mut errors));
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(errors)
        }
    }
}

/// Applies one optional member of a merge patch; `parse` reports its own errors.
pub(crate) fn apply_optional<T>(slot: &mut Option<T>, patch: Patch<T>, parse: impl FnOnce(T) -> Option<T>) {
    match patch {
        Patch::Absent => {}
        Patch::Null => *slot = None,
        Patch::Value(v) => {
            if let Some(parsed) = parse(v) {
                *slot = Some(parsed);
            }
        }
    }
}

pub(crate) fn cannot_clear(field: &str) -> FieldError {
    FieldError::new(field, "required", "cannot be set to null")
}

pub(crate) fn parse_enum<T: for<'de> Deserialize<'de>>(
    field: &str,
    value: &str,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    match serde_json::from_value(serde_json::Value::String(value.to_owned())) {
        Ok(v) => Some(v),
        Err(_) => {
            errors.push(FieldError::new(field, "unknown_code", format!("'{value}' is not a known code")));
            None
        }
    }
}

fn parse_kind(value: &str, errors: &mut Vec<FieldError>) -> Option<OrganizationKind> {
    parse_enum("kind", value, errors)
}

fn parse_services(values: Vec<String>, errors: &mut Vec<FieldError>) -> Vec<Service> {
    let mut services: Vec<Service> =
        values.iter().enumerate().filter_map(|(i, s)| parse_enum(&format!("services[{i}]"), s, errors)).collect();
    services.sort();
    services.dedup();
    services
}

fn parse_mic(value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match MedicalInstitutionCode::parse(value.trim()) {
        Ok(c) => Some(c.as_str().to_owned()),
        Err(why) => {
            errors.push(FieldError::new("medical_institution_code", "invalid_format", why));
            None
        }
    }
}

fn parse_municipality(value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match MunicipalityCode::parse(value.trim()) {
        Ok(c) => Some(c.as_str().to_owned()),
        Err(why) => {
            errors.push(FieldError::new("municipality_code", "invalid_format", why));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> OrganizationInput {
        OrganizationInput {
            kind: Some("clinic".into()),
            name: Some("さくら在宅クリニック".into()),
            municipality_code: Some("131016".into()),
            ..Default::default()
        }
    }

    #[test]
    fn parse_reports_every_invalid_field() {
        let input = OrganizationInput {
            kind: Some("spaceship".into()),
            name: None,
            municipality_code: Some("131017".into()),
            postal_code: Some("12-34567".into()),
            services: Some(vec!["house_calls".into(), "flying".into()]),
            ..Default::default()
        };
        let errors = OrganizationFields::parse(input).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["kind", "name", "municipality_code", "postal_code", "services[1]"]);
    }

    #[test]
    fn parse_normalises_postal_code_and_dedups_services() {
        let mut input = valid();
        input.postal_code = Some("1000001".into());
        input.services = Some(vec!["house_calls".into(), "home_visit_care".into(), "house_calls".into()]);
        let org = OrganizationFields::parse(input).unwrap();
        assert_eq!(org.postal_code.as_deref(), Some("100-0001"));
        assert_eq!(org.services, [Service::HomeVisitCare, Service::HouseCalls]);
        assert!(org.active);
    }

    #[test]
    fn patch_clears_optional_refuses_clearing_required_and_keeps_absent() {
        let mut input = valid();
        input.phone = Some("03-1234-5678".into());
        let org = OrganizationFields::parse(input).unwrap();
        let patch =
            OrganizationPatch {
                phone: Patch::Null, name: Patch::Value("新しい名前".into()), ..Default::default()
            };
        let next = org.patched(patch).unwrap();
        assert_eq!(next.phone, None);
        assert_eq!(next.name, "新しい名前");
        assert_eq!(next.municipality_code, "131016");
        let errors = org.patched(OrganizationPatch { name: Patch::Null, ..Default::default() }).unwrap_err();
        assert_eq!(errors[0].field, "name");
    }
}
