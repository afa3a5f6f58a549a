//! Queries of the patient aggregate. Reads are always scoped (see `policy::CaseScope`).

use diesel::prelude::*;

use super::schema::cases::dsl as c;
use super::schema::patient_search_grams::dsl as g;
use super::schema::patients::dsl as p;
use super::{from_code, from_json, id, now, to_code, to_json, utc, DbConn, DbResult, MultiBackend};
use crate::auth::policy::CaseScope;
use crate::domain::ids::{OrganizationId, PatientId};
use crate::domain::patient::{Patient, PatientFields};
use crate::domain::text;
use crate::http::pagination::{Page, PageRequest};

#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema::patients)]
struct Row {
    id: String,
    name: String,
    kana: String,
    birth_date: chrono::NaiveDate,
    sex: String,
    municipality_code: String,
    postal_code: Option<String>,
    address: Option<String>,
    phone: Option<String>,
    care_level: Option<String>,
    key_person: Option<String>,
    devices: String,
    consent: String,
    registered_by: String,
    version: i64,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

impl TryFrom<Row> for Patient {
    type Error = super::DbError;
    fn try_from(r: Row) -> DbResult<Self> {
        Ok(Patient {
            id: id("id", &r.id)?,
            name: r.name,
            kana: r.kana,
            birth_date: r.birth_date,
            sex: from_code(&r.sex)?,
            municipality_code: r.municipality_code,
            postal_code: r.postal_code,
            address: r.address,
            phone: r.phone,
            care_level: r.care_level.as_deref().map(from_code).transpose()?,
            key_person: r.key_person.as_deref().map(|k| from_json("key_person", k)).transpose()?,
            devices: from_json("devices", &r.devices)?,
            consent: from_json("consent", &r.consent)?,
            registered_by: id("registered_by", &r.registered_by)?,
            version: r.version,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        })
    }
}

impl Patient {
    pub fn fields(&self) -> PatientFields {
        PatientFields {
            name: self.name.clone(),
            kana: self.kana.clone(),
            birth_date: self.birth_date,
            sex: self.sex,
            municipality_code: self.municipality_code.clone(),
            postal_code: self.postal_code.clone(),
            address: self.address.clone(),
            phone: self.phone.clone(),
            care_level: self.care_level,
            key_person: self.key_person.clone(),
            devices: self.devices.clone(),
            consent: self.consent,
        }
    }
}

#[derive(AsChangeset, Insertable)]
#[diesel(table_name = super::schema::patients, treat_none_as_null = true)]
struct Changes {
    name: String,
    kana: String,
    birth_date: chrono::NaiveDate,
    sex: String,
    municipality_code: String,
    postal_code: Option<String>,
    address: Option<String>,
    phone: Option<String>,
    care_level: Option<String>,
    key_person: Option<String>,
    devices: String,
    consent: String,
    search_text: String,
}

impl Changes {
    fn of(f: &PatientFields) -> DbResult<Self> {
        Ok(Changes {
            name: f.name.clone(),
            kana: f.kana.clone(),
            birth_date: f.birth_date,
            sex: to_code(&f.sex)?,
            municipality_code: f.municipality_code.clone(),
            postal_code: f.postal_code.clone(),
            address: f.address.clone(),
            phone: f.phone.clone(),
            care_level: f.care_level.as_ref().map(to_code).transpose()?,
            key_person: f.key_person.as_ref().map(to_json).transpose()?,
            devices: to_json(&f.devices)?,
            consent: to_json(&f.consent)?,
            search_text: text::search_text(&f.name, Some(&f.kana)),
        })
    }
}

#[tracing::instrument(skip_all)]
pub fn insert(conn: &mut DbConn, fields: &PatientFields, registered_by: OrganizationId) -> DbResult<Patient> {
    let new_id = PatientId::new();
    let at = now();
    diesel::insert_into(p::patients)
        .values((
            p::id.eq(new_id.to_string()),
            Changes::of(fields)?,
            p::registered_by.eq(registered_by.to_string()),
            p::version.eq(1_i64),
            p::created_at.eq(at),
            p::updated_at.eq(at),
        ))
        .execute(conn)?;
    index(conn, new_id, fields)?;
    get(conn, new_id)
}

/// (Re)writes the patient's entries in the search index.
fn index(conn: &mut DbConn, patient: PatientId, fields: &PatientFields) -> DbResult<()> {
    let id = patient.to_string();
    diesel::delete(g::patient_search_grams.filter(g::patient_id.eq(&id))).execute(conn)?;
    let rows: Vec<_> = text::bigrams(&text::search_text(&fields.name, Some(&fields.kana)))
        .into_iter()
        .map(|gram| (g::gram.eq(gram), g::patient_id.eq(id.clone())))
        .collect();
    match conn {
        // One multi-row INSERT: a round trip per pair is what PostgreSQL must not be asked for.
        DbConn::Pg(pg) if !rows.is_empty() => {
            diesel::insert_into(g::patient_search_grams).values(rows).execute(pg)?;
        }
        DbConn::Pg(_) => {}
        DbConn::Sqlite(_) => {
            for row in rows {
                diesel::insert_into(g::patient_search_grams).values(row).execute(conn)?;
            }
        }
    }
    Ok(())
}

/// At most this many of a key's pairs select candidates (LIKE checks the rest).
const SEARCH_GRAMS: usize = 3;

/// A patient regardless of scope (for internal checks; answer only what `get_visible` finds).
#[tracing::instrument(skip(conn))]
pub fn get(conn: &mut DbConn, patient: PatientId) -> DbResult<Patient> {
    p::patients.find(patient.to_string()).select(Row::as_select()).first(conn)?.try_into()
}

type Visible = Box<dyn BoxableExpression<p::patients, MultiBackend, SqlType = diesel::sql_types::Bool>>;

/// How a visibility test meets the patients it filters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// A few candidates (one id, a search's matches): each is checked with one probe of
    /// `cases_patient` (a correlated `EXISTS`), instead of first listing every patient of the
    /// organization.
    EachCandidate,
    /// A plain list: the organization's patients as a set (`IN (…)`), so that a page is read from
    /// the organization's own rows instead of walking every patient of the region in id order.
    Set,
}

/// Patients the scope may read: registered by the organization, in a case it manages, or in a
/// case whose team has the practitioner now.
fn visible(scope: &CaseScope, probe: Probe) -> Visible {
    branches(scope, probe)
        .into_iter()
        .reduce(|a, b| Box::new(a.or(b)))
        .unwrap_or_else(|| Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0")))
}

/// The ways the scope sees patients, one condition each (none when it sees nothing).
fn branches(scope: &CaseScope, probe: Probe) -> Vec<Visible> {
    if scope.any {
        return vec![Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 1"))];
    }
    let mut parts: Vec<Visible> = Vec::new();
    if let Some(org) = scope.managing_org {
        let org = org.to_string();
        match probe {
            Probe::EachCandidate => parts.push(Box::new(p::registered_by.eq(org.clone()).or(diesel::dsl::exists(
                c::cases.filter(c::patient_id.eq(p::id)).filter(c::managing_organization_id.eq(org)),
            )))),
            Probe::Set => {
                parts.push(Box::new(p::registered_by.eq(org.clone())));
                parts.push(Box::new(
                    p::id.eq_any(c::cases.filter(c::managing_organization_id.eq(org)).select(c::patient_id)),
                ));
            }
        }
    }
    if let Some(member) = scope.member {
        let in_team =
            c::cases.filter(c::id.eq_any(super::cases::current_cases_of!(member.to_string()))).select(c::patient_id);
        parts.push(Box::new(p::id.eq_any(in_team)));
    }
    parts
}

/// A patient the scope may read; `NotFound` otherwise.
#[tracing::instrument(skip(conn))]
pub fn get_visible(conn: &mut DbConn, patient: PatientId, scope: &CaseScope) -> DbResult<Patient> {
    p::patients
        .filter(p::id.eq(patient.to_string()))
        .filter(visible(scope, Probe::EachCandidate))
        .select(Row::as_select())
        .first(conn)?
        .try_into()
}

/// Replaces the fields of `patient` if it is still at `version`; `Ok(false)` when it is not.
pub fn update(conn: &mut DbConn, patient: PatientId, version: i64, fields: &PatientFields) -> DbResult<bool> {
    let changed = diesel::update(p::patients.filter(p::id.eq(patient.to_string())).filter(p::version.eq(version)))
        .set((Changes::of(fields)?, p::version.eq(version + 1), p::updated_at.eq(now())))
        .execute(conn)?;
    if changed == 1 {
        index(conn, patient, fields)?;
    }
    Ok(changed == 1)
}

/// Filters of `GET /api/v1/patients`.
#[derive(Debug, Default)]
pub struct Filter {
    /// Already a search key.
    pub q: Option<String>,
    pub birth_date: Option<chrono::NaiveDate>,
}

/// A page of the patients the scope sees. A search checks each candidate of the index; a plain
/// list runs one query per way of seeing (registered here, managed here, on the practitioner's
/// teams), each in id order from the cursor, and merges them: an `OR` of them kept PostgreSQL
/// off their indexes, walking every patient of the region in id order to fill a page.
#[tracing::instrument(skip(conn))]
pub fn list(conn: &mut DbConn, scope: &CaseScope, filter: &Filter, page: &PageRequest) -> DbResult<Page<Patient>> {
    let probe = if filter.q.is_some() || filter.birth_date.is_some() { Probe::EachCandidate } else { Probe::Set };
    let queries = match probe {
        Probe::EachCandidate => vec![visible(scope, probe)],
        Probe::Set => branches(scope, probe),
    };
    let merge = queries.len() > 1;
    let mut rows: Vec<Row> = Vec::new();
    for visible in queries {
        rows.extend(list_branch(conn, visible, filter, page)?);
    }
    if merge {
        rows = super::merge_branches(rows, |r| r.id.clone(), page.fetch_limit());
    }
    let items = rows.into_iter().map(Patient::try_from).collect::<DbResult<Vec<_>>>()?;
    Ok(page.finish(items, |x| x.id.to_string()))
}

fn list_branch(conn: &mut DbConn, visible: Visible, filter: &Filter, page: &PageRequest) -> DbResult<Vec<Row>> {
    let mut q = p::patients.select(Row::as_select()).filter(visible).into_boxed();
    if let Some(key) = &filter.q {
        // Candidates from the index (keys of two characters or more), then the exact test.
        let grams: Vec<String> = text::bigrams(key).into_iter().collect();
        let step = grams.len().div_ceil(SEARCH_GRAMS).max(1);
        for gram in grams.into_iter().step_by(step).take(SEARCH_GRAMS) {
            q = q.filter(p::id.eq_any(g::patient_search_grams.filter(g::gram.eq(gram)).select(g::patient_id)));
        }
        q = q.filter(p::search_text.like(text::like_pattern(key)).escape('\\'));
    }
    if let Some(d) = filter.birth_date {
        q = q.filter(p::birth_date.eq(d));
    }
    if let Some(after) = &page.after {
        q = q.filter(p::id.gt(after.clone()));
    }
    Ok(q.order(p::id.asc()).limit(page.fetch_limit()).load(conn)?)
}

/// Patients the scope may read born on `birth_date` whose name or reading contains `kana`
/// (folded as search keys; the caller compares the readings exactly; at most 50).
pub fn born_on(
    conn: &mut DbConn,
    scope: &CaseScope,
    birth_date: chrono::NaiveDate,
    kana: &str,
) -> DbResult<Vec<Patient>> {
    let rows: Vec<Row> = p::patients
        .select(Row::as_select())
        .filter(visible(scope, Probe::EachCandidate))
        .filter(p::birth_date.eq(birth_date))
        .filter(p::search_text.like(text::like_pattern(&text::search_key(kana))).escape('\\'))
        .order(p::id.asc())
        .limit(50)
        .load(conn)?;
    rows.into_iter().map(Patient::try_from).collect()
}
