//! Practitioners of the regional directory (DOMAIN.md §6): people with a profession, working
//! for one organization. Physicians carry their medical registration number (医籍登録番号).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::{OrganizationId, PractitionerId};
use super::organization::{apply_optional, parse_enum};
use super::text;
use super::{required, required_patch, Patch};
use crate::error::FieldError;

/// A practitioner's profession.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Profession {
    /// 医師
    Physician,
    /// 歯科医師
    Dentist,
    /// 看護師・保健師
    Nurse,
    /// 薬剤師
    Pharmacist,
    /// 介護支援専門員 (care manager)
    CareManager,
    /// 医療ソーシャルワーカー
    Msw,
    /// 理学療法士・作業療法士・言語聴覚士
    Therapist,
    /// 歯科衛生士
    DentalHygienist,
    /// 管理栄養士
    Dietitian,
    /// 介護職
    CareWorker,
    /// 連携コーディネーター
    Coordinator,
    Other,
}

impl Profession {
    /// Physicians and dentists are identified by their national registration number.
    pub fn requires_registration_number(self) -> bool {
        matches!(self, Profession::Physician | Profession::Dentist)
    }
}

/// A practitioner as stored and answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Practitioner {
    pub id: PractitionerId,
    pub organization_id: OrganizationId,
    pub name: String,
    /// Reading of the name in katakana.
    pub kana: String,
    pub profession: Profession,
    /// 医籍・歯科医籍登録番号 for physicians and dentists; unique per profession.
    pub registration_number: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/practitioners`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PractitionerInput {
    #[schema(value_type = String)]
    pub organization_id: Option<String>,
    #[schema(value_type = String, example = "山田 太郎")]
    pub name: Option<String>,
    #[schema(value_type = String, example = "ヤマダ タロウ")]
    pub kana: Option<String>,
    #[schema(value_type = Profession)]
    pub profession: Option<String>,
    #[schema(example = "123456")]
    pub registration_number: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub active: Option<bool>,
}

/// The body of `PATCH /api/v1/practitioners/{id}` (JSON merge patch).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PractitionerPatch {
    #[schema(value_type = Option<String>)]
    pub organization_id: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub name: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub kana: Patch<String>,
    #[schema(value_type = Option<Profession>)]
    pub profession: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub registration_number: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub phone: Patch<String>,
    #[schema(value_type = Option<String>)]
    pub email: Patch<String>,
    #[schema(value_type = Option<bool>)]
    pub active: Patch<bool>,
}

/// The validated fields of a practitioner, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct PractitionerFields {
    pub organization_id: OrganizationId,
    pub name: String,
    pub kana: String,
    pub profession: Profession,
    pub registration_number: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub active: bool,
}

impl PractitionerFields {
    /// Parses a create body, reporting every invalid field at once.
    pub fn parse(input: PractitionerInput) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let organization_id = required(&mut errors, "organization_id", input.organization_id)
            .and_then(|id| parse_org_id(&id, &mut errors));
        let name = text::required_text("name", input.name, 100, &mut errors);
        let kana = required(&mut errors, "kana", input.kana).and_then(|k| text::kana("kana", k, &mut errors));
        let profession = required(&mut errors, "profession", input.profession)
            .and_then(|p| parse_enum::<Profession>("profession", &p, &mut errors));
        let registration_number = input.registration_number.and_then(|r| parse_registration(&r, &mut errors));
        let phone = input.phone.and_then(|p| text::phone("phone", p, &mut errors));
        let email = input.email.and_then(|e| parse_email(&e, &mut errors));
        let (Some(organization_id), Some(name), Some(kana), Some(profession)) =
            (organization_id, name, kana, profession)
        else {
            return Err(errors);
        };
        let fields = Self {
            organization_id,
            name,
            kana,
            profession,
            registration_number,
            phone,
            email,
            active: input.active.unwrap_or(true),
        };
        fields.check_registration(&mut errors);
        if errors.is_empty() {
            Ok(fields)
        } else {
            Err(errors)
        }
    }

    /// Applies a merge patch to the current fields; required fields cannot be cleared.
    pub fn patched(&self, patch: PractitionerPatch) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut next = self.clone();
        if let Some(id) = required_patch(&mut errors, "organization_id", patch.organization_id) {
            next.organization_id = parse_org_id(&id, &mut errors).unwrap_or(next.organization_id);
        }
        if let Some(n) = required_patch(&mut errors, "name", patch.name) {
            next.name = text::required_text("name", Some(n), 100, &mut errors).unwrap_or(next.name);
        }
        if let Some(k) = required_patch(&mut errors, "kana", patch.kana) {
            next.kana = text::kana("kana", k, &mut errors).unwrap_or(next.kana);
        }
        if let Some(p) = required_patch(&mut errors, "profession", patch.profession) {
            next.profession = parse_enum("profession", &p, &mut errors).unwrap_or(next.profession);
        }
        if let Some(a) = required_patch(&mut errors, "active", patch.active) {
            next.active = a;
        }
        apply_optional(&mut next.registration_number, patch.registration_number, |r| {
            parse_registration(&r, &mut errors)
        });
        apply_optional(&mut next.phone, patch.phone, |p| text::phone("phone", p, &mut errors));
        apply_optional(&mut next.email, patch.email, |e| parse_email(&e, &mut errors));
        next.check_registration(&mut errors);
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(errors)
        }
    }

    fn check_registration(&self, errors: &mut Vec<FieldError>) {
        let already_reported = errors.iter().any(|e| e.field == "registration_number");
        if self.profession.requires_registration_number() && self.registration_number.is_none() && !already_reported {
            errors.push(FieldError::new(
                "registration_number",
                "required",
                "is required for physicians and dentists (医籍・歯科医籍登録番号)",
            ));
        }
    }
}

fn parse_org_id(value: &str, errors: &mut Vec<FieldError>) -> Option<OrganizationId> {
    match value.parse() {
        Ok(id) => Some(id),
        Err(_) => {
            errors.push(FieldError::new("organization_id", "invalid_format", "must be a UUID"));
            None
        }
    }
}

fn parse_registration(value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = value.trim();
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        errors.push(FieldError::new("registration_number", "invalid_format", "must be 1 to 10 digits"));
        return None;
    }
    Some(v.to_owned())
}

fn parse_email(value: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = value.trim();
    let ok = v.len() <= 254
        && !v.chars().any(char::is_whitespace)
        && v.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !ok {
        errors.push(FieldError::new("email", "invalid_format", "must be an e-mail address"));
        return None;
    }
    Some(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn physician() -> PractitionerInput {
        PractitionerInput {
            organization_id: Some(OrganizationId::new().to_string()),
            name: Some("山田 太郎".into()),
            kana: Some("ヤマダ タロウ".into()),
            profession: Some("physician".into()),
            registration_number: Some("123456".into()),
            ..Default::default()
        }
    }

    #[test]
    fn physician_needs_a_registration_number() {
        let mut input = physician();
        input.registration_number = None;
        let errors = PractitionerFields::parse(input).unwrap_err();
        assert_eq!(errors[0].field, "registration_number");
        assert!(PractitionerFields::parse(physician()).is_ok());
    }

    #[test]
    fn nurse_needs_none_and_clearing_a_physicians_number_is_refused() {
        let mut input = physician();
        input.profession = Some("nurse".into());
        input.registration_number = None;
        let nurse = PractitionerFields::parse(input).unwrap();
        assert_eq!(nurse.profession, Profession::Nurse);
        let doc = PractitionerFields::parse(physician()).unwrap();
        let errors =
            doc.patched(PractitionerPatch { registration_number: Patch::Null, ..Default::default() }).unwrap_err();
        assert_eq!(errors[0].field, "registration_number");
    }

    #[test]
    fn parse_reports_all_missing_fields() {
        let errors = PractitionerFields::parse(PractitionerInput::default()).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["organization_id", "name", "kana", "profession"]);
    }

    #[test]
    fn email_and_registration_shapes() {
        let mut input = physician();
        input.email = Some("not-an-email".into());
        input.registration_number = Some("12a".into());
        let errors = PractitionerFields::parse(input).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["registration_number", "email"]);
    }
}
