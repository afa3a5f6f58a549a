//! Queries of the patient aggregate. Reads are always scoped (see `policy::CaseScope`).

use diesel::prelude::*;

use super::schema::cases::dsl as c;
use super::schema::patient_org_grams::dsl as og;
use super::schema::patient_search_grams::dsl as g;
use super::schema::patients::dsl as p;
use super::{from_code, from_json, id, now, to_code, to_json, utc, DbConn, DbResult};
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
    index(conn, new_id, fields, &[registered_by.to_string()])?;
    get(conn, new_id)
}

/// Rewrites a renamed patient's entries in the search indexes, for every organization that sees
/// it (the one that registered it and every one managing a case of it).
fn reindex(conn: &mut DbConn, patient: PatientId, fields: &PatientFields) -> DbResult<()> {
    let id = patient.to_string();
    diesel::delete(g::patient_search_grams.filter(g::patient_id.eq(&id))).execute(conn)?;
    diesel::delete(og::patient_org_grams.filter(og::patient_id.eq(&id))).execute(conn)?;
    let mut orgs: Vec<String> =
        c::cases.filter(c::patient_id.eq(&id)).select(c::managing_organization_id).load(conn)?;
    orgs.push(p::patients.find(&id).select(p::registered_by).first(conn)?);
    orgs.sort();
    orgs.dedup();
    index(conn, patient, fields, &orgs)
}

/// Writes the patient's entries in the search indexes: the region's, and `orgs`' own.
fn index(conn: &mut DbConn, patient: PatientId, fields: &PatientFields, orgs: &[String]) -> DbResult<()> {
    let id = patient.to_string();
    let grams = text::bigrams(&text::search_text(&fields.name, Some(&fields.kana)));
    let region: Vec<_> = grams.iter().map(|gram| (g::gram.eq(gram.clone()), g::patient_id.eq(id.clone()))).collect();
    match conn {
        // One multi-row INSERT each: a round trip per pair is what PostgreSQL must not be asked for.
        DbConn::Pg(pg) if !region.is_empty() => {
            diesel::insert_into(g::patient_search_grams).values(region).execute(pg)?;
        }
        DbConn::Pg(_) => {}
        DbConn::Sqlite(_) => {
            for row in region {
                diesel::insert_into(g::patient_search_grams).values(row).execute(conn)?;
            }
        }
    }
    for org in orgs {
        index_for_org(conn, &id, org, &grams)?;
    }
    Ok(())
}

/// Adds the patient to `org`'s search index when a case managed there opens (the organization sees
/// the patient from now on); nothing to do when `org` registered the patient. On PostgreSQL the
/// name is read under the patient's row lock, so that a rename running alongside either commits
/// first (and this reads the new name) or waits for this case (and then indexes it with the new
/// name itself). `FOR NO KEY UPDATE`, not `FOR UPDATE`: the case's own foreign key holds a
/// `KEY SHARE` lock on the patient, and two cases opening at once for one patient would each
/// wait for the other's (a deadlock); the rename's `UPDATE` still conflicts with it.
pub(crate) fn index_case_org(conn: &mut DbConn, patient: PatientId, org: OrganizationId) -> DbResult<()> {
    let (id, org) = (patient.to_string(), org.to_string());
    let registered_by: String = p::patients.find(&id).select(p::registered_by).first(conn)?;
    if registered_by == org {
        return Ok(());
    }
    let search_text: String = match conn {
        DbConn::Pg(pg) => p::patients.find(&id).select(p::search_text).for_no_key_update().first(pg)?,
        DbConn::Sqlite(_) => p::patients.find(&id).select(p::search_text).first(conn)?,
    };
    let indexed = diesel::select(diesel::dsl::exists(
        og::patient_org_grams.filter(og::patient_id.eq(&id)).filter(og::organization_id.eq(&org)),
    ))
    .get_result::<bool>(conn)?;
    if !indexed {
        index_for_org(conn, &id, &org, &text::bigrams(&search_text))?;
    }
    Ok(())
}

fn index_for_org(
    conn: &mut DbConn,
    patient: &str,
    org: &str,
    grams: &std::collections::BTreeSet<String>,
) -> DbResult<()> {
    let rows: Vec<_> = grams
        .iter()
        .map(|gram| (og::organization_id.eq(org), og::gram.eq(gram.as_str()), og::patient_id.eq(patient)))
        .collect();
    match conn {
        DbConn::Pg(pg) if !rows.is_empty() => {
            diesel::insert_into(og::patient_org_grams).values(rows).on_conflict_do_nothing().execute(pg)?;
        }
        DbConn::Pg(_) => {}
        DbConn::Sqlite(lite) => {
            for row in rows {
                diesel::insert_or_ignore_into(og::patient_org_grams).values(row).execute(lite)?;
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
    super::native!(conn, |c| p::patients.find(patient.to_string()).select(Row::as_select()).first(c))?.try_into()
}

type Visible = super::Cond<p::patients>;

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
    super::any_of(branches(scope, probe))
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
        reindex(conn, patient, fields)?;
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

/// Where a search's candidates come from.
enum Candidates {
    /// The region's pair index (a scope that sees every patient).
    Region,
    /// The pair index of the organization's own patients.
    Organization(String),
    /// No index: the branch's own patients are few (a practitioner's teams) or the key is too short.
    Unindexed,
}

/// A page of the patients the scope sees. Each way of seeing (registered or managed here, on the
/// practitioner's teams) runs its own query in id order from the cursor, and the pages are merged:
/// an `OR` of them kept PostgreSQL off their indexes, walking every patient of the region in id
/// order to fill a page. A search of two characters or more starts the organization's branch from
/// the organization's own pair index, so that it costs the organization's matches, not the region's;
/// a practitioner's branch starts from the practitioner's teams. A birth date alone starts from the
/// patients born that day.
#[tracing::instrument(skip(conn))]
pub fn list(conn: &mut DbConn, scope: &CaseScope, filter: &Filter, page: &PageRequest) -> DbResult<Page<Patient>> {
    let indexed = filter.q.as_deref().is_some_and(|k| k.chars().count() >= 2);
    let queries: Vec<(Visible, Candidates)> = if indexed {
        search_branches(scope)
    } else if filter.birth_date.is_some() {
        vec![(visible(scope, Probe::EachCandidate), Candidates::Unindexed)]
    } else {
        branches(scope, Probe::Set).into_iter().map(|v| (v, Candidates::Unindexed)).collect()
    };
    let rows = super::union_pages(
        queries,
        page.fetch_limit(),
        |r: &Row| r.id.clone(),
        |(visible, candidates)| list_branch(conn, visible, candidates, filter, page),
    )?;
    let items = rows.into_iter().map(Patient::try_from).collect::<DbResult<Vec<_>>>()?;
    Ok(page.finish(items, |x| x.id.to_string()))
}

/// The branches of a search, each with where its candidates come from. The visibility test stays on
/// every branch: the indexes choose candidates, they never grant access.
fn search_branches(scope: &CaseScope) -> Vec<(Visible, Candidates)> {
    if scope.any {
        return vec![(visible(scope, Probe::EachCandidate), Candidates::Region)];
    }
    let mut out: Vec<(Visible, Candidates)> = Vec::new();
    if let Some(org) = scope.managing_org {
        let only_org = CaseScope { managing_org: Some(org), member: None, any: false };
        out.push((visible(&only_org, Probe::EachCandidate), Candidates::Organization(org.to_string())));
    }
    if scope.member.is_some() {
        let only_member = CaseScope { managing_org: None, member: scope.member, any: false };
        out.push((visible(&only_member, Probe::Set), Candidates::Unindexed));
    }
    out
}

fn list_branch(
    conn: &mut DbConn,
    visible: Visible,
    candidates: Candidates,
    filter: &Filter,
    page: &PageRequest,
) -> DbResult<Vec<Row>> {
    let mut q = p::patients.select(Row::as_select()).filter(visible).into_boxed();
    if let Some(key) = &filter.q {
        // Candidates from an index (keys of two characters or more), then the exact test.
        let grams: Vec<String> = text::bigrams(key).into_iter().collect();
        let step = grams.len().div_ceil(SEARCH_GRAMS).max(1);
        for gram in grams.into_iter().step_by(step).take(SEARCH_GRAMS) {
            q = match &candidates {
                Candidates::Region => {
                    q.filter(p::id.eq_any(g::patient_search_grams.filter(g::gram.eq(gram)).select(g::patient_id)))
                }
                Candidates::Organization(org) => q.filter(
                    p::id.eq_any(
                        og::patient_org_grams
                            .filter(og::organization_id.eq(org.clone()))
                            .filter(og::gram.eq(gram))
                            .select(og::patient_id),
                    ),
                ),
                Candidates::Unindexed => q,
            };
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
