//! Queries of discharge screening: template versions and sheets. Sheet reads are always scoped
//! (see `policy::SheetScope`): the filter is part of the query.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::screening_sheets::dsl as s;
use super::schema::screening_templates::dsl as t;
use super::{
    fixed, from_code, from_json, id, native, now, to_code, to_json, utc, DbConn, DbError, DbResult, MultiBackend,
};
use crate::auth::policy::SheetScope;
use crate::domain::ids::{CaseId, OrganizationId, PatientId, ScreeningId, TemplateId};
use crate::domain::screening::{
    Evaluation, Sheet, SheetContent, SheetStatus, Template, TemplateFields, TemplateRef, TemplateStatus,
};
use crate::domain::time::to_db;
use crate::http::pagination::{Page, PageRequest};

#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema::screening_templates)]
struct TemplateRow {
    id: String,
    owner_organization_id: Option<String>,
    code: String,
    template_version: i32,
    title_ja: String,
    title_en: String,
    scoring: String,
    threshold: Option<i32>,
    items: String,
    status: String,
    published_at: Option<NaiveDateTime>,
    version: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl TryFrom<TemplateRow> for Template {
    type Error = DbError;
    fn try_from(r: TemplateRow) -> DbResult<Self> {
        Ok(Template {
            id: id("id", &r.id)?,
            owner_organization_id: r.owner_organization_id.as_deref().map(|o| id("owner", o)).transpose()?,
            code: r.code,
            template_version: r.template_version,
            title_ja: r.title_ja,
            title_en: r.title_en,
            scoring: from_code(&r.scoring)?,
            threshold: r.threshold,
            items: from_json("items", &r.items)?,
            status: from_code(&r.status)?,
            published_at: r.published_at.map(utc),
            version: r.version,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        })
    }
}

/// Adds a draft version of an organization's template: the next version number of its code.
/// A racing creation of the same code fails on the unique index (the caller retries).
pub fn insert_template(conn: &mut DbConn, owner: OrganizationId, fields: &TemplateFields) -> DbResult<Template> {
    let owner_key = owner.to_string();
    let latest: Option<i32> = t::screening_templates
        .filter(t::owner_key.eq(&owner_key))
        .filter(t::code.eq(&fields.code))
        .select(diesel::dsl::max(t::template_version))
        .first(conn)?;
    let new_id = TemplateId::new();
    let at = now();
    diesel::insert_into(t::screening_templates)
        .values((
            t::id.eq(new_id.to_string()),
            t::owner_organization_id.eq(Some(owner_key.clone())),
            t::owner_key.eq(owner_key),
            t::code.eq(&fields.code),
            t::template_version.eq(latest.unwrap_or(0) + 1),
            t::title_ja.eq(&fields.title_ja),
            t::title_en.eq(&fields.title_en),
            t::scoring.eq(to_code(&fields.scoring)?),
            t::threshold.eq(fields.threshold),
            t::items.eq(to_json(&fields.items)?),
            t::status.eq(to_code(&TemplateStatus::Draft)?),
            t::version.eq(1_i64),
            t::created_at.eq(at),
            t::updated_at.eq(at),
        ))
        .execute(conn)?;
    get_template(conn, new_id)
}

pub fn get_template(conn: &mut DbConn, template: TemplateId) -> DbResult<Template> {
    native!(conn, |c| t::screening_templates.find(template.to_string()).select(TemplateRow::as_select()).first(c))?
        .try_into()
}

type TemplateVisible =
    Box<dyn BoxableExpression<t::screening_templates, MultiBackend, SqlType = diesel::sql_types::Bool>>;

/// Published templates are everyone's; drafts are their owner's.
fn template_visible(org: OrganizationId) -> TemplateVisible {
    Box::new(t::status.eq("published").or(t::owner_key.eq(org.to_string())))
}

pub fn get_visible_template(conn: &mut DbConn, template: TemplateId, org: OrganizationId) -> DbResult<Template> {
    t::screening_templates
        .filter(t::id.eq(template.to_string()))
        .filter(template_visible(org))
        .select(TemplateRow::as_select())
        .first(conn)?
        .try_into()
}

/// The published template a sheet names by code: the hospital's own first, then the built-in
/// ones; the highest published version unless one is named.
pub fn find_published(
    conn: &mut DbConn,
    code: &str,
    version: Option<i32>,
    hospital: OrganizationId,
) -> DbResult<Option<Template>> {
    for owner in [hospital.to_string(), String::new()] {
        // One statement of a fixed shape with a version and one without (kept prepared).
        let found: Option<TemplateRow> = native!(conn, |c| {
            let q = t::screening_templates
                .filter(t::owner_key.eq(&owner))
                .filter(t::code.eq(code))
                .filter(t::status.eq("published"))
                .select(TemplateRow::as_select())
                .order(t::template_version.desc());
            match version {
                Some(v) => q.filter(t::template_version.eq(v)).first(c).optional(),
                None => q.first(c).optional(),
            }
        })?;
        if let Some(row) = found {
            return Ok(Some(row.try_into()?));
        }
    }
    Ok(None)
}

/// Replaces a draft's content if it is still a draft at `version`.
pub fn update_template(conn: &mut DbConn, template: TemplateId, version: i64, f: &TemplateFields) -> DbResult<bool> {
    let target = t::screening_templates
        .filter(t::id.eq(template.to_string()))
        .filter(t::version.eq(version))
        .filter(t::status.eq("draft"));
    let changed = diesel::update(target)
        .set((
            t::title_ja.eq(&f.title_ja),
            t::title_en.eq(&f.title_en),
            t::scoring.eq(to_code(&f.scoring)?),
            t::threshold.eq(f.threshold),
            t::items.eq(to_json(&f.items)?),
            t::version.eq(version + 1),
            t::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// `draft → published`, once.
pub fn publish_template(conn: &mut DbConn, template: TemplateId) -> DbResult<bool> {
    let at = now();
    let target = t::screening_templates.filter(t::id.eq(template.to_string())).filter(t::status.eq("draft"));
    let changed = diesel::update(target)
        .set((
            t::status.eq("published"),
            t::published_at.eq(Some(at)),
            t::version.eq(t::version + 1),
            t::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Filters of `GET /api/v1/screening-templates`.
#[derive(Debug, Default)]
pub struct TemplateFilter {
    pub code: Option<String>,
    pub status: Option<TemplateStatus>,
    pub owner_organization_id: Option<OrganizationId>,
    /// Only the built-in templates.
    pub built_in: bool,
}

pub fn list_templates(
    conn: &mut DbConn,
    org: OrganizationId,
    filter: &TemplateFilter,
    page: &PageRequest,
) -> DbResult<Page<Template>> {
    let mut q = t::screening_templates.select(TemplateRow::as_select()).filter(template_visible(org)).into_boxed();
    if let Some(code) = &filter.code {
        q = q.filter(t::code.eq(code.clone()));
    }
    if let Some(status) = &filter.status {
        q = q.filter(t::status.eq(to_code(status)?));
    }
    if let Some(owner) = filter.owner_organization_id {
        q = q.filter(t::owner_key.eq(owner.to_string()));
    }
    if filter.built_in {
        q = q.filter(t::owner_key.eq(""));
    }
    if let Some(after) = &page.after {
        q = q.filter(t::id.gt(after.clone()));
    }
    let rows: Vec<TemplateRow> = q.order(t::id.asc()).limit(page.fetch_limit()).load(conn)?;
    let items = rows.into_iter().map(Template::try_from).collect::<DbResult<Vec<_>>>()?;
    Ok(page.finish(items, |x| x.id.to_string()))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema::screening_sheets)]
struct SheetRow {
    id: String,
    hospital_id: String,
    base_organization_id: String,
    encounter_ref: String,
    revision: i32,
    supersedes_id: Option<String>,
    template_id: String,
    patient_id: Option<String>,
    demographics: Option<String>,
    admitted_at: NaiveDateTime,
    emergency_admission: bool,
    expected_discharge_on: Option<NaiveDate>,
    answers: String,
    notes: Option<String>,
    factors: String,
    score: i32,
    result: Option<String>,
    status: String,
    screening_due_at: NaiveDateTime,
    week_due_at: NaiveDateTime,
    submitted_at: Option<NaiveDateTime>,
    interview_held_at: Option<NaiveDateTime>,
    conference_held_at: Option<NaiveDateTime>,
    case_id: Option<String>,
    decline_reason: Option<String>,
    decided_by: Option<String>,
    decided_at: Option<NaiveDateTime>,
    version: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

impl SheetRow {
    fn into_sheet(
        self,
        template: TemplateRef,
        superseded_by: Option<ScreeningId>,
        at: DateTime<Utc>,
    ) -> DbResult<Sheet> {
        let sheet = Sheet {
            id: id("id", &self.id)?,
            hospital_id: id("hospital_id", &self.hospital_id)?,
            base_organization_id: id("base_organization_id", &self.base_organization_id)?,
            encounter_ref: self.encounter_ref,
            revision: self.revision,
            supersedes_id: self.supersedes_id.as_deref().map(|x| id("supersedes_id", x)).transpose()?,
            superseded_by_id: superseded_by,
            template,
            patient_id: self.patient_id.as_deref().map(|x| id("patient_id", x)).transpose()?,
            patient: self.demographics.as_deref().map(|d| from_json("demographics", d)).transpose()?,
            admitted_at: utc(self.admitted_at),
            emergency_admission: self.emergency_admission,
            expected_discharge_on: self.expected_discharge_on,
            answers: from_json("answers", &self.answers)?,
            notes: self.notes,
            status: from_code(&self.status)?,
            factors: from_json("factors", &self.factors)?,
            score: self.score,
            result: self.result.as_deref().map(from_code).transpose()?,
            deadlines: Vec::new(),
            submitted_at: self.submitted_at.map(utc),
            interview_held_at: self.interview_held_at.map(utc),
            conference_held_at: self.conference_held_at.map(utc),
            case_id: self.case_id.as_deref().map(|x| id("case_id", x)).transpose()?,
            decline_reason: self.decline_reason,
            decided_by: self.decided_by,
            decided_at: self.decided_at.map(utc),
            version: self.version,
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            patient_candidates: None,
        };
        Ok(sheet.with_deadlines(utc(self.screening_due_at), utc(self.week_due_at), at))
    }
}

/// Turns rows into sheets with two more queries whatever their number: their templates'
/// names and the revisions that replaced them.
fn render(conn: &mut DbConn, rows: Vec<SheetRow>) -> DbResult<Vec<Sheet>> {
    // (template id, code, version) and (sheet id, the sheet it supersedes).
    type Refs = Vec<(String, String, i32)>;
    type Successors = Vec<(String, Option<String>)>;
    let (refs, successors): (Refs, Successors) = match rows.as_slice() {
        // One sheet (every read and change of one): statements of a fixed shape, kept prepared,
        // where an `IN` list is prepared again at each call on SQLite.
        [one] => native!(conn, |c| {
            let template =
                t::screening_templates.find(&one.template_id).select((t::id, t::code, t::template_version)).load(c)?;
            let next =
                s::screening_sheets.filter(s::supersedes_id.eq(&one.id)).select((s::id, s::supersedes_id)).load(c)?;
            Ok::<_, diesel::result::Error>((template, next))
        })?,
        _ => {
            let template_ids: BTreeSet<&str> = rows.iter().map(|r| r.template_id.as_str()).collect();
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            (
                t::screening_templates
                    .filter(t::id.eq_any(template_ids))
                    .select((t::id, t::code, t::template_version))
                    .load(conn)?,
                s::screening_sheets
                    .filter(s::supersedes_id.eq_any(ids))
                    .select((s::id, s::supersedes_id))
                    .load(conn)?,
            )
        }
    };
    let refs: HashMap<String, (String, i32)> = refs.into_iter().map(|(i, c, v)| (i, (c, v))).collect();
    let successors: HashMap<String, String> = successors.into_iter().filter_map(|(i, old)| Some((old?, i))).collect();
    let at = Utc::now();
    rows.into_iter()
        .map(|r| {
            let (code, v) = refs.get(&r.template_id).cloned().ok_or_else(|| super::corrupt("template_id"))?;
            let template = TemplateRef { id: id("template_id", &r.template_id)?, code, template_version: v };
            let next = successors.get(&r.id).map(|x| id("superseded_by_id", x)).transpose()?;
            r.into_sheet(template, next, at)
        })
        .collect()
}

/// A new sheet (or a revision of one), with what the server derived.
pub struct NewSheet<'a> {
    pub hospital: OrganizationId,
    pub encounter_ref: &'a str,
    pub revision: i32,
    pub supersedes: Option<ScreeningId>,
    pub content: &'a SheetContent,
    pub evaluation: &'a Evaluation,
    pub status: SheetStatus,
    pub screening_due_at: DateTime<Utc>,
    pub week_due_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub interview_held_at: Option<DateTime<Utc>>,
    pub conference_held_at: Option<DateTime<Utc>>,
}

// The statements kept prepared ([`super::fixed`]).
super::statements!(InsertSheet);

/// The columns a sheet's content and its evaluation set: written by an insert and by a draft's
/// update alike (a macro: the `?` inside return from the caller).
macro_rules! content_columns {
    ($c:expr, $e:expr) => {
        (
            s::base_organization_id.eq($c.base_organization_id.to_string()),
            s::patient_id.eq($c.patient_id.map(|x| x.to_string())),
            s::demographics.eq($c.patient.as_ref().map(to_json).transpose()?),
            s::admitted_at.eq(to_db($c.admitted_at)),
            s::emergency_admission.eq($c.emergency_admission),
            s::expected_discharge_on.eq($c.expected_discharge_on),
            s::answers.eq(to_json(&$c.answers)?),
            s::notes.eq($c.notes.as_deref()),
            s::factors.eq(to_json(&$e.factors)?),
            s::score.eq($e.score),
            s::result.eq($e.result.as_ref().map(to_code).transpose()?),
            s::content_hash.eq($c.hash()),
        )
    };
}

#[tracing::instrument(skip_all)]
pub fn insert_sheet(conn: &mut DbConn, new: &NewSheet) -> DbResult<ScreeningId> {
    let new_id = ScreeningId::new();
    let at = now();
    let c = new.content;
    let e = new.evaluation;
    fixed::<InsertSheet, _>(diesel::insert_into(s::screening_sheets).values((
        (
            s::id.eq(new_id.to_string()),
            s::hospital_id.eq(new.hospital.to_string()),
            s::encounter_ref.eq(new.encounter_ref),
            s::revision.eq(new.revision),
            s::supersedes_id.eq(new.supersedes.map(|x| x.to_string())),
            s::template_id.eq(c.template_id.to_string()),
        ),
        content_columns!(c, e),
        (
            s::status.eq(to_code(&new.status)?),
            s::screening_due_at.eq(to_db(new.screening_due_at)),
            s::week_due_at.eq(to_db(new.week_due_at)),
            s::submitted_at.eq(new.submitted_at.map(to_db)),
            s::interview_held_at.eq(new.interview_held_at.map(to_db)),
            s::conference_held_at.eq(new.conference_held_at.map(to_db)),
            s::version.eq(1_i64),
            s::created_at.eq(at),
            s::updated_at.eq(at),
        ),
    )))
    .run(conn)?;
    Ok(new_id)
}

/// A sheet regardless of scope (internal use; answer only what a scoped read finds).
pub fn get_sheet(conn: &mut DbConn, sheet: ScreeningId) -> DbResult<Sheet> {
    let row: SheetRow =
        native!(conn, |c| s::screening_sheets.find(sheet.to_string()).select(SheetRow::as_select()).first(c))?;
    render(conn, vec![row])?.pop().ok_or(DbError::NotFound)
}

/// The patient a sheet names, whoever asks (for the audit row of a refused access).
pub fn patient_of(conn: &mut DbConn, sheet: ScreeningId) -> DbResult<Option<PatientId>> {
    let found: Option<Option<String>> =
        native!(conn, |c| s::screening_sheets.find(sheet.to_string()).select(s::patient_id).first(c).optional())?;
    found.flatten().map(|p| id("patient_id", &p)).transpose()
}

type SheetVisible = super::Cond<s::screening_sheets>;

/// Hospital staff see their hospital's sheets; the base's reviewers see the sheets sent to it
/// (a sheet never submitted, even withdrawn, is the hospital's own); a case's team sees the
/// sheets linked to the case.
fn sheet_visible(scope: &SheetScope) -> SheetVisible {
    super::any_of(sheet_branches(scope))
}

/// The ways the scope sees sheets, one condition each (none when it sees nothing). Only the
/// scope's own: a constant `1 = 0 OR …` in front kept SQLite from using their indexes.
fn sheet_branches(scope: &SheetScope) -> Vec<SheetVisible> {
    let mut parts: Vec<SheetVisible> = Vec::new();
    if let Some(hospital) = scope.hospital {
        parts.push(Box::new(s::hospital_id.eq(hospital.to_string())));
    }
    if let Some(base) = scope.base {
        parts.push(Box::new(s::base_organization_id.eq(base.to_string()).and(s::submitted_at.is_not_null())));
    }
    if let Some(member) = scope.member {
        let cases = super::cases::current_cases_of!(member.to_string());
        parts.push(Box::new(s::case_id.assume_not_null().eq_any(cases)));
    }
    parts
}

#[tracing::instrument(skip(conn))]
pub fn get_visible_sheet(conn: &mut DbConn, sheet: ScreeningId, scope: &SheetScope) -> DbResult<Sheet> {
    let row: SheetRow = s::screening_sheets
        .filter(s::id.eq(sheet.to_string()))
        .filter(sheet_visible(scope))
        .select(SheetRow::as_select())
        .first(conn)?;
    render(conn, vec![row])?.pop().ok_or(DbError::NotFound)
}

/// Every revision of a hospital's encounter, newest first, with its content hash.
pub fn encounter_revisions(
    conn: &mut DbConn,
    hospital: OrganizationId,
    encounter_ref: &str,
) -> DbResult<Vec<(ScreeningId, SheetStatus, String)>> {
    let rows: Vec<(String, String, String)> = native!(conn, |c| s::screening_sheets
        .filter(s::hospital_id.eq(hospital.to_string()))
        .filter(s::encounter_ref.eq(encounter_ref))
        .order(s::revision.desc())
        .select((s::id, s::status, s::content_hash))
        .load(c))?;
    rows.into_iter().map(|(i, st, h)| Ok((id("id", &i)?, from_code(&st)?, h))).collect()
}

/// Replaces a draft's content if it is still a draft at `version`.
pub fn update_draft(
    conn: &mut DbConn,
    sheet: ScreeningId,
    version: i64,
    c: &SheetContent,
    e: &Evaluation,
    due: (DateTime<Utc>, DateTime<Utc>),
) -> DbResult<bool> {
    let target = s::screening_sheets
        .filter(s::id.eq(sheet.to_string()))
        .filter(s::version.eq(version))
        .filter(s::status.eq("draft"));
    let changed = diesel::update(target)
        .set((
            content_columns!(c, e),
            (
                s::screening_due_at.eq(to_db(due.0)),
                s::week_due_at.eq(to_db(due.1)),
                s::version.eq(version + 1),
                s::updated_at.eq(now()),
            ),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// What a status change writes besides the status.
#[derive(Debug, Default)]
pub struct Decision {
    pub case_id: Option<CaseId>,
    pub patient_id: Option<PatientId>,
    pub decline_reason: Option<String>,
    /// The deciding subject (accept, decline, withdraw).
    pub decided_by: Option<String>,
    pub submitted: bool,
}

/// Compare-and-set on the status and version: `Ok(false)` when the sheet changed meanwhile. The
/// decision's fields are written first (on the row still in `from`), so that the row is never
/// seen, nor checked, in its new status without them.
pub fn transition(
    conn: &mut DbConn,
    sheet: ScreeningId,
    from: (SheetStatus, i64),
    to: SheetStatus,
    d: &Decision,
) -> DbResult<bool> {
    let at = now();
    let (from, version) = (to_code(&from.0)?, from.1);
    let this = || {
        s::screening_sheets
            .filter(s::id.eq(sheet.to_string()))
            .filter(s::status.eq(from.clone()))
            .filter(s::version.eq(version))
    };
    if let Some(case) = d.case_id {
        diesel::update(this()).set(s::case_id.eq(Some(case.to_string()))).execute(conn)?;
    }
    if let Some(patient) = d.patient_id {
        diesel::update(this()).set(s::patient_id.eq(Some(patient.to_string()))).execute(conn)?;
    }
    if let Some(reason) = &d.decline_reason {
        diesel::update(this()).set(s::decline_reason.eq(Some(reason))).execute(conn)?;
    }
    if let Some(who) = &d.decided_by {
        diesel::update(this()).set((s::decided_by.eq(Some(who)), s::decided_at.eq(Some(at)))).execute(conn)?;
    }
    if d.submitted {
        diesel::update(this()).set(s::submitted_at.eq(Some(at))).execute(conn)?;
    }
    let changed = diesel::update(this())
        .set((s::status.eq(to_code(&to)?), s::version.eq(s::version + 1), s::updated_at.eq(at)))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Records the interview or the conference, once.
pub fn record_milestone(
    conn: &mut DbConn,
    sheet: ScreeningId,
    version: i64,
    conference: bool,
    held_at: DateTime<Utc>,
) -> DbResult<bool> {
    let live: Vec<String> = SheetStatus::LIVE.iter().map(to_code).collect::<DbResult<_>>()?;
    let this = s::screening_sheets
        .filter(s::id.eq(sheet.to_string()))
        .filter(s::version.eq(version))
        .filter(s::status.eq_any(live));
    let held = Some(to_db(held_at));
    let changed = if conference {
        diesel::update(this.filter(s::conference_held_at.is_null()))
            .set((s::conference_held_at.eq(held), s::version.eq(s::version + 1), s::updated_at.eq(now())))
            .execute(conn)?
    } else {
        diesel::update(this.filter(s::interview_held_at.is_null()))
            .set((s::interview_held_at.eq(held), s::version.eq(s::version + 1), s::updated_at.eq(now())))
            .execute(conn)?
    };
    Ok(changed == 1)
}

/// Filters of `GET /api/v1/screenings`.
#[derive(Debug, Default)]
pub struct Filter {
    pub hospital_id: Option<OrganizationId>,
    pub base_organization_id: Option<OrganizationId>,
    pub status: Option<SheetStatus>,
    pub result: Option<crate::domain::screening::ScreeningResult>,
    pub case_id: Option<CaseId>,
    pub patient_id: Option<PatientId>,
    pub encounter_ref: Option<String>,
    /// Live sheets with a deadline not met and due before this instant (exclusive).
    pub due_before: Option<DateTime<Utc>>,
    /// Live sheets with a deadline not met whose time has come (due at or before now).
    pub overdue_at: Option<DateTime<Utc>>,
}

type SheetCond = Box<dyn BoxableExpression<s::screening_sheets, MultiBackend, SqlType = diesel::sql_types::Bool>>;

/// Live sheets with an unmet deadline due before `t` (or at `t` when `inclusive`).
fn unmet_before(t: NaiveDateTime, inclusive: bool) -> DbResult<SheetCond> {
    let live: Vec<String> = SheetStatus::LIVE.iter().map(to_code).collect::<DbResult<_>>()?;
    let (screening, week): (SheetCond, SheetCond) = if inclusive {
        (Box::new(s::screening_due_at.le(t)), Box::new(s::week_due_at.le(t)))
    } else {
        (Box::new(s::screening_due_at.lt(t)), Box::new(s::week_due_at.lt(t)))
    };
    let unmet_week = s::interview_held_at.is_null().or(s::conference_held_at.is_null());
    Ok(Box::new(s::status.eq_any(live).and(s::submitted_at.is_null().and(screening).or(unmet_week.and(week)))))
}

/// A page of the sheets the scope sees. One query per way of seeing (the hospital's, the base's,
/// the practitioner's cases'), each in id order from the cursor, merged: an `OR` of them kept
/// PostgreSQL off their indexes, walking every sheet in id order to fill a page.
#[tracing::instrument(skip(conn))]
pub fn list(conn: &mut DbConn, scope: &SheetScope, filter: &Filter, page: &PageRequest) -> DbResult<Page<Sheet>> {
    let rows = super::union_pages(
        sheet_branches(scope),
        page.fetch_limit(),
        |r: &SheetRow| r.id.clone(),
        |visible| list_branch(conn, visible, filter, page),
    )?;
    let items = render(conn, rows)?;
    Ok(page.finish(items, |x| x.id.to_string()))
}

fn list_branch(
    conn: &mut DbConn,
    visible: SheetVisible,
    filter: &Filter,
    page: &PageRequest,
) -> DbResult<Vec<SheetRow>> {
    let mut q = s::screening_sheets.select(SheetRow::as_select()).filter(visible).into_boxed();
    if let Some(h) = filter.hospital_id {
        q = q.filter(s::hospital_id.eq(h.to_string()));
    }
    if let Some(b) = filter.base_organization_id {
        q = q.filter(s::base_organization_id.eq(b.to_string()));
    }
    if let Some(st) = &filter.status {
        q = q.filter(s::status.eq(to_code(st)?));
    }
    if let Some(r) = &filter.result {
        q = q.filter(s::result.eq(to_code(r)?));
    }
    if let Some(c) = filter.case_id {
        q = q.filter(s::case_id.eq(c.to_string()));
    }
    if let Some(p) = filter.patient_id {
        q = q.filter(s::patient_id.eq(p.to_string()));
    }
    if let Some(e) = &filter.encounter_ref {
        q = q.filter(s::encounter_ref.eq(e.clone()));
    }
    if let Some(t) = filter.due_before {
        q = q.filter(unmet_before(to_db(t), false)?);
    }
    if let Some(t) = filter.overdue_at {
        q = q.filter(unmet_before(to_db(t), true)?);
    }
    if let Some(after) = &page.after {
        q = q.filter(s::id.gt(after.clone()));
    }
    Ok(q.order(s::id.asc()).limit(page.fetch_limit()).load(conn)?)
}
