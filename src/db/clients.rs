//! Queries of API clients. A deleted client is kept (its audit rows name it), marked `deleted_at`.

use diesel::prelude::*;

use super::schema::api_clients::dsl as k;
use super::{from_json, id, now, to_json, utc, DbConn, DbResult};
use crate::auth::Role;
use crate::domain::ids::OrganizationId;

/// An API client as answered (never with its secret).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Client {
    /// The `client_id` of the client-credentials grant.
    pub id: String,
    pub name: String,
    pub organization_id: OrganizationId,
    pub roles: Vec<Role>,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

type Row = (String, String, String, String, String, chrono::NaiveDateTime);

fn client(r: Row) -> DbResult<Client> {
    Ok(Client {
        id: r.0,
        name: r.1,
        organization_id: id("organization_id", &r.2)?,
        roles: from_json("roles", &r.3)?,
        created_by: r.4,
        created_at: utc(r.5),
    })
}

const COLUMNS: (k::id, k::name, k::organization_id, k::roles, k::created_by, k::created_at) =
    (k::id, k::name, k::organization_id, k::roles, k::created_by, k::created_at);

pub fn insert(
    conn: &mut DbConn,
    name: &str,
    org: OrganizationId,
    roles: &[Role],
    secret_hash: &str,
    created_by: &str,
) -> DbResult<Client> {
    let new_id = uuid::Uuid::now_v7().to_string();
    diesel::insert_into(k::api_clients)
        .values((
            k::id.eq(&new_id),
            k::name.eq(name),
            k::organization_id.eq(org.to_string()),
            k::roles.eq(to_json(&roles)?),
            k::secret_hash.eq(secret_hash),
            k::created_by.eq(created_by),
            k::created_at.eq(now()),
        ))
        .execute(conn)?;
    client(k::api_clients.find(&new_id).select(COLUMNS).first(conn)?)
}

/// A live client with its secret's hash, for the token endpoint.
pub fn credentials(conn: &mut DbConn, client_id: &str) -> DbResult<Option<(Client, String)>> {
    let row: Option<(Row, String)> = k::api_clients
        .filter(k::id.eq(client_id))
        .filter(k::deleted_at.is_null())
        .select((COLUMNS, k::secret_hash))
        .first(conn)
        .optional()?;
    row.map(|(r, hash)| Ok((client(r)?, hash))).transpose()
}

/// Whether a client exists and is not deleted (checked on every request of its tokens).
pub fn is_live(conn: &mut DbConn, client_id: &str) -> DbResult<bool> {
    let found: Option<String> = k::api_clients
        .filter(k::id.eq(client_id))
        .filter(k::deleted_at.is_null())
        .select(k::id)
        .first(conn)
        .optional()?;
    Ok(found.is_some())
}

pub fn list(conn: &mut DbConn) -> DbResult<Vec<Client>> {
    let rows: Vec<Row> =
        k::api_clients.filter(k::deleted_at.is_null()).order(k::id.asc()).select(COLUMNS).load(conn)?;
    rows.into_iter().map(client).collect()
}

/// Deletes a client; `Ok(false)` if there was no live client of that id.
pub fn delete(conn: &mut DbConn, client_id: &str) -> DbResult<bool> {
    let changed = diesel::update(k::api_clients.filter(k::id.eq(client_id)).filter(k::deleted_at.is_null()))
        .set(k::deleted_at.eq(now()))
        .execute(conn)?;
    Ok(changed == 1)
}
