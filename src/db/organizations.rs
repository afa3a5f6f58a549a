//! Queries of the organization aggregate.

use diesel::prelude::*;

use super::schema::organizations::dsl as o;
use super::{corrupt, from_code, now, to_code, utc, DbConn, DbError, DbResult};
use crate::domain::ids::OrganizationId;
use crate::domain::organization::{Organization, OrganizationFields, OrganizationKind, Service};
use crate::domain::text;
use crate::http::pagination::{Page, PageRequest};

#[derive(Queryable, Selectable)]
#[diesel(table_name = super::schema::organizations)]
pub(super) struct Row {
    id: String,
    kind: String,
    name: String,
    kana: Option<String>,
    medical_institution_code: Option<String>,
    municipality_code: String,
    postal_code: Option<String>,
    address: Option<String>,
    phone: Option<String>,
    services: String,
    active: bool,
    version: i64,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
}

impl TryFrom<Row> for Organization {
    type Error = DbError;
    fn try_from(r: Row) -> DbResult<Self> {
        Ok(Organization {
            id: r.id.parse().map_err(|_| corrupt("id"))?,
            kind: from_code(&r.kind)?,
            name: r.name,
            kana: r.kana,
            medical_institution_code: r.medical_institution_code,
            municipality_code: r.municipality_code,
            postal_code: r.postal_code,
            address: r.address,
            phone: r.phone,
            services: serde_json::from_str(&r.services).map_err(|_| corrupt("services"))?,
            active: r.active,
            version: r.version,
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
        })
    }
}

impl Organization {
    pub fn fields(&self) -> OrganizationFields {
        OrganizationFields {
            kind: self.kind,
            name: self.name.clone(),
            kana: self.kana.clone(),
            medical_institution_code: self.medical_institution_code.clone(),
            municipality_code: self.municipality_code.clone(),
            postal_code: self.postal_code.clone(),
            address: self.address.clone(),
            phone: self.phone.clone(),
            services: self.services.clone(),
            active: self.active,
        }
    }
}

#[derive(AsChangeset)]
#[diesel(table_name = super::schema::organizations, treat_none_as_null = true)]
struct Changes<'a> {
    kind: String,
    name: &'a str,
    kana: Option<&'a str>,
    medical_institution_code: Option<&'a str>,
    municipality_code: &'a str,
    postal_code: Option<&'a str>,
    address: Option<&'a str>,
    phone: Option<&'a str>,
    services: String,
    active: bool,
    search_text: String,
}

impl<'a> Changes<'a> {
    fn of(f: &'a OrganizationFields) -> DbResult<Self> {
        Ok(Changes {
            kind: to_code(&f.kind)?,
            name: &f.name,
            kana: f.kana.as_deref(),
            medical_institution_code: f.medical_institution_code.as_deref(),
            municipality_code: &f.municipality_code,
            postal_code: f.postal_code.as_deref(),
            address: f.address.as_deref(),
            phone: f.phone.as_deref(),
            services: serde_json::to_string(&f.services).map_err(|e| DbError::Other(e.to_string()))?,
            active: f.active,
            search_text: text::search_text(&f.name, f.kana.as_deref()),
        })
    }
}

#[tracing::instrument(skip_all)]
pub fn insert(conn: &mut DbConn, fields: &OrganizationFields) -> DbResult<Organization> {
    let id = OrganizationId::new();
    let at = now();
    let c = Changes::of(fields)?;
    diesel::insert_into(o::organizations)
        .values((
            o::id.eq(id.to_string()),
            o::kind.eq(c.kind),
            o::name.eq(c.name),
            o::kana.eq(c.kana),
            o::medical_institution_code.eq(c.medical_institution_code),
            o::municipality_code.eq(c.municipality_code),
            o::postal_code.eq(c.postal_code),
            o::address.eq(c.address),
            o::phone.eq(c.phone),
            o::services.eq(c.services),
            o::active.eq(c.active),
            o::search_text.eq(c.search_text),
            o::version.eq(1_i64),
            o::created_at.eq(at),
            o::updated_at.eq(at),
        ))
        .execute(conn)?;
    get(conn, id)
}

#[tracing::instrument(skip(conn))]
pub fn get(conn: &mut DbConn, id: OrganizationId) -> DbResult<Organization> {
    super::native!(conn, |c| o::organizations.find(id.to_string()).select(Row::as_select()).first(c))?.try_into()
}

pub fn exists(conn: &mut DbConn, id: OrganizationId) -> DbResult<bool> {
    let found: Option<String> =
        super::native!(conn, |c| o::organizations.find(id.to_string()).select(o::id).first(c).optional())?;
    Ok(found.is_some())
}

/// The organization holding a medical institution code, other than `except`.
pub fn holder_of_code(
    conn: &mut DbConn,
    code: &str,
    except: Option<OrganizationId>,
) -> DbResult<Option<OrganizationId>> {
    let mut q = o::organizations.filter(o::medical_institution_code.eq(code)).select(o::id).into_boxed();
    if let Some(except) = except {
        q = q.filter(o::id.ne(except.to_string()));
    }
    let found: Option<String> = q.first(conn).optional()?;
    found.map(|id| id.parse().map_err(|_| corrupt("id"))).transpose()
}

/// Replaces the fields of `id` if it is still at `version`; `Ok(false)` when it is not.
#[tracing::instrument(skip(conn, fields))]
pub fn update(conn: &mut DbConn, id: OrganizationId, version: i64, fields: &OrganizationFields) -> DbResult<bool> {
    let changed = diesel::update(o::organizations.filter(o::id.eq(id.to_string())).filter(o::version.eq(version)))
        .set((Changes::of(fields)?, o::version.eq(version + 1), o::updated_at.eq(now())))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Filters of `GET /api/v1/organizations`.
#[derive(Debug, Default)]
pub struct Filter {
    pub kind: Option<OrganizationKind>,
    pub municipality_code: Option<String>,
    pub service: Option<Service>,
    pub active: Option<bool>,
    /// Already a search key (see `text::search_key`).
    pub q: Option<String>,
}

/// One page in id (creation) order, keyset-paginated.
#[tracing::instrument(skip(conn))]
pub fn list(conn: &mut DbConn, filter: &Filter, page: &PageRequest) -> DbResult<Page<Organization>> {
    let mut q = o::organizations.select(Row::as_select()).into_boxed();
    if let Some(kind) = &filter.kind {
        q = q.filter(o::kind.eq(to_code(kind)?));
    }
    if let Some(code) = &filter.municipality_code {
        q = q.filter(o::municipality_code.eq(code.clone()));
    }
    if let Some(service) = &filter.service {
        q = q.filter(o::services.like(format!("%\"{}\"%", to_code(service)?)));
    }
    if let Some(active) = filter.active {
        q = q.filter(o::active.eq(active));
    }
    if let Some(key) = &filter.q {
        q = q.filter(o::search_text.like(text::like_pattern(key)).escape('\\'));
    }
    if let Some(after) = &page.after {
        q = q.filter(o::id.gt(after.clone()));
    }
    let rows: Vec<Row> = q.order(o::id.asc()).limit(page.fetch_limit()).load(conn)?;
    let items = rows.into_iter().map(Organization::try_from).collect::<DbResult<Vec<_>>>()?;
    Ok(page.finish(items, |org| org.id.to_string()))
}
