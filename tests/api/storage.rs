//! Storage behaviour: start-up refusals, migrations, and a busy SQLite answered 503.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use renkei::db::{Backend, Db, DbSettings};
use serde_json::json;

use crate::helpers::{spawn_with, TestDb};

#[test]
fn migrations_have_the_same_versions_on_both_backends() {
    let names = |backend: &str| -> Vec<String> {
        let dir = format!("{}/migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
    for name in &sqlite {
        for backend in ["sqlite", "postgres"] {
            for file in ["up.sql", "down.sql"] {
                let path = format!("{}/migrations/{backend}/{name}/{file}", env!("CARGO_MANIFEST_DIR"));
                assert!(std::path::Path::new(&path).is_file(), "{path} is missing");
            }
        }
    }
}

#[test]
fn unknown_schemes_and_in_memory_sqlite_are_refused() {
    assert!(Backend::from_url("mysql://root@localhost/renkei").unwrap_err().contains("unsupported scheme 'mysql'"));
    assert!(Backend::from_url("sqlite:data/renkei.db").is_err(), "a typo is not a new SQLite file");
    assert!(Backend::from_url("sqlite://:memory:").is_err());
    assert!(Backend::from_url("data/renkei.db").is_err());
    assert_eq!(Backend::from_url("sqlite://data/r.db").unwrap(), Backend::Sqlite("data/r.db".into()));
    assert!(matches!(Backend::from_url("postgresql://u@h/db").unwrap(), Backend::Postgres(_)));
}

#[test]
fn an_unreachable_postgres_is_a_start_up_error() {
    let settings = DbSettings {
        backend: Backend::Postgres("postgres://nobody@127.0.0.1:1/renkei".into()),
        pool_size: 2,
        pool_timeout: Duration::from_millis(500),
        sqlite_busy_timeout: Duration::from_millis(100),
        sqlite_synchronous: "FULL".into(),
        sqlite_cache_kib: 256,
    };
    let err = Db::connect(&settings).err().expect("must fail");
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
}

#[test]
fn a_locked_sqlite_database_answers_503_with_retry_after_and_recovers() {
    let db = TestDb::sqlite();
    let path = match db.backend() {
        Backend::Sqlite(p) => p,
        Backend::Postgres(_) => unreachable!(),
    };
    let app = spawn_with(db, |c| c.db.sqlite_busy_timeout = Duration::from_millis(200));
    // Another process holds the write lock.
    let mut other = diesel::SqliteConnection::establish(&path.to_string_lossy()).expect("open");
    other.batch_execute("BEGIN IMMEDIATE").expect("lock");
    let r = app.post(
        "/api/v1/organizations",
        &app.admin(),
        &json!({"kind": "clinic", "name": "A", "municipality_code": "131016"}),
    );
    r.assert_problem(503, "service_unavailable");
    assert_eq!(r.header("retry-after"), Some("1"));
    // Reads are not blocked by a writer (WAL).
    app.get("/api/v1/organizations", &app.admin()).assert(200);
    other.batch_execute("ROLLBACK").expect("unlock");
    app.post(
        "/api/v1/organizations",
        &app.admin(),
        &json!({"kind": "clinic", "name": "A", "municipality_code": "131016"}),
    )
    .assert(201);
}

/// Changes that commit together (SQLite's group commit) stay independent: 200 changes at once,
/// one in three failing after it wrote, one panicking; every change answered `Ok` is stored,
/// nothing of a change answered `Err` is, the panic costs only its own change, and the writer
/// keeps working afterwards.
#[test]
fn changes_sharing_a_commit_keep_or_lose_only_their_own_work() {
    use diesel::prelude::*;
    use renkei::db::schema::bench_probe::dsl as b;
    use renkei::db::DbError;

    let (_test_db, db) = migrated_db();
    let insert = |c: &mut renkei::db::DbConn, id: String| insert_probe(c, &id);
    let answers: Vec<(usize, Result<(), DbError>)> = actix_web::rt::System::new().block_on(async {
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let db = db.clone();
                actix_web::rt::spawn(async move {
                    let r = db
                        .write(move |c| {
                            insert(c, format!("change-{i}"))?;
                            if i == 77 {
                                panic!("a change that panics after writing");
                            }
                            if i % 3 == 0 {
                                return Err(DbError::Rule("rule: refused after writing".into()));
                            }
                            Ok(())
                        })
                        .await;
                    (i, r)
                })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("task"));
        }
        out
    });
    let stored: Vec<String> = actix_web::rt::System::new()
        .block_on(db.read(|c| b::bench_probe.select(b::id).load::<String>(c).map_err(DbError::from)))
        .expect("read");
    let ok: Vec<String> = answers.iter().filter(|(_, r)| r.is_ok()).map(|(i, _)| format!("change-{i}")).collect();
    let mut stored_sorted = stored.clone();
    stored_sorted.sort();
    let mut ok_sorted = ok.clone();
    ok_sorted.sort();
    assert_eq!(stored_sorted, ok_sorted, "exactly the changes answered Ok are stored");
    assert!(answers.iter().all(|(i, r)| i % 3 != 0 || r.is_err()), "failures are answered as failures");
    assert!(answers.iter().any(|(i, r)| *i == 77 && r.is_err()));
    // Every change that did not fail on its own was stored: a panic costs only its own change.
    let mut expected: Vec<String> =
        (0..200).filter(|i| i % 3 != 0 && *i != 77).map(|i| format!("change-{i}")).collect();
    expected.sort();
    assert_eq!(ok_sorted, expected);
    // And the writer still works.
    let after = actix_web::rt::System::new().block_on(db.write(move |c| insert(c, "after".into())));
    assert!(after.is_ok(), "{after:?}");
}

/// A batch whose commit fails loses every change in it, and each is answered retryable (503),
/// even one that had failed on its own: its own refusal may have come from reading the batch's
/// work, which is gone. A deferred foreign key, checked only at COMMIT, makes the commit fail.
/// On PostgreSQL each change has its own transaction: only the trapped change fails.
#[test]
fn a_failed_commit_answers_every_change_of_its_batch_retryable() {
    use diesel::prelude::*;
    use renkei::db::DbError;

    let (test_db, db) = migrated_db();
    test_db
        .raw("CREATE TABLE commit_trap (org TEXT REFERENCES organizations (id) DEFERRABLE INITIALLY DEFERRED)")
        .expect("trap");
    let insert = insert_probe;
    let (slow, trapped, refused) = actix_web::rt::System::new().block_on(async {
        // The writer is busy with a slow change while the other two queue: they share the next batch.
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let signal = running.clone();
        let slow = {
            let db = db.clone();
            actix_web::rt::spawn(async move {
                db.write(move |c| {
                    signal.store(true, std::sync::atomic::Ordering::SeqCst);
                    insert(c, "slow")?;
                    std::thread::sleep(Duration::from_millis(300));
                    Ok::<_, DbError>(())
                })
                .await
            })
        };
        while !running.load(std::sync::atomic::Ordering::SeqCst) {
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
        let trapped = {
            let db = db.clone();
            actix_web::rt::spawn(async move {
                db.write(move |c| {
                    insert(c, "trapped")?;
                    diesel::sql_query("INSERT INTO commit_trap (org) VALUES ('no such organization')").execute(c)?;
                    Ok::<_, DbError>(())
                })
                .await
            })
        };
        let refused = {
            let db = db.clone();
            actix_web::rt::spawn(async move {
                db.write(move |c| {
                    insert(c, "refused")?;
                    Err::<(), _>(DbError::Rule("rule: refused after writing".into()))
                })
                .await
            })
        };
        (slow.await.expect("task"), trapped.await.expect("task"), refused.await.expect("task"))
    });
    assert!(slow.is_ok(), "{slow:?}");
    if test_db.is_postgres() {
        assert!(trapped.is_err(), "{trapped:?}");
        assert!(matches!(refused, Err(DbError::Rule(_))), "{refused:?}");
    } else {
        assert!(matches!(trapped, Err(DbError::Busy(_))), "{trapped:?}");
        assert!(matches!(refused, Err(DbError::Busy(_))), "its own refusal does not stand: {refused:?}");
    }
    assert_eq!(test_db.count("bench_probe"), 1, "only the slow change is stored");
    assert_eq!(test_db.count("commit_trap"), 0);
    // And the writer still works.
    let after = actix_web::rt::System::new().block_on(db.write(move |c| insert(c, "after")));
    assert!(after.is_ok(), "{after:?}");
}

/// A database of the suite's backend with the schema, opened as the server opens it.
fn migrated_db() -> (TestDb, Db) {
    let test_db = TestDb::create();
    let settings = DbSettings {
        backend: test_db.backend(),
        pool_size: 4,
        pool_timeout: Duration::from_secs(10),
        sqlite_busy_timeout: Duration::from_secs(5),
        sqlite_synchronous: "FULL".into(),
        sqlite_cache_kib: 256,
    };
    let db = Db::connect(&settings).expect("connect");
    db.migrate().expect("migrate");
    (test_db, db)
}

/// One bare row, as a change's work.
fn insert_probe(c: &mut renkei::db::DbConn, id: &str) -> Result<(), renkei::db::DbError> {
    use diesel::prelude::*;
    use renkei::db::schema::bench_probe::dsl as b;
    diesel::insert_into(b::bench_probe)
        .values((b::id.eq(id), b::payload.eq("x"), b::created_at.eq(chrono::Utc::now().naive_utc())))
        .execute(c)
        .map(|_| ())
        .map_err(renkei::db::DbError::from)
}

/// The access log's one-row inserts are kept prepared under one text (`db::fixed`): a row with
/// every optional column empty and one with all of them set, through the same connection in
/// turn, must each be stored as given (a cached statement that dropped a column as `DEFAULT`
/// would store the next row without it, or fail).
#[actix_web::test]
async fn one_row_inserts_of_the_access_log_store_empty_and_set_columns_alike() {
    use renkei::db::audit;
    use renkei::domain::audit::{Entry, Outcome, Purpose};
    let (_test_db, db) = migrated_db();
    let entry = |n: usize, set: bool| Entry {
        id: uuid::Uuid::now_v7().to_string(),
        at: chrono::DateTime::from_timestamp(1_800_000_000 + n as i64, 0).expect("instant"),
        request_id: format!("req-{n}"),
        actor_sub: "practitioner:synthetic".into(),
        actor_org: "org-synthetic".into(),
        actor_roles: vec!["physician".into()],
        client_id: set.then(|| "client-synthetic".into()),
        action: "case.read".into(),
        resource_type: "case".into(),
        resource_id: set.then(|| format!("case-{n}")),
        patient_id: set.then(|| format!("patient-{n}")),
        outcome: Outcome::Success,
        status: 200,
        purpose: if set { Purpose::BreakGlass } else { Purpose::Normal },
        reason: set.then(|| "synthetic emergency".into()),
    };
    let written: Vec<Entry> = (0..6).map(|n| entry(n, n % 2 == 1)).collect();
    let key = b"test-key".to_vec();
    for e in written.clone() {
        let key = key.clone();
        db.write(move |c| audit::append(c, &key, &[&e])).await.expect("append");
    }
    let stored = db
        .write(move |c| {
            audit::chain_pending(c, &key, 1000, i64::MAX)?;
            audit::list(c, &audit::Filter::default(), None, 100)
        })
        .await
        .expect("read back");
    let stored: Vec<Entry> = stored.into_iter().map(|e| e.entry).collect();
    assert_eq!(stored, written);
}

/// Each worker's blocking pool is bounded (`RENKEI_BLOCKING_THREADS`), so tasks queue for a
/// thread. With one thread per worker, a burst of reads and changes still gets every answer:
/// no task waits on a thread while holding what another queued task needs. (On SQLite the
/// changes go to the writer thread; on PostgreSQL they share the bounded pool with the reads.)
#[test]
fn one_blocking_thread_per_worker_serves_a_burst_of_reads_and_changes() {
    let app = std::sync::Arc::new(spawn_with(TestDb::create(), |c| c.blocking_threads = 1));
    let w = app.world();
    let token = w.coordinator.clone();
    let (a, case, t) = (app.clone(), w.case.clone(), token.clone());
    let statuses = crate::helpers::race(48, move |i| match i % 3 {
        0 => a.get(&format!("/api/v1/cases/{case}"), &t).status,
        1 => a.get(&format!("/api/v1/cases/{case}/cover"), &t).status,
        _ => {
            let body = json!({"name": "佐藤 花子", "kana": "サトウ ハナコ", "birth_date": format!("1938-05-{:02}", 1 + i / 3),
                              "sex": "female", "municipality_code": "131016"});
            a.post("/api/v1/patients", &t, &body).status
        }
    });
    assert!(statuses.iter().all(|s| (200..300).contains(s)), "{statuses:?}");
    let listed = app.page_through("/api/v1/patients", &token);
    assert_eq!(listed.len(), 1 + 16, "the world's patient and the sixteen registered");
}
