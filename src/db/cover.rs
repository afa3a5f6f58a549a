//! The facts of a cover answer (DOMAIN.md §2) and the people they name, in one statement of a
//! fixed shape, so that both backends keep it prepared whatever the size of the team, the roster
//! or the region: the case's physicians and the base's roster as two branches of one `UNION ALL`
//! (one round trip on PostgreSQL where there were three), each with the practitioner and
//! organization it names and, by a `LEFT JOIN` on the index by practitioner, that practitioner's
//! absences. Every lookup is an index probe from the case or the base: never a list of ids, never
//! an `OR` of two subqueries and never an `IN` a union of them, which PostgreSQL answers by
//! scanning the table (docs/PERFORMANCE.md round 14).

use std::collections::HashSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text};

use super::schedule::{absence, shift};
use super::schema::absences::dsl as a;
use super::schema::care_team_members::dsl as m;
use super::schema::on_call_shifts::dsl as s;
use super::schema::organizations::dsl as o;
use super::schema::practitioners::dsl as p;
use super::{care_team, corrupt, native, organizations, practitioners, to_code, DbConn, DbResult};
use crate::domain::care_team::{Member, TeamRole};
use crate::domain::ids::{CaseId, OrganizationId};
use crate::domain::organization::Organization;
use crate::domain::practitioner::Practitioner;
use crate::domain::schedule::{Absence, Shift};
use crate::domain::time::to_db;

/// The bound values of the statement.
struct Window {
    case: String,
    base: String,
    primary: String,
    secondary: String,
    from: NaiveDateTime,
    to: NaiveDateTime,
}

/// Which branch of the statement a row comes from (and, with `ABSENCE`, which kind of id a kept
/// id is).
const MEMBER: i32 = 0;
const SHIFT: i32 = 1;
const ABSENCE: i32 = 2;

/// The case's primary and secondary physicians whose assignment overlaps the window.
macro_rules! physicians {
    ($w:expr) => {
        m::care_team_members
            .filter(m::case_id.eq($w.case.clone()))
            .filter(m::role.eq($w.primary.clone()).or(m::role.eq($w.secondary.clone())))
            .filter(m::starts_at.lt($w.to))
            .filter(m::ends_at.is_null().or(m::ends_at.gt($w.from)))
    };
}

/// The base's on-call shifts overlapping the window.
macro_rules! rostered {
    ($w:expr) => {
        s::on_call_shifts
            .filter(s::organization_id.eq($w.base.clone()))
            .filter(s::cancelled_at.is_null())
            .filter(s::starts_at.lt($w.to))
            .filter(s::ends_at.gt($w.from))
    };
}

/// The absences overlapping the window of the practitioner in `$who`, for a `LEFT JOIN`: found by
/// the index by practitioner and end, one probe per fact. (As `IN` a union of the two groups'
/// subqueries, PostgreSQL's generic plan read every absence of the region and hashed them:
/// docs/PERFORMANCE.md round 14.)
macro_rules! absent {
    ($w:expr, $who:expr) => {
        a::absences.on(a::practitioner_id
            .eq($who)
            .and(a::cancelled_at.is_null())
            .and(a::starts_at.lt($w.to))
            .and(a::ends_at.gt($w.from)))
    };
}

/// The columns of a joined absence: each nullable, since a fact may have none.
macro_rules! away {
    () => {
        (
            a::id.nullable(),
            a::starts_at.nullable(),
            a::ends_at.nullable(),
            a::reason.nullable(),
            a::created_at.nullable(),
        )
    };
}

/// The practitioner a branch names, with their organization.
macro_rules! person {
    () => {
        p::practitioners.inner_join(o::organizations)
    };
}

/// The columns of a branch's practitioner and organization (a macro: `as_select` is of one
/// backend, and `native!` builds the statement once for each).
macro_rules! people {
    () => {
        (practitioners::Row::as_select(), organizations::Row::as_select())
    };
}

/// One row of either branch, in the shape they share: the branch, the fact's id, its owner (the
/// case or the organization), its practitioner, its role (members only), its period and when it
/// was recorded; and one absence of its practitioner that overlaps the window, if any.
type FactRow =
    (i32, String, String, String, Option<String>, NaiveDateTime, Option<NaiveDateTime>, NaiveDateTime, AwayRow);

/// A fact's joined absence, if any: id, start, end, reason, when recorded.
type AwayRow = (Option<String>, Option<NaiveDateTime>, Option<NaiveDateTime>, Option<String>, Option<NaiveDateTime>);

/// A practitioner with their organization, as read.
type PersonRow = (practitioners::Row, organizations::Row);

fn person((p, o): PersonRow) -> DbResult<(Practitioner, Organization)> {
    Ok((Practitioner::try_from(p)?, Organization::try_from(o)?))
}

/// What a cover answer over `[from, to)` is made of.
pub struct CoverFacts {
    pub members: Vec<Member>,
    pub shifts: Vec<Shift>,
    pub absences: Vec<Absence>,
    /// Everyone `members` and `shifts` name, with their organization (once each).
    pub people: Vec<(Practitioner, Organization)>,
}

/// Reads the facts for `case` (managed by `base`) over `[from, to)`.
pub fn load(
    conn: &mut DbConn,
    case: CaseId,
    base: OrganizationId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> DbResult<CoverFacts> {
    let w = Window {
        case: case.to_string(),
        base: base.to_string(),
        primary: to_code(&TeamRole::PrimaryPhysician)?,
        secondary: to_code(&TeamRole::SecondaryPhysician)?,
        from: to_db(from),
        to: to_db(to),
    };
    let no_text = || None::<String>.into_sql::<Nullable<Text>>();
    // On the backend's own connection (`native!`): the statement is prepared once, and its text
    // is not written out again at each lookup (docs/PERFORMANCE.md rounds 7 and 14).
    let rows: Vec<(FactRow, PersonRow)> = native!(conn, |c| physicians!(w)
        .inner_join(person!())
        .left_join(absent!(w, m::practitioner_id))
        .select((
            (
                MEMBER.into_sql::<Integer>(),
                m::id,
                m::case_id,
                m::practitioner_id,
                m::role.nullable(),
                m::starts_at,
                m::ends_at,
                m::created_at,
                away!(),
            ),
            people!(),
        ))
        .union_all(rostered!(w).inner_join(person!()).left_join(absent!(w, s::practitioner_id)).select((
            (
                SHIFT.into_sql::<Integer>(),
                s::id,
                s::organization_id,
                s::practitioner_id,
                no_text(),
                s::starts_at,
                s::ends_at.nullable(),
                s::created_at,
                away!(),
            ),
            people!(),
        )))
        .load(c))?;
    // A fact comes once per absence of its practitioner (once with none), and an absence once per
    // fact of its practitioner: each is kept at its first row.
    let (mut members, mut shifts, mut absences, mut named) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut seen: HashSet<(i32, String)> = HashSet::new();
    for ((kind, id, owner, practitioner, note, starts_at, ends_at, created_at, away), who) in rows {
        if let (Some(away_id), Some(from), Some(to), reason, Some(at)) = away {
            if seen.insert((ABSENCE, away_id.clone())) {
                absences.push(absence((away_id, practitioner.clone(), from, to, reason, at))?);
            }
        }
        if !seen.insert((kind, id.clone())) {
            continue;
        }
        match kind {
            MEMBER => {
                let role = note.ok_or_else(|| corrupt("care_team_members.role"))?;
                members.push(care_team::member((id, owner, practitioner, role, starts_at, ends_at))?);
            }
            SHIFT => {
                let ends_at = ends_at.ok_or_else(|| corrupt("on_call_shifts.ends_at"))?;
                shifts.push(shift((id, owner, practitioner, starts_at, ends_at, created_at))?);
            }
            _ => return Err(corrupt("cover branch")),
        }
        named.push(who);
    }
    let mut people: Vec<(Practitioner, Organization)> = named.into_iter().map(person).collect::<DbResult<_>>()?;
    people.sort_by_key(|x| x.0.id);
    people.dedup_by(|x, y| x.0.id == y.0.id);
    Ok(CoverFacts { members, shifts, absences, people })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use diesel_migrations::MigrationHarness;

    use super::*;

    /// The SQL text of every statement a connection starts, in order, and how many statements it
    /// prepared and kept in its cache.
    fn recorder(seen: Arc<Mutex<(Vec<String>, usize)>>) -> impl Instrumentation {
        move |event: InstrumentationEvent<'_>| match event {
            InstrumentationEvent::StartQuery { query, .. } => {
                // The text alone: diesel's display of a query ends with its binds.
                let text = query.to_string();
                let text = text.split(" -- binds:").next().unwrap_or_default().to_owned();
                seen.lock().expect("recorder").0.push(text);
            }
            InstrumentationEvent::CacheQuery { .. } => seen.lock().expect("recorder").1 += 1,
            _ => {}
        }
    }

    /// A cover answer's facts are one statement (on PostgreSQL one round trip, where there were
    /// three), prepared once and kept, and it finds the absences by joining them to each fact,
    /// never through a list of ids (which would change its text) or an `IN` a subquery (which
    /// PostgreSQL's generic plan answered by reading every absence). (Its answers, with
    /// data, are the API tests' in tests/api/cover.rs, on both backends.)
    #[test]
    fn the_facts_of_a_cover_answer_are_read_in_one_statement() {
        let mut sqlite = diesel::SqliteConnection::establish(":memory:").expect("in-memory SQLite");
        sqlite.run_pending_migrations(super::super::SQLITE_MIGRATIONS).expect("migrations");
        let seen = Arc::new(Mutex::new((Vec::new(), 0)));
        sqlite.set_instrumentation(recorder(seen.clone()));
        let mut conn = DbConn::Sqlite(sqlite);
        let now = Utc::now();
        for _ in 0..2 {
            let facts = load(&mut conn, CaseId::new(), OrganizationId::new(), now, now + chrono::Duration::days(14))
                .expect("cover facts");
            assert!(facts.members.is_empty() && facts.shifts.is_empty() && facts.absences.is_empty());
        }
        let (seen, cached) = &*seen.lock().expect("recorder");
        assert_eq!(seen.len(), 2, "one statement per lookup: {seen:?}");
        assert_eq!(*cached, 1, "prepared at the first lookup and kept for the second");
        assert_eq!(seen[0], seen[1], "the same text at every lookup, so it stays prepared");
        assert_eq!(seen[0].matches("UNION ALL").count(), 1, "two branches: {}", seen[0]);
        assert_eq!(seen[0].matches("LEFT OUTER JOIN `absences`").count(), 2, "absences joined: {}", seen[0]);
        assert!(!seen[0].contains(" IN ("), "no list and no subquery: {}", seen[0]);
    }
}
