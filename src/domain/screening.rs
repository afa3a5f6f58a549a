//! Discharge screening (退院支援スクリーニング, DOMAIN.md §4): versioned templates, the answers a
//! hospital gives for one admission, their score, the statutory deadlines, and the sheet's
//! workflow. Everything here is pure: the storage layer keeps what these functions decide.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::ids::{CaseId, OrganizationId, PatientId, ScreeningId, TemplateId};
use super::organization::parse_enum;
use super::patient::{PatientFields, PatientInput, Sex};
use super::text;
use super::time::{start_of_day_jst, today_jst};
use crate::error::FieldError;

/// The code of the national template that ships built in.
pub const NATIONAL_TEMPLATE: &str = "national_discharge_difficulty";

/// How answers become a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// The national rule: any one factor present ⇒ positive (needs discharge support).
    AnyFactor,
    /// A local score: the weights of the factors present are added; positive at the threshold.
    WeightedSum,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    /// Answered `true` (the factor is present) or `false`.
    Boolean,
    /// Answered with the code of one option.
    Choice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TemplateStatus {
    /// Being written: may be changed, may not be used.
    Draft,
    /// Immutable and usable; changes make a new version.
    Published,
}

/// One option of a choice item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
    /// Choosing an option with a weight above 0 makes the item a factor present.
    #[serde(default)]
    pub weight: u32,
}

/// One question of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Item {
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
    #[serde(rename = "type")]
    pub kind: ItemType,
    /// For a boolean item, the weight of `true` (1 unless set).
    pub weight: u32,
    /// For a choice item, its options.
    pub options: Vec<ChoiceOption>,
    /// A sheet cannot be submitted without an answer to a required item.
    pub required: bool,
}

/// A template version as stored and answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Template {
    pub id: TemplateId,
    /// `null` for the templates Renkei ships.
    pub owner_organization_id: Option<OrganizationId>,
    pub code: String,
    /// The template's own version number (1, 2, …) within its owner and code.
    pub template_version: i32,
    pub title_ja: String,
    pub title_en: String,
    pub scoring: Scoring,
    /// For `weighted_sum`: a score at or above it is positive.
    pub threshold: Option<i32>,
    pub items: Vec<Item>,
    pub status: TemplateStatus,
    pub published_at: Option<DateTime<Utc>>,
    /// The row's version, for `If-Match` (changes while a draft).
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One item of a template body.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    pub code: Option<String>,
    pub label_ja: Option<String>,
    pub label_en: Option<String>,
    #[serde(rename = "type")]
    #[schema(value_type = ItemType)]
    pub kind: Option<String>,
    /// Boolean items only (default 1).
    pub weight: Option<i64>,
    /// Choice items only: at least two.
    pub options: Option<Vec<OptionInput>>,
    /// Default `true`.
    pub required: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionInput {
    pub code: Option<String>,
    pub label_ja: Option<String>,
    pub label_en: Option<String>,
    /// Default 0 (not a factor).
    pub weight: Option<i64>,
}

/// The body of `POST /api/v1/screening-templates` (a new draft version).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    #[schema(example = "fall_risk_local")]
    pub code: Option<String>,
    pub title_ja: Option<String>,
    pub title_en: Option<String>,
    #[schema(value_type = Scoring)]
    pub scoring: Option<String>,
    pub threshold: Option<i64>,
    pub items: Option<Vec<ItemInput>>,
}

/// The body of `PATCH /api/v1/screening-templates/{id}` (drafts only; members replace whole).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TemplatePatch {
    #[schema(value_type = Option<String>)]
    pub title_ja: super::Patch<String>,
    #[schema(value_type = Option<String>)]
    pub title_en: super::Patch<String>,
    #[schema(value_type = Option<Scoring>)]
    pub scoring: super::Patch<String>,
    #[schema(value_type = Option<i64>)]
    pub threshold: super::Patch<i64>,
    #[schema(value_type = Option<Vec<ItemInput>>)]
    pub items: super::Patch<Vec<ItemInput>>,
}

/// The validated content of a template version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFields {
    pub code: String,
    pub title_ja: String,
    pub title_en: String,
    pub scoring: Scoring,
    pub threshold: Option<i32>,
    pub items: Vec<Item>,
}

const MAX_ITEMS: usize = 100;
const MAX_OPTIONS: usize = 20;
const MAX_WEIGHT: i64 = 100;

/// A code of our own making: lower-case ASCII, digits and `_`, starting with a letter.
fn parse_code(field: &str, value: Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let v = super::required(errors, field, value)?;
    let v = v.trim().to_owned();
    let ok = (1..=64).contains(&v.len())
        && v.starts_with(|c: char| c.is_ascii_lowercase())
        && v.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        errors.push(FieldError::new(
            field,
            "invalid_format",
            "must be 1 to 64 of a-z, 0-9 and _, starting with a letter",
        ));
        return None;
    }
    Some(v)
}

fn weight(field: &str, value: Option<i64>, default: u32, errors: &mut Vec<FieldError>) -> u32 {
    match value {
        None => default,
        Some(w) if (0..=MAX_WEIGHT).contains(&w) => u32::try_from(w).unwrap_or(default),
        Some(_) => {
            errors.push(FieldError::new(field, "out_of_range", format!("must be between 0 and {MAX_WEIGHT}")));
            default
        }
    }
}

fn item(i: usize, input: ItemInput, errors: &mut Vec<FieldError>) -> Option<Item> {
    let at = |name: &str| format!("items[{i}].{name}");
    let before = errors.len();
    let code = parse_code(&at("code"), input.code, errors);
    let label_ja = text::required_text(&at("label_ja"), input.label_ja, 200, errors);
    let label_en = text::required_text(&at("label_en"), input.label_en, 200, errors);
    let kind: Option<ItemType> =
        super::required(errors, &at("type"), input.kind).and_then(|k| parse_enum(&at("type"), &k, errors));
    let mut options = Vec::new();
    let mut item_weight = 0;
    match kind {
        Some(ItemType::Boolean) => {
            if input.options.is_some() {
                errors.push(FieldError::new(at("options"), "not_allowed", "only choice items have options"));
            }
            item_weight = weight(&at("weight"), input.weight, 1, errors);
        }
        Some(ItemType::Choice) => {
            if input.weight.is_some() {
                errors.push(FieldError::new(at("weight"), "not_allowed", "a choice item's weights are its options'"));
            }
            let given = input.options.unwrap_or_default();
            if !(2..=MAX_OPTIONS).contains(&given.len()) {
                errors.push(FieldError::new(
                    at("options"),
                    "out_of_range",
                    format!("needs 2 to {MAX_OPTIONS} options"),
                ));
            }
            for (j, o) in given.into_iter().enumerate() {
                let at = |name: &str| format!("items[{i}].options[{j}].{name}");
                let code = parse_code(&at("code"), o.code, errors);
                let label_ja = text::required_text(&at("label_ja"), o.label_ja, 200, errors);
                let label_en = text::required_text(&at("label_en"), o.label_en, 200, errors);
                let w = weight(&at("weight"), o.weight, 0, errors);
                if let (Some(code), Some(label_ja), Some(label_en)) = (code, label_ja, label_en) {
                    if options.iter().any(|x: &ChoiceOption| x.code == code) {
                        errors.push(FieldError::new(at("code"), "duplicate", "is already an option of this item"));
                    }
                    options.push(ChoiceOption { code, label_ja, label_en, weight: w });
                }
            }
        }
        None => {}
    }
    if errors.len() > before {
        return None;
    }
    Some(Item {
        code: code?,
        label_ja: label_ja?,
        label_en: label_en?,
        kind: kind?,
        weight: item_weight,
        options,
        required: input.required.unwrap_or(true),
    })
}

impl TemplateFields {
    /// Validates a template body, naming every invalid member at once.
    pub fn parse(input: TemplateInput) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let e = &mut errors;
        let code = parse_code("code", input.code, e);
        if code.as_deref() == Some(NATIONAL_TEMPLATE) {
            e.push(FieldError::new("code", "reserved", "is the built-in national template's code"));
        }
        let title_ja = text::required_text("title_ja", input.title_ja, 200, e);
        let title_en = text::required_text("title_en", input.title_en, 200, e);
        let scoring: Option<Scoring> =
            super::required(e, "scoring", input.scoring).and_then(|s| parse_enum("scoring", &s, e));
        let given = super::required(e, "items", input.items).unwrap_or_default();
        if given.is_empty() || given.len() > MAX_ITEMS {
            e.push(FieldError::new("items", "out_of_range", format!("needs 1 to {MAX_ITEMS} items")));
        }
        let mut items: Vec<Item> = Vec::new();
        for (i, input) in given.into_iter().enumerate() {
            if let Some(it) = item(i, input, e) {
                if items.iter().any(|x| x.code == it.code) {
                    e.push(FieldError::new(format!("items[{i}].code"), "duplicate", "is already an item's code"));
                }
                items.push(it);
            }
        }
        let threshold = match (scoring, input.threshold) {
            (Some(Scoring::AnyFactor), Some(_)) => {
                e.push(FieldError::new("threshold", "not_allowed", "any_factor has no threshold"));
                None
            }
            (Some(Scoring::WeightedSum), None) => {
                e.push(FieldError::new("threshold", "required", "weighted_sum needs a threshold"));
                None
            }
            (Some(Scoring::WeightedSum), Some(t)) => {
                let reachable: i64 = items.iter().map(|i| i64::from(i.max_weight())).sum();
                if t < 1 {
                    e.push(FieldError::new("threshold", "out_of_range", "must be at least 1"));
                    None
                } else if errors_empty_after_items(e) && t > reachable {
                    e.push(FieldError::new(
                        "threshold",
                        "unreachable",
                        format!("no answers reach it: the highest possible score is {reachable}"),
                    ));
                    None
                } else {
                    i32::try_from(t).ok()
                }
            }
            _ => None,
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        match (code, title_ja, title_en, scoring) {
            (Some(code), Some(title_ja), Some(title_en), Some(scoring)) => {
                Ok(TemplateFields { code, title_ja, title_en, scoring, threshold, items })
            }
            _ => Err(errors),
        }
    }

    /// Applies a draft's patch and validates the whole again.
    pub fn patched(&self, patch: TemplatePatch) -> Result<Self, Vec<FieldError>> {
        use super::Patch as P;
        let mut errors = Vec::new();
        let title_ja = super::required_patch(&mut errors, "title_ja", patch.title_ja).or(Some(self.title_ja.clone()));
        let title_en = super::required_patch(&mut errors, "title_en", patch.title_en).or(Some(self.title_en.clone()));
        let scoring = super::required_patch(&mut errors, "scoring", patch.scoring)
            .or_else(|| crate::db::to_code(&self.scoring).ok());
        let threshold = match patch.threshold {
            P::Absent => self.threshold.map(i64::from),
            P::Null => None,
            P::Value(t) => Some(t),
        };
        let items = super::required_patch(&mut errors, "items", patch.items)
            .or_else(|| Some(self.items.iter().map(Item::to_input).collect()));
        let input = TemplateInput { code: Some(self.code.clone()), title_ja, title_en, scoring, threshold, items };
        let parsed = Self::parse(input);
        match (parsed, errors.is_empty()) {
            (Ok(v), true) => Ok(v),
            (Ok(_), false) => Err(errors),
            (Err(more), _) => {
                errors.extend(more);
                Err(errors)
            }
        }
    }
}

/// Whether the items parsed cleanly (a threshold is only judged against valid items).
fn errors_empty_after_items(errors: &[FieldError]) -> bool {
    !errors.iter().any(|e| e.field.starts_with("items"))
}

impl Item {
    /// The most this item can add to a score.
    fn max_weight(&self) -> u32 {
        match self.kind {
            ItemType::Boolean => self.weight,
            ItemType::Choice => self.options.iter().map(|o| o.weight).max().unwrap_or(0),
        }
    }

    fn to_input(&self) -> ItemInput {
        ItemInput {
            code: Some(self.code.clone()),
            label_ja: Some(self.label_ja.clone()),
            label_en: Some(self.label_en.clone()),
            kind: crate::db::to_code(&self.kind).ok(),
            weight: (self.kind == ItemType::Boolean).then_some(i64::from(self.weight)),
            options: (self.kind == ItemType::Choice).then(|| {
                self.options
                    .iter()
                    .map(|o| OptionInput {
                        code: Some(o.code.clone()),
                        label_ja: Some(o.label_ja.clone()),
                        label_en: Some(o.label_en.clone()),
                        weight: Some(i64::from(o.weight)),
                    })
                    .collect()
            }),
            required: Some(self.required),
        }
    }

    /// What a valid answer adds to the score (0: not a factor).
    fn contribution(&self, answer: &Value) -> u32 {
        match (self.kind, answer) {
            (ItemType::Boolean, Value::Bool(true)) => self.weight,
            (ItemType::Choice, Value::String(code)) => {
                self.options.iter().find(|o| &o.code == code).map_or(0, |o| o.weight)
            }
            _ => 0,
        }
    }
}

/// Answers by item code.
pub type Answers = BTreeMap<String, Value>;

/// The item code that mirrors the sheet's `emergency_admission` (a national factor).
const EMERGENCY_ITEM: &str = "emergency_admission";

/// Whether the sheet is positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScreeningResult {
    /// Needs discharge support: handed to the base.
    Positive,
    Negative,
}

/// What the server derives from the answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Codes of the items whose answer makes a factor present, in template order.
    pub factors: Vec<String>,
    /// `any_factor`: the number of factors; `weighted_sum`: the sum of their weights.
    pub score: i32,
    /// `None` while a required item is unanswered (a draft).
    pub result: Option<ScreeningResult>,
}

impl Template {
    fn item(&self, code: &str) -> Option<&Item> {
        self.items.iter().find(|i| i.code == code)
    }

    /// Checks answers against the items: unknown items and wrong types are refused. The
    /// `emergency_admission` item, if the template has one, is filled from the sheet's
    /// `emergency_admission` and must agree with it. Missing answers are only reported by
    /// [`Template::missing`] (a draft may be incomplete).
    pub fn check_answers(
        &self,
        mut answers: Answers,
        emergency_admission: Option<bool>,
        errors: &mut Vec<FieldError>,
    ) -> (Answers, Option<bool>) {
        for (code, value) in &answers {
            let field = format!("answers.{code}");
            match self.item(code) {
                None => errors.push(FieldError::new(field, "unknown_item", "is not an item of the template")),
                Some(item) => match (item.kind, value) {
                    (ItemType::Boolean, Value::Bool(_)) => {}
                    (ItemType::Boolean, _) => {
                        errors.push(FieldError::new(field, "invalid_type", "must be true or false"))
                    }
                    (ItemType::Choice, Value::String(v)) if item.options.iter().any(|o| &o.code == v) => {}
                    (ItemType::Choice, Value::String(_)) => {
                        let codes: Vec<&str> = item.options.iter().map(|o| o.code.as_str()).collect();
                        errors.push(FieldError::new(
                            field,
                            "unknown_option",
                            format!("must be one of {}", codes.join(", ")),
                        ));
                    }
                    (ItemType::Choice, _) => {
                        errors.push(FieldError::new(field, "invalid_type", "must be the code of one option"))
                    }
                },
            }
        }
        let mut emergency = emergency_admission;
        if self.item(EMERGENCY_ITEM).is_some_and(|i| i.kind == ItemType::Boolean) {
            match (answers.get(EMERGENCY_ITEM).and_then(Value::as_bool), emergency_admission) {
                (Some(a), Some(e)) if a != e => errors.push(FieldError::new(
                    format!("answers.{EMERGENCY_ITEM}"),
                    "inconsistent",
                    "disagrees with emergency_admission",
                )),
                (Some(a), None) => emergency = Some(a),
                (None, Some(e)) => {
                    answers.insert(EMERGENCY_ITEM.to_owned(), Value::Bool(e));
                }
                _ => {}
            }
        }
        (answers, emergency)
    }

    /// The required items without an answer.
    pub fn missing(&self, answers: &Answers) -> Vec<FieldError> {
        self.items
            .iter()
            .filter(|i| i.required && !answers.contains_key(&i.code))
            .map(|i| FieldError::new(format!("answers.{}", i.code), "required", "is required to submit"))
            .collect()
    }

    /// Factors, score and result of (valid) answers.
    pub fn evaluate(&self, answers: &Answers) -> Evaluation {
        let mut factors = Vec::new();
        let mut sum: i64 = 0;
        for item in &self.items {
            let Some(answer) = answers.get(&item.code) else { continue };
            let c = item.contribution(answer);
            if c > 0 {
                factors.push(item.code.clone());
                sum += i64::from(c);
            }
        }
        let score = match self.scoring {
            Scoring::AnyFactor => factors.len() as i64,
            Scoring::WeightedSum => sum,
        };
        let positive = match self.scoring {
            Scoring::AnyFactor => !factors.is_empty(),
            Scoring::WeightedSum => score >= i64::from(self.threshold.unwrap_or(i32::MAX)),
        };
        let complete = self.missing(answers).is_empty();
        let result = complete.then_some(if positive { ScreeningResult::Positive } else { ScreeningResult::Negative });
        Evaluation { factors, score: i32::try_from(score).unwrap_or(i32::MAX), result }
    }
}

/// Days after the admission day by which the screening must be done (入院後3日以内).
pub const SCREENING_DAYS: u64 = 3;
/// Days after the admission day by which the interview and the conference must be held (7日以内).
pub const WEEK_DAYS: u64 = 7;

/// The end of the Japan calendar day `days` after the admission day: a deadline "within N days
/// of admission" is met by anything before it. Admitted on Monday at 23:30 JST, the screening
/// is due by the end of Thursday (JST), whatever UTC says.
pub fn due_at(admitted_at: DateTime<Utc>, days: u64) -> DateTime<Utc> {
    let day = today_jst(admitted_at);
    let last = day.checked_add_days(Days::new(days + 1)).unwrap_or(day);
    start_of_day_jst(last)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    /// Screening for factors, within 3 days (the sheet's submission).
    Screening,
    /// Interview with the patient and family, within 7 days.
    Interview,
    /// Multidisciplinary conference, within 7 days.
    Conference,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineState {
    /// Not done; the deadline has not passed.
    Due,
    /// Done (see `met_at` and `late`).
    Met,
    /// Not done, and the deadline has passed.
    Overdue,
}

/// One statutory deadline of a sheet, as of the moment it was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Deadline {
    pub kind: DeadlineKind,
    /// Exclusive: done before this instant is in time.
    pub due_at: DateTime<Utc>,
    pub state: DeadlineState,
    pub met_at: Option<DateTime<Utc>>,
    /// Met, but at or after `due_at`.
    pub late: bool,
}

impl Deadline {
    pub fn at(kind: DeadlineKind, due_at: DateTime<Utc>, met_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        let state = match met_at {
            Some(_) => DeadlineState::Met,
            None if now >= due_at => DeadlineState::Overdue,
            None => DeadlineState::Due,
        };
        Deadline { kind, due_at, state, met_at, late: met_at.is_some_and(|m| m >= due_at) }
    }
}

/// Where a sheet stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SheetStatus {
    /// The hospital is still filling it in; the base does not see it.
    Draft,
    /// Sent to the base for review.
    Submitted,
    /// Linked to a case by the base.
    Accepted,
    /// Declined by the base, with a reason.
    Declined,
    /// Taken back by the hospital before a decision.
    Withdrawn,
    /// Corrected by a newer revision (kept for the record).
    Superseded,
}

impl SheetStatus {
    /// Sheets whose deadlines still matter.
    pub const LIVE: [SheetStatus; 3] = [SheetStatus::Draft, SheetStatus::Submitted, SheetStatus::Accepted];
}

/// What can happen to a sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SheetEvent {
    Submit,
    Accept,
    Decline,
    Withdraw,
    Revise,
}

impl SheetEvent {
    pub fn name(self) -> &'static str {
        match self {
            SheetEvent::Submit => "submit",
            SheetEvent::Accept => "accept",
            SheetEvent::Decline => "decline",
            SheetEvent::Withdraw => "withdraw",
            SheetEvent::Revise => "revise",
        }
    }
}

/// `draft → submitted → accepted | declined`; `draft | submitted → withdrawn` (the hospital);
/// `submitted | declined | withdrawn → superseded` (a corrected revision replaces it and is
/// sent again).
pub fn transition(from: SheetStatus, event: SheetEvent) -> Option<SheetStatus> {
    use SheetEvent as E;
    use SheetStatus as S;
    match (from, event) {
        (S::Draft, E::Submit) => Some(S::Submitted),
        (S::Submitted, E::Accept) => Some(S::Accepted),
        (S::Submitted, E::Decline) => Some(S::Declined),
        (S::Draft | S::Submitted, E::Withdraw) => Some(S::Withdrawn),
        (S::Submitted | S::Declined | S::Withdrawn, E::Revise) => Some(S::Superseded),
        _ => None,
    }
}

/// The patient as the hospital described them, until the base links a patient record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Demographics {
    pub name: String,
    pub kana: String,
    pub birth_date: NaiveDate,
    pub sex: Sex,
    pub municipality_code: String,
    pub postal_code: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
}

/// The patient of a sheet body: the demographics' rules are a patient record's.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemographicsInput {
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
}

impl Demographics {
    pub fn parse(input: DemographicsInput, now: DateTime<Utc>) -> Result<Self, Vec<FieldError>> {
        let as_patient = PatientInput {
            name: input.name,
            kana: input.kana,
            birth_date: input.birth_date,
            sex: input.sex,
            municipality_code: input.municipality_code,
            postal_code: input.postal_code,
            address: input.address,
            phone: input.phone,
            ..Default::default()
        };
        match PatientFields::parse(as_patient, today_jst(now)) {
            Ok(f) => Ok(Demographics {
                name: f.name,
                kana: f.kana,
                birth_date: f.birth_date,
                sex: f.sex,
                municipality_code: f.municipality_code,
                postal_code: f.postal_code,
                address: f.address,
                phone: f.phone,
            }),
            Err(errors) => Err(errors
                .into_iter()
                .map(|e| FieldError::new(format!("patient.{}", e.field), e.code, e.message))
                .collect()),
        }
    }

    /// A new patient record from the hospital's description (consent not yet recorded).
    pub fn to_patient(&self) -> PatientFields {
        PatientFields {
            name: self.name.clone(),
            kana: self.kana.clone(),
            birth_date: self.birth_date,
            sex: self.sex,
            municipality_code: self.municipality_code.clone(),
            postal_code: self.postal_code.clone(),
            address: self.address.clone(),
            phone: self.phone.clone(),
            care_level: None,
            key_person: None,
            devices: Vec::new(),
            consent: Default::default(),
        }
    }

    /// Whether a patient record is likely the same person: same reading and birth date.
    pub fn likely_same(&self, kana: &str, birth_date: NaiveDate) -> bool {
        self.birth_date == birth_date && text::search_key(&self.kana) == text::search_key(kana)
    }
}

/// What a hospital says about one admission: everything that makes two posts "the same".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SheetContent {
    pub template_id: TemplateId,
    pub base_organization_id: OrganizationId,
    pub patient_id: Option<PatientId>,
    pub patient: Option<Demographics>,
    pub admitted_at: DateTime<Utc>,
    pub emergency_admission: bool,
    pub expected_discharge_on: Option<NaiveDate>,
    pub answers: Answers,
    pub notes: Option<String>,
}

impl SheetContent {
    /// A stable digest of the content (field order and map order are fixed).
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }
}

/// The template a sheet follows, named.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateRef {
    pub id: TemplateId,
    pub code: String,
    pub template_version: i32,
}

/// A patient record that likely is the sheet's patient (same reading and birth date), shown
/// to the reviewing coordinator: never merged without their choice.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PatientCandidate {
    pub id: PatientId,
    pub name: String,
    pub kana: String,
    pub birth_date: NaiveDate,
    pub municipality_code: String,
}

/// A sheet as stored and answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Sheet {
    pub id: ScreeningId,
    pub hospital_id: OrganizationId,
    pub base_organization_id: OrganizationId,
    pub encounter_ref: String,
    /// 1 for the first sheet of an encounter; each correction adds one.
    pub revision: i32,
    pub supersedes_id: Option<ScreeningId>,
    pub superseded_by_id: Option<ScreeningId>,
    pub template: TemplateRef,
    pub patient_id: Option<PatientId>,
    /// The patient as the hospital described them (when it did not name a patient record).
    pub patient: Option<Demographics>,
    pub admitted_at: DateTime<Utc>,
    pub emergency_admission: bool,
    pub expected_discharge_on: Option<NaiveDate>,
    #[schema(value_type = Object)]
    pub answers: Answers,
    pub notes: Option<String>,
    pub status: SheetStatus,
    pub factors: Vec<String>,
    pub score: i32,
    /// `null` while a draft leaves a required item unanswered.
    pub result: Option<ScreeningResult>,
    pub deadlines: Vec<Deadline>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub interview_held_at: Option<DateTime<Utc>>,
    pub conference_held_at: Option<DateTime<Utc>>,
    pub case_id: Option<CaseId>,
    pub decline_reason: Option<String>,
    /// The token subject that accepted, declined or withdrew the sheet.
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// For the base's reviewers of a submitted sheet without a patient record: likely matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient_candidates: Option<Vec<PatientCandidate>>,
}

impl Sheet {
    /// Recomputes the deadlines' states at `now`.
    pub fn with_deadlines(mut self, screening_due: DateTime<Utc>, week_due: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        self.deadlines = vec![
            Deadline::at(DeadlineKind::Screening, screening_due, self.submitted_at, now),
            Deadline::at(DeadlineKind::Interview, week_due, self.interview_held_at, now),
            Deadline::at(DeadlineKind::Conference, week_due, self.conference_held_at, now),
        ];
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn boolean(code: &str, weight: Option<i64>) -> ItemInput {
        ItemInput {
            code: Some(code.into()),
            label_ja: Some("項目".into()),
            label_en: Some("Item".into()),
            kind: Some("boolean".into()),
            weight,
            ..Default::default()
        }
    }

    fn choice(code: &str, weights: &[i64]) -> ItemInput {
        ItemInput {
            code: Some(code.into()),
            label_ja: Some("選択".into()),
            label_en: Some("Choice".into()),
            kind: Some("choice".into()),
            options: Some(
                weights
                    .iter()
                    .enumerate()
                    .map(|(i, w)| OptionInput {
                        code: Some(format!("o{i}")),
                        label_ja: Some("選択肢".into()),
                        label_en: Some("Option".into()),
                        weight: Some(*w),
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    fn template(scoring: Scoring, threshold: Option<i32>, items: Vec<ItemInput>) -> Template {
        let fields = TemplateFields::parse(TemplateInput {
            code: Some("local".into()),
            title_ja: Some("地域版".into()),
            title_en: Some("Local".into()),
            scoring: Some(crate::db::to_code(&scoring).unwrap()),
            threshold: threshold.map(i64::from),
            items: Some(items),
        })
        .unwrap();
        let t = Utc::now();
        Template {
            id: TemplateId::new(),
            owner_organization_id: None,
            code: fields.code,
            template_version: 1,
            title_ja: fields.title_ja,
            title_en: fields.title_en,
            scoring: fields.scoring,
            threshold: fields.threshold,
            items: fields.items,
            status: TemplateStatus::Published,
            published_at: Some(t),
            version: 1,
            created_at: t,
            updated_at: t,
        }
    }

    fn answers(pairs: &[(&str, Value)]) -> Answers {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn any_factor_is_positive_with_one_factor_and_counts_them() {
        let t = template(Scoring::AnyFactor, None, vec![boolean("a", None), boolean("b", Some(5)), boolean("c", None)]);
        let none = t.evaluate(&answers(&[("a", false.into()), ("b", false.into()), ("c", false.into())]));
        assert_eq!(none.result, Some(ScreeningResult::Negative));
        assert_eq!(none.score, 0);
        let one = t.evaluate(&answers(&[("a", false.into()), ("b", true.into()), ("c", false.into())]));
        assert_eq!(one.result, Some(ScreeningResult::Positive));
        assert_eq!((one.score, one.factors), (1, vec!["b".to_owned()]));
    }

    #[test]
    fn weighted_sum_is_positive_at_the_threshold_not_below() {
        let t = template(
            Scoring::WeightedSum,
            Some(5),
            vec![boolean("a", Some(3)), boolean("b", Some(2)), choice("c", &[0, 1, 4])],
        );
        let below = t.evaluate(&answers(&[("a", true.into()), ("b", false.into()), ("c", "o1".into())]));
        assert_eq!((below.score, below.result), (4, Some(ScreeningResult::Negative)));
        assert_eq!(below.factors, ["a", "c"]);
        let at = t.evaluate(&answers(&[("a", true.into()), ("b", true.into()), ("c", "o0".into())]));
        assert_eq!((at.score, at.result), (5, Some(ScreeningResult::Positive)));
        let incomplete = t.evaluate(&answers(&[("a", true.into()), ("b", true.into())]));
        assert_eq!((incomplete.score, incomplete.result), (5, None));
    }

    #[test]
    fn answers_are_checked_item_by_item() {
        let t = template(Scoring::AnyFactor, None, vec![boolean("a", None), choice("c", &[0, 1])]);
        let mut errors = Vec::new();
        let given = answers(&[("a", "yes".into()), ("c", "o9".into()), ("z", true.into())]);
        t.check_answers(given, Some(false), &mut errors);
        let got: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
        assert_eq!(
            got,
            [("answers.a", "invalid_type"), ("answers.c", "unknown_option"), ("answers.z", "unknown_item")]
        );
        assert_eq!(t.missing(&answers(&[("a", true.into())]))[0].field, "answers.c");
    }

    #[test]
    fn the_emergency_item_follows_the_sheet_and_must_agree() {
        let t = template(Scoring::AnyFactor, None, vec![boolean("emergency_admission", None)]);
        let mut errors = Vec::new();
        let (filled, e) = t.check_answers(Answers::new(), Some(true), &mut errors);
        assert_eq!((filled.get("emergency_admission"), e), (Some(&Value::Bool(true)), Some(true)));
        let (_, e) = t.check_answers(answers(&[("emergency_admission", false.into())]), None, &mut errors);
        assert_eq!(e, Some(false));
        assert!(errors.is_empty());
        t.check_answers(answers(&[("emergency_admission", false.into())]), Some(true), &mut errors);
        assert_eq!(errors[0].code, "inconsistent");
    }

    #[test]
    fn templates_are_validated_whole() {
        let bad = TemplateFields::parse(TemplateInput {
            code: Some("National Template".into()),
            title_ja: Some("x".into()),
            title_en: None,
            scoring: Some("weighted_sum".into()),
            threshold: Some(9),
            items: Some(vec![boolean("a", Some(3)), boolean("a", Some(500)), choice("c", &[1])]),
        })
        .unwrap_err();
        let fields: Vec<&str> = bad.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["code", "title_en", "items[1].weight", "items[2].options"]);
        let unreachable = TemplateFields::parse(TemplateInput {
            code: Some("local".into()),
            title_ja: Some("x".into()),
            title_en: Some("x".into()),
            scoring: Some("weighted_sum".into()),
            threshold: Some(4),
            items: Some(vec![boolean("a", Some(3))]),
        })
        .unwrap_err();
        assert_eq!(unreachable[0].code, "unreachable");
        let reserved = TemplateFields::parse(TemplateInput {
            code: Some(NATIONAL_TEMPLATE.into()),
            title_ja: Some("x".into()),
            title_en: Some("x".into()),
            scoring: Some("any_factor".into()),
            threshold: None,
            items: Some(vec![boolean("a", None)]),
        })
        .unwrap_err();
        assert_eq!(reserved[0].code, "reserved");
    }

    #[test]
    fn deadlines_end_with_the_japan_day() {
        // Admitted Tuesday 2026-11-24 23:30 JST (14:30 UTC): due by the end of Friday the 27th JST.
        let admitted = Utc.with_ymd_and_hms(2026, 11, 24, 14, 30, 0).unwrap();
        assert_eq!(due_at(admitted, SCREENING_DAYS), Utc.with_ymd_and_hms(2026, 11, 27, 15, 0, 0).unwrap());
        assert_eq!(due_at(admitted, WEEK_DAYS), Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap());
        // Half an hour later it is already Wednesday in Japan: one more day.
        let next_day = Utc.with_ymd_and_hms(2026, 11, 24, 15, 0, 0).unwrap();
        assert_eq!(due_at(next_day, SCREENING_DAYS), Utc.with_ymd_and_hms(2026, 11, 28, 15, 0, 0).unwrap());
        let due = due_at(admitted, SCREENING_DAYS);
        let second = chrono::Duration::seconds(1);
        assert_eq!(Deadline::at(DeadlineKind::Screening, due, None, due - second).state, DeadlineState::Due);
        assert_eq!(Deadline::at(DeadlineKind::Screening, due, None, due).state, DeadlineState::Overdue);
        let in_time = Deadline::at(DeadlineKind::Screening, due, Some(due - second), due + second);
        assert_eq!((in_time.state, in_time.late), (DeadlineState::Met, false));
        let late = Deadline::at(DeadlineKind::Screening, due, Some(due), due + second);
        assert_eq!((late.state, late.late), (DeadlineState::Met, true));
    }

    #[test]
    fn the_workflow_allows_only_its_steps() {
        use SheetEvent as E;
        use SheetStatus as S;
        assert_eq!(transition(S::Draft, E::Submit), Some(S::Submitted));
        assert_eq!(transition(S::Draft, E::Accept), None);
        assert_eq!(transition(S::Submitted, E::Revise), Some(S::Superseded));
        assert_eq!(transition(S::Accepted, E::Withdraw), None);
        assert_eq!(transition(S::Declined, E::Accept), None);
        assert_eq!(transition(S::Superseded, E::Submit), None);
    }

    #[test]
    fn the_same_content_has_the_same_hash() {
        let content = SheetContent {
            template_id: TemplateId::new(),
            base_organization_id: OrganizationId::new(),
            patient_id: None,
            patient: None,
            admitted_at: Utc::now(),
            emergency_admission: true,
            expected_discharge_on: None,
            answers: answers(&[("b", true.into()), ("a", false.into())]),
            notes: None,
        };
        let mut other = content.clone();
        other.answers = answers(&[("a", false.into()), ("b", true.into())]);
        assert_eq!(content.hash(), other.hash());
        other.notes = Some("x".into());
        assert_ne!(content.hash(), other.hash());
    }
}
