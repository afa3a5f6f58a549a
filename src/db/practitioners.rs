//! Queries of the practitioner aggregate.

use diesel::prelude::*;

use super::schema::practitioners::dsl as p;
use super::{corrupt, from_code, now, to_code, utc, DbConn, DbError, DbResult};
use crate::domain::ids::{OrganizationId, PractitionerId};
use crate::domain::practitioner::{Practitioner, PractitionerFields, Profession};
use crate::domain::text;
use crate::http::pagination::{Page, PageRequest};

#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema::practitioners)]
pub(super) struct Row {
    id: String,
    organization_id: String,
    name: String,
    kana: String,
    profession: String,
    registration_number: Option<String>,
    phone: Option<String>,
    email: Option<String>,
    active: bool,
    version: i64,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

impl TryFrom<Row> for Practitioner {
    type Error = DbError;
    fn try_from(r: Row) -> DbResult<Self> {
        Ok(Practitioner {
            id: r.id.parse().map_err(|_| corrupt("id"))?,
            organization_id: r.organization_id.parse().map_err(|_| corrupt("organization_id"))?,
            name: r.name,
            kana: r.kana,
            profession: from_code(&r.profession)?,
            registration_number: r.registration_number,
            phone: r.phone,
            email: r.email,
            active: r.active,
            version: r.version,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        })
    }
}

impl Practitioner {
    pub fn fields(&self) -> PractitionerFields {
        PractitionerFields {
            organization_id: self.organization_id,
            name: self.name.clone(),
            kana: self.kana.clone(),
            profession: self.profession,
            registration_number: self.registration_number.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
            active: self.active,
        }
    }
}

#[derive(AsChangeset)]
#[diesel(table_name = super::schema::practitioners, treat_none_as_null = true)]
struct Changes<'a> {
    organization_id: String,
    name: &'a str,
    kana: &'a str,
    profession: String,
    registration_number: Option<&'a str>,
    phone: Option<&'a str>,
    email: Option<&'a str>,
    active: bool,
    search_text: String,
}

impl<'a> Changes<'a> {
    fn of(f: &'a PractitionerFields) -> DbResult<Self> {
        Ok(Changes {
            organization_id: f.organization_id.to_string(),
            name: &f.name,
            kana: &f.kana,
            profession: to_code(&f.profession)?,
            registration_number: f.registration_number.as_deref(),
            phone: f.phone.as_deref(),
            email: f.email.as_deref(),
            active: f.active,
            search_text: text::search_text(&f.name, Some(&f.kana)),
        })
    }
}

#[tracing::instrument(skip_all)]
pub fn insert(conn: &mut DbConn, fields: &PractitionerFields) -> DbResult<Practitioner> {
    let id = PractitionerId::new();
    let at = now();
    let c = Changes::of(fields)?;
    diesel::insert_into(p::practitioners)
        .values((
            p::id.eq(id.to_string()),
            p::organization_id.eq(c.organization_id),
            p::name.eq(c.name),
            p::kana.eq(c.kana),
            p::profession.eq(c.profession),
            p::registration_number.eq(c.registration_number),
            p::phone.eq(c.phone),
            p::email.eq(c.email),
            p::active.eq(c.active),
            p::search_text.eq(c.search_text),
            p::version.eq(1_i64),
            p::created_at.eq(at),
            p::updated_at.eq(at),
        ))
        .execute(conn)?;
    get(conn, id)
}

#[tracing::instrument(skip(conn))]
pub fn get(conn: &mut DbConn, id: PractitionerId) -> DbResult<Practitioner> {
    p::practitioners.find(id.to_string()).select(Row::as_select()).first(conn)?.try_into()
}

/// The practitioner holding a registration number for a profession, other than `except`.
pub fn holder_of_registration(
    conn: &mut DbConn,
    profession: Profession,
    number: &str,
    except: Option<PractitionerId>,
) -> DbResult<Option<PractitionerId>> {
    let mut q = p::practitioners
        .filter(p::profession.eq(to_code(&profession)?))
        .filter(p::registration_number.eq(number))
        .select(p::id)
        .into_boxed();
    if let Some(except) = except {
        q = q.filter(p::id.ne(except.to_string()));
    }
    let found: Option<String> = q.first(conn).optional()?;
    found.map(|id| id.parse().map_err(|_| corrupt("id"))).transpose()
}

/// Replaces the fields of `id` if it is still at `version`; `Ok(false)` when it is not.
#[tracing::instrument(skip(conn, fields))]
pub fn update(conn: &mut DbConn, id: PractitionerId, version: i64, fields: &PractitionerFields) -> DbResult<bool> {
    let changed = diesel::update(p::practitioners.filter(p::id.eq(id.to_string())).filter(p::version.eq(version)))
        .set((Changes::of(fields)?, p::version.eq(version + 1), p::updated_at.eq(now())))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Filters of `GET /api/v1/practitioners`.
#[derive(Debug, Default)]
pub struct Filter {
    pub organization_id: Option<OrganizationId>,
    pub profession: Option<Profession>,
    pub active: Option<bool>,
    /// Already a search key (see `text::search_key`).
    pub q: Option<String>,
}

/// One page in id (creation) order, keyset-paginated.
#[tracing::instrument(skip(conn))]
pub fn list(conn: &mut DbConn, filter: &Filter, page: &PageRequest) -> DbResult<Page<Practitioner>> {
    let mut q = p::practitioners.select(Row::as_select()).into_boxed();
    if let Some(org) = filter.organization_id {
        q = q.filter(p::organization_id.eq(org.to_string()));
    }
    if let Some(profession) = &filter.profession {
        q = q.filter(p::profession.eq(to_code(profession)?));
    }
    if let Some(active) = filter.active {
        q = q.filter(p::active.eq(active));
    }
    if let Some(key) = &filter.q {
        q = q.filter(p::search_text.like(text::like_pattern(key)).escape('\\'));
    }
    if let Some(after) = &page.after {
        q = q.filter(p::id.gt(after.clone()));
    }
    let rows: Vec<Row> = q.order(p::id.asc()).limit(page.fetch_limit()).load(conn)?;
    let items = rows.into_iter().map(Practitioner::try_from).collect::<DbResult<Vec<_>>>()?;
    Ok(page.finish(items, |pr| pr.id.to_string()))
}

/// Several practitioners by id, in one query (unknown ids are left out).
pub fn get_many(conn: &mut DbConn, ids: &[PractitionerId]) -> DbResult<Vec<Practitioner>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let rows: Vec<Row> = p::practitioners.filter(p::id.eq_any(ids)).select(Row::as_select()).load(conn)?;
    rows.into_iter().map(Practitioner::try_from).collect()
}

/// Whether a practitioner of the directory is active; `None` if there is no such practitioner.
pub fn active(conn: &mut DbConn, who: PractitionerId) -> DbResult<Option<bool>> {
    Ok(p::practitioners.find(who.to_string()).select(p::active).first(conn).optional()?)
}
