//! The access log: one row per access to patient data with every field set, hash-chained,
//! immutable in the database, verifiable, and break-glass reads listed for review.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::helpers::{race, spawn_app, spawn_with, test_config, TestApp, TestDb};

fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let auditor = app.token_for(&app.admin_org, &["auditor"]);
    let r = app.get(&format!("/api/v1/audit-events?limit=200{query}"), &auditor);
    r.assert(200);
    r.body["items"].as_array().unwrap().clone()
}

fn actions(rows: &[Value]) -> Vec<(String, String)> {
    rows.iter().map(|e| (e["action"].as_str().unwrap().to_owned(), e["outcome"].as_str().unwrap().to_owned())).collect()
}

#[test]
fn a_scripted_visit_writes_exactly_one_complete_row_per_access() {
    let app = spawn_app();
    let w = app.world(); // patient.create + case.create
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    app.get(&format!("/api/v1/cases/{}", w.case), &w.coordinator).assert(200);
    let stranger_org = app.clinic("別の拠点");
    let stranger = app.coordinator_of(&stranger_org);
    app.get(&format!("/api/v1/cases/{}", w.case), &stranger).assert(404);
    let nurse = app.as_practitioner(&w.nurse, &w.clinic, &["nurse"]);
    app.post(&format!("/api/v1/cases/{}/activate", w.case), &nurse, &json!({})).assert(404);
    let doctor = app.as_practitioner(&w.doctors[0], &w.clinic, &["physician"]);
    app.get(&format!("/api/v1/cases/{}/cover", w.case), &doctor).assert(200);
    app.post(&format!("/api/v1/cases/{}/activate", w.case), &w.coordinator, &json!({})).assert(200);
    app.get(&format!("/api/v1/patients/{}", w.patient), &w.coordinator).assert(200);
    // Directory reads are not patient data: no rows.
    app.get("/api/v1/organizations", &w.coordinator).assert(200);

    let rows = events(&app, &format!("&patient_id={}", w.patient));
    let expected = [
        ("patient.create", "success"),
        ("case.create", "success"),
        ("care_team.primary", "success"),
        ("case.read", "success"),
        ("case.read", "not_found"),
        ("case.activate", "not_found"),
        ("case.cover", "success"),
        ("case.activate", "success"),
        ("patient.read", "success"),
    ];
    assert_eq!(actions(&rows), expected.map(|(a, o)| (a.to_owned(), o.to_owned())));
    for row in &rows {
        for field in [
            "id",
            "at",
            "request_id",
            "actor_sub",
            "actor_org",
            "action",
            "resource_type",
            "resource_id",
            "patient_id",
            "prev_hash",
            "hash",
        ] {
            assert!(row[field].as_str().is_some_and(|v| !v.is_empty()), "{field} missing in {row}");
        }
        assert!(row["seq"].as_i64().is_some() && row["status"].as_u64().is_some());
        assert!(!row["actor_roles"].as_array().unwrap().is_empty());
        assert_eq!(row["purpose"], "normal");
    }
    assert_eq!(rows[4]["status"], 404);
    assert_eq!(rows[4]["actor_org"], stranger_org, "the refused stranger is named");
    assert_eq!(rows[0]["status"], 201);
    assert_eq!(rows[3]["actor_org"], w.base);
    // Every access of the scenario touched this patient: the rows are consecutive and linked.
    for pair in rows.windows(2) {
        assert_eq!(pair[1]["seq"].as_i64().unwrap(), pair[0]["seq"].as_i64().unwrap() + 1);
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
    }
}

#[test]
fn concurrent_reads_each_get_their_row_and_the_chain_stays_intact() {
    let app = Arc::new(spawn_app());
    let w = app.world();
    let (a, token, case) = (app.clone(), w.coordinator.clone(), w.case.clone());
    let statuses = race(24, move |_| a.get(&format!("/api/v1/cases/{case}"), &token).status);
    assert!(statuses.iter().all(|s| *s == 200));
    let reads = events(&app, "&action=case.read");
    assert_eq!(reads.len(), 24);
    let auditor = app.token_for(&app.admin_org, &["auditor"]);
    let v = app.get("/api/v1/audit-events/verify", &auditor);
    v.assert(200);
    assert_eq!(v.body["intact"], true, "{}", v.text);
    assert_eq!(v.body["checked"], 26);
}

/// A read's row is in the chain by the time the read is answered (on PostgreSQL it does not wait
/// in `audit_pending` for the sequencer), and after the change the read saw, even when that
/// change's row was still waiting for the sequencer.
#[test]
fn a_read_is_chained_by_its_answer_and_after_the_change_it_saw() {
    let app = spawn_app();
    let w = app.world();
    let mut patients = Vec::new();
    for i in 0..8 {
        let p = app.register_patient(&w.coordinator, &format!("順序 {i}"), "ジュンジョ");
        app.get(&format!("/api/v1/patients/{p}"), &w.coordinator).assert(200);
        // Read around the API: listing the log would catch up first and hide a row still waiting.
        assert_eq!(
            app.db.count(&format!("audit_events WHERE patient_id = '{p}'")),
            2,
            "the creation and the read are both chained when the read is answered"
        );
        patients.push(p);
    }
    for p in &patients {
        let rows = events(&app, &format!("&patient_id={p}"));
        let expected = [("patient.create", "success"), ("patient.read", "success")];
        assert_eq!(actions(&rows), expected.map(|(a, o)| (a.to_owned(), o.to_owned())));
        assert!(rows[0]["seq"].as_i64() < rows[1]["seq"].as_i64());
    }
}

/// A waiting row that cannot be chained (altered by hand: an outcome nobody knows) is left to the
/// sequencer; reads are still answered, and their rows chained, without it.
#[test]
fn a_bad_waiting_row_does_not_stop_reads() {
    let app = spawn_app();
    let w = app.world();
    app.db
        .raw(
            "INSERT INTO audit_pending (id, at, request_id, actor_sub, actor_org, actor_roles, action, \
             resource_type, outcome, status, purpose) VALUES ('bad-row', '2026-11-24 00:00:00', 'r', 'someone', \
             'org', '[]', 'case.read', 'case', 'bogus', 200, 'normal')",
        )
        .unwrap();
    for _ in 0..3 {
        app.get(&format!("/api/v1/cases/{}", w.case), &w.coordinator).assert(200);
    }
    assert_eq!(app.db.count("audit_events WHERE action = 'case.read'"), 3);
    assert_eq!(app.db.count("audit_pending WHERE id = 'bad-row'"), 1, "left where it was");
}

/// Verifying the log while reads and changes keep adding rows ends, and covers every row committed
/// before it started: on PostgreSQL the reader's catch-up stops at the newest row waiting when it
/// began, however fast new rows arrive (the changes' rows wait in `audit_pending`).
#[test]
fn verifying_the_log_ends_under_a_steady_stream_of_new_rows() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let app = Arc::new(spawn_app());
    let w = Arc::new(app.world());
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..4)
        .map(|i| {
            let (a, ww, stop, done) = (app.clone(), w.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    // One row each: two threads read, two register patients.
                    if i % 2 == 0 {
                        a.get(&format!("/api/v1/cases/{}", ww.case), &ww.coordinator).assert(200);
                    } else {
                        a.register_patient(&ww.coordinator, &format!("流れ {i}-{n}"), "ナガレ");
                    }
                    n += 1;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let (a, stop_verifier, done_seen) = (app.clone(), stop.clone(), done.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let verifier = std::thread::spawn(move || {
        let auditor = a.token_for(&a.admin_org, &["auditor"]);
        for _ in 0..5 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let before = done_seen.load(Ordering::SeqCst);
            let v = a.get("/api/v1/audit-events/verify", &auditor);
            let _ = tx.send((before, v.status, v.body));
        }
        stop_verifier.store(true, Ordering::SeqCst);
    });
    for _ in 0..5 {
        // A liveness bound, not a speed measurement: a catch-up that chased the stream would never answer.
        let (before, status, body) = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("verify answered");
        assert_eq!(status, 200);
        assert_eq!(body["intact"], true, "{body}");
        // The world's two rows, and one per request answered before the verification started.
        assert!(body["checked"].as_u64().unwrap() >= 2 + before as u64, "{body} after {before} reads");
    }
    verifier.join().unwrap();
    stop.store(true, Ordering::SeqCst);
    for r in readers {
        r.join().unwrap();
    }
    assert!(done.load(Ordering::SeqCst) > 0);
}

#[test]
fn changes_and_reads_at_once_keep_one_intact_chain_with_every_row() {
    let app = Arc::new(spawn_app());
    let w = Arc::new(app.world());
    let (a, ww) = (app.clone(), w.clone());
    // Eight writers (a patient and a case each time) and eight readers, all at once.
    let statuses = race(16, move |i| {
        let mut statuses = Vec::new();
        for j in 0..4 {
            if i % 2 == 0 {
                let p = a.register_patient(&ww.coordinator, &format!("連鎖 {i}-{j}"), "レンサ");
                a.open_case(&ww.coordinator, &p, &ww.base);
            } else {
                statuses.push(a.get(&format!("/api/v1/cases/{}", ww.case), &ww.coordinator).status);
            }
        }
        statuses
    });
    assert!(statuses.iter().flatten().all(|s| *s == 200));
    let expected = 2 + 8 * 4 * 2 + 8 * 4;
    // Nobody has read the log yet: on PostgreSQL the sequencer chains the waiting rows by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.db.count("audit_events") < expected && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(app.db.count("audit_events"), expected);
    assert_eq!(app.db.count("audit_pending"), 0);
    let auditor = app.token_for(&app.admin_org, &["auditor"]);
    let v = app.get("/api/v1/audit-events/verify", &auditor);
    assert_eq!(v.body["intact"], true, "{}", v.text);
    assert_eq!(v.body["checked"], expected);
    assert_eq!(events(&app, "&action=case.create").len(), 8 * 4 + 1);
}

#[test]
fn the_database_refuses_to_change_or_delete_audit_rows() {
    let app = spawn_app();
    app.world();
    // Reading the log first: on PostgreSQL the rows are chained by the sequencer.
    assert_eq!(events(&app, "").len(), 2);
    let update = app.db.raw("UPDATE audit_events SET actor_sub = 'nobody'");
    assert!(update.is_err(), "an UPDATE went through");
    assert!(update.unwrap_err().contains("audit events cannot"));
    assert!(app.db.raw("DELETE FROM audit_events").is_err(), "a DELETE went through");
    assert_eq!(events(&app, "").len(), 2);
}

/// Migration 000017 rebuilds SQLite's access log (`seq` becomes the row id instead of a key of its
/// own) and, on both backends, keeps only break-glass rows in the index by purpose. Undone and done
/// again on a log in use, every row, the hash chain, the break-glass review and the database's
/// refusals stay as they were, and new rows chain on.
#[test]
fn rebuilding_the_access_log_keeps_its_rows_chain_review_and_guards() {
    let app = spawn_app();
    let w = app.world();
    let case = format!("/api/v1/cases/{}", w.case);
    let outsider = app.as_practitioner(&w.doctors[2], &w.clinic, &["physician"]);
    let glass = [("X-Break-Glass", "emergency")];
    app.request("GET", &case, Some(&outsider), &glass, None).assert(200);
    for _ in 0..5 {
        app.get(&case, &w.coordinator).assert(200);
    }
    let auditor = app.token_for(&app.admin_org, &["auditor"]);
    let before = events(&app, "");
    assert_eq!(before.len(), 8);
    let seq_key = "pragma_index_list('audit_events') WHERE origin = 'pk'";
    if !app.db.is_postgres() {
        assert_eq!(app.db.count(seq_key), 0, "seq is the row id, not a separate unique index");
    }

    app.db.revert_through("000017");
    if !app.db.is_postgres() {
        assert_eq!(app.db.count(seq_key), 1);
    }
    assert_eq!(events(&app, "")[..8], before[..], "undone, the rows are the same");
    assert_eq!(app.get("/api/v1/audit-events/verify", &auditor).body["intact"], true);

    app.db.migrate();
    if !app.db.is_postgres() {
        assert_eq!(app.db.count(seq_key), 0);
    }
    assert_eq!(events(&app, "")[..8], before[..], "rebuilt, the rows are the same");
    app.request("GET", &format!("{case}/cover"), Some(&outsider), &glass, None).assert(200);
    app.get(&case, &w.coordinator).assert(200);
    let review = events(&app, "&purpose=break_glass");
    let expected = [("case.read", "success"), ("case.cover", "success")];
    assert_eq!(actions(&review), expected.map(|(a, o)| (a.to_owned(), o.to_owned())));
    assert_eq!(review[0], before[2], "the first review row is the one logged before the rebuild");
    let normal = events(&app, "&purpose=normal");
    assert!(normal.iter().all(|e| e["purpose"] == "normal"));
    assert_eq!(normal.len() + review.len(), events(&app, "").len());
    let v = app.get("/api/v1/audit-events/verify", &auditor);
    assert_eq!(v.body["intact"], true, "{}", v.text);
    assert!(app.db.raw("UPDATE audit_events SET actor_sub = 'nobody'").unwrap_err().contains("audit events cannot"));
    assert!(app.db.raw("DELETE FROM audit_events").is_err(), "a DELETE went through");
}

#[test]
fn a_row_altered_around_the_triggers_is_found_by_verify() {
    let app = spawn_app();
    let w = app.world();
    app.get(&format!("/api/v1/cases/{}", w.case), &w.coordinator).assert(200);
    let auditor = app.token_for(&app.admin_org, &["auditor"]);
    assert_eq!(app.get("/api/v1/audit-events/verify", &auditor).body["intact"], true);
    // Someone with database access removes the guard and rewrites who read the case.
    if app.db.is_postgres() {
        app.db.raw("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change").unwrap();
    } else {
        app.db.raw("DROP TRIGGER audit_events_no_update").unwrap();
    }
    app.db.raw("UPDATE audit_events SET actor_sub = 'someone-else' WHERE seq = 2").unwrap();
    let v = app.get("/api/v1/audit-events/verify", &auditor);
    v.assert(200);
    assert_eq!(v.body["intact"], false);
    assert_eq!(v.body["first_broken_seq"], 2);
    assert_eq!(v.body["checked"], 1);
}

#[test]
fn rows_cut_from_the_end_are_found_by_verify() {
    let app = spawn_app();
    let w = app.world();
    app.get(&format!("/api/v1/cases/{}", w.case), &w.coordinator).assert(200);
    let admin = app.token_for(&app.admin_org, &["admin"]);
    assert_eq!(app.get("/api/v1/audit-events/verify", &admin).body["intact"], true);
    if app.db.is_postgres() {
        app.db.raw("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change").unwrap();
    } else {
        app.db.raw("DROP TRIGGER audit_events_no_delete").unwrap();
    }
    app.db.raw("DELETE FROM audit_events WHERE seq = 3").unwrap();
    let v = app.get("/api/v1/audit-events/verify", &admin);
    assert_eq!(v.body["intact"], false);
    assert_eq!(v.body["first_broken_seq"], 3);
}

#[test]
fn only_auditors_and_admins_read_the_log() {
    let app = spawn_app();
    let w = app.world();
    for token in
        [w.coordinator.clone(), app.token_for(&w.base, &["physician"]), app.token_for(&w.base, &["municipal_viewer"])]
    {
        app.get("/api/v1/audit-events", &token).assert_problem(403, "forbidden");
        app.get("/api/v1/audit-events/verify", &token).assert_problem(403, "forbidden");
    }
    app.request("GET", "/api/v1/audit-events", None, &[], None).assert_problem(401, "missing_token");
    let admin = app.admin();
    app.get("/api/v1/audit-events?purpose=curious", &admin).assert_problem(400, "validation_failed");
    app.get("/api/v1/audit-events?cursor=abc", &admin).assert_problem(400, "validation_failed");
    app.get("/api/v1/audit-events?limit=0", &admin).assert_problem(400, "validation_failed");
    let page = app.get("/api/v1/audit-events?limit=1", &admin);
    let next = page.body["next_cursor"].as_str().unwrap().to_owned();
    let second = app.get(&format!("/api/v1/audit-events?limit=1&cursor={next}"), &admin);
    assert_eq!(second.body["items"][0]["seq"], 2);
}

#[test]
fn a_patients_access_log_is_for_their_coordinators_and_auditors() {
    let app = spawn_app();
    let w = app.world();
    let path = format!("/api/v1/patients/{}/access-log", w.patient);
    let r = app.get(&path, &w.coordinator);
    r.assert(200);
    let seen: Vec<String> =
        r.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
    assert_eq!(seen, ["patient.create", "case.create"]);
    app.get(&path, &app.token_for(&app.admin_org, &["auditor"])).assert(200);
    app.get(&path, &app.coordinator_of(&app.clinic("別の拠点"))).assert_problem(404, "not_found");
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    let doctor = app.as_practitioner(&w.doctors[0], &w.clinic, &["physician"]);
    app.get(&path, &doctor).assert_problem(403, "forbidden");
    // Reading the access log is itself an access.
    let rows = events(&app, &format!("&patient_id={}&action=patient.access_log", w.patient));
    assert_eq!(actions(&rows).iter().filter(|(_, o)| o == "success").count(), 2);
}

#[test]
fn break_glass_lets_a_physician_read_outside_their_team_and_is_listed_for_review() {
    let app = spawn_app();
    let w = app.world();
    let outsider = app.as_practitioner(&w.doctors[2], &w.clinic, &["physician"]);
    let path = format!("/api/v1/cases/{}", w.case);
    app.get(&path, &outsider).assert_problem(404, "not_found");
    let reason = "救急搬送先からの照会 (emergency call)";
    let encoded = crate::organizations::url_encode(reason);
    let glass = [("X-Break-Glass", encoded.as_str())];
    let r = app.request("GET", &path, Some(&outsider), &glass, None);
    r.assert(200);
    app.request("GET", &format!("{path}/cover"), Some(&outsider), &glass, None).assert(200);
    app.request("GET", &format!("/api/v1/patients/{}", w.patient), Some(&outsider), &glass, None).assert(200);
    // Read-only: a change that declares break-glass is refused outright, even for its managers.
    app.request("POST", &format!("{path}/cancel"), Some(&outsider), &glass, Some("{}"))
        .assert_problem(400, "break_glass_read_only");
    app.request("POST", &format!("{path}/cancel"), Some(&w.coordinator), &glass, Some("{}"))
        .assert_problem(400, "break_glass_read_only");
    assert_eq!(app.get(&path, &w.coordinator).body["status"], "referred");
    // Lists do not open up.
    assert_eq!(app.request("GET", "/api/v1/cases", Some(&outsider), &glass, None).body["items"], json!([]));
    // Only physicians, and only with a reason.
    let nurse = app.as_practitioner(&w.nurse, &w.clinic, &["nurse"]);
    app.request("GET", &path, Some(&nurse), &glass, None).assert_problem(403, "forbidden");
    app.request("GET", &path, Some(&outsider), &[("X-Break-Glass", " ")], None)
        .assert_problem(400, "validation_failed");
    // Every request that declared break-glass is listed for review, whatever it tried.
    let review = events(&app, "&purpose=break_glass");
    let summary: Vec<(String, String)> = actions(&review);
    let expected = [
        ("case.read", "success"),
        ("case.cover", "success"),
        ("patient.read", "success"),
        ("case.cancel", "rejected"),
        ("case.cancel", "rejected"),
        ("case.list", "success"),
        ("case.read", "denied"),
    ];
    assert_eq!(summary, expected.map(|(a, o)| (a.to_owned(), o.to_owned())));
    assert_eq!(review[0]["reason"], reason);
    assert_eq!(review[0]["actor_sub"], w.doctors[2]);
}

#[test]
fn a_malformed_read_of_a_case_is_recorded_as_rejected() {
    let app = spawn_app();
    let w = app.world();
    app.get(&format!("/api/v1/cases/{}/cover?at=noon", w.case), &w.coordinator)
        .assert_problem(400, "validation_failed");
    app.get(&format!("/api/v1/cases/{}/care-team?history=maybe", w.case), &w.coordinator).assert(400);
    let rows = events(&app, &format!("&patient_id={}", w.patient));
    let tail: Vec<(String, String)> = actions(&rows).into_iter().skip(2).collect();
    assert_eq!(
        tail,
        [("case.cover", "rejected"), ("care_team.read", "rejected")].map(|(a, o)| (a.to_owned(), o.to_owned()))
    );
}

/// Keys the access log once from outside the server (another instance's pass), at most
/// `max_rows` rows; returns how many it keyed.
fn key(app: &TestApp, max_rows: i64) -> i64 {
    let config = test_config(&app.db);
    actix_web::rt::System::new().block_on(async {
        let db = renkei::db::Db::connect(&config.db).unwrap();
        renkei::audit::key_pass(&db, max_rows).await.unwrap()
    })
}

fn keyed_seq(app: &TestApp) -> i64 {
    app.db.count("audit_keys_head, audit_events WHERE audit_events.seq <= audit_keys_head.keyed_seq")
}

/// Every listing by patient, by actor or both, paged one row at a time or not, against the
/// unfiltered log filtered here.
fn assert_lists_match_the_log(app: &TestApp, patients: &[&str], actors: &[&str]) {
    let auditor = app.token_for(&app.admin_org, &["auditor"]);
    let all = events(app, "");
    let seqs = |rows: &[&Value]| rows.iter().map(|e| e["seq"].as_i64().unwrap()).collect::<Vec<_>>();
    // (query, the rows it should find, whether it must find some)
    let mut queries: Vec<(String, Vec<i64>, bool)> = Vec::new();
    for p in patients {
        queries.push((
            format!("patient_id={p}"),
            seqs(&all.iter().filter(|e| e["patient_id"] == *p).collect::<Vec<_>>()),
            true,
        ));
        for a in actors {
            let want = all.iter().filter(|e| e["patient_id"] == *p && e["actor_sub"] == *a).collect::<Vec<_>>();
            queries.push((format!("patient_id={p}&actor={a}"), seqs(&want), false));
        }
        let reads = all.iter().filter(|e| e["patient_id"] == *p && e["action"] == "case.read").collect::<Vec<_>>();
        queries.push((format!("patient_id={p}&action=case.read"), seqs(&reads), true));
        // A window of time and a purpose (the tail is then still read by `seq`).
        let mine = all.iter().filter(|e| e["patient_id"] == *p).collect::<Vec<_>>();
        let (from, to) = (mine[1]["at"].as_str().unwrap(), mine[mine.len() - 1]["at"].as_str().unwrap());
        let t = |v: &str| chrono::DateTime::parse_from_rfc3339(v).unwrap();
        let window = mine.iter().copied().filter(|e| {
            let at = t(e["at"].as_str().unwrap());
            at >= t(from) && at < t(to)
        });
        queries.push((
            format!("patient_id={p}&purpose=normal&from={from}&to={to}"),
            seqs(&window.collect::<Vec<_>>()),
            true,
        ));
    }
    for a in actors {
        queries.push((
            format!("actor={a}"),
            seqs(&all.iter().filter(|e| e["actor_sub"] == *a).collect::<Vec<_>>()),
            true,
        ));
    }
    for (query, want, some) in queries {
        assert!(!some || !want.is_empty(), "{query} should find rows");
        let listed = events(app, &format!("&{query}"));
        assert_eq!(seqs(&listed.iter().collect::<Vec<_>>()), want, "{query}");
        // One row a page: the pages cross the keys' head wherever it is.
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => format!("/api/v1/audit-events?{query}&limit=1&cursor={c}"),
                None => format!("/api/v1/audit-events?{query}&limit=1"),
            };
            let page = app.get(&url, &auditor);
            page.assert(200);
            paged.extend(page.body["items"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()));
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
            assert!(paged.len() <= want.len(), "{query}: more pages than rows");
        }
        assert_eq!(paged, want, "{query}, one row a page");
    }
}

/// The log is found by patient and by actor through key tables filled behind it (migration
/// 000018): before any keying (all of it the tail), with the keys' head part-way, with keys
/// left after the head by a pass that stopped half-way, and keyed to the end, every listing
/// finds the same rows, once each, in order.
#[test]
fn lists_by_patient_and_actor_find_every_row_wherever_the_keys_stop() {
    let app = spawn_app();
    let w = app.world();
    let other = app.world_for_new_patient(&w);
    let doctor = app.as_practitioner(&w.doctors[0], &w.clinic, &["physician"]);
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    let read_both = |n: usize| {
        for i in 0..n {
            app.get(&format!("/api/v1/cases/{}", w.case), &w.coordinator).assert(200);
            app.get(&format!("/api/v1/cases/{}", other.case), &w.coordinator).assert(200);
            if i % 2 == 0 {
                app.get(&format!("/api/v1/cases/{}/cover", w.case), &doctor).assert(200);
            }
        }
    };
    read_both(3);
    let coordinator_sub = events(&app, "&action=case.read")[0]["actor_sub"].as_str().unwrap().to_owned();
    let doctor_sub = events(&app, "&action=case.cover")[0]["actor_sub"].as_str().unwrap().to_owned();
    let (patients, actors) =
        ([w.patient.as_str(), other.patient.as_str()], [coordinator_sub.as_str(), doctor_sub.as_str()]);
    assert_eq!(keyed_seq(&app), 0, "nothing keyed yet");
    assert_lists_match_the_log(&app, &patients, &actors);

    // The head part-way.
    assert_eq!(key(&app, 5), 5);
    assert_eq!(keyed_seq(&app), 5);
    read_both(2);
    assert_lists_match_the_log(&app, &patients, &actors);

    // A pass that inserted its keys and stopped before moving the head: the keys after the head
    // are not read twice.
    let config = test_config(&app.db);
    actix_web::rt::System::new().block_on(async {
        let db = renkei::db::Db::connect(&config.db).unwrap();
        let b = db.read(|c| renkei::db::audit_keys::backlog(c, 4)).await.unwrap().unwrap();
        db.write(move |c| renkei::db::audit_keys::insert_patient_keys(c, &b.patients)).await.unwrap();
        db.write(move |c| renkei::db::audit_keys::insert_actor_keys(c, &b.actors)).await.unwrap();
    });
    assert!(app.db.count("audit_patient_keys WHERE seq > 5") > 0, "keys after the head");
    assert_eq!(keyed_seq(&app), 5);
    assert_lists_match_the_log(&app, &patients, &actors);

    // Keyed to the end (the half-done keys inserted again as no-ops), then a new tail.
    let total = events(&app, "").len() as i64;
    assert_eq!(key(&app, 1000), total - 5);
    assert_eq!(key(&app, 1000), 0, "nothing left");
    assert_eq!(keyed_seq(&app), total);
    let with_patient = app.db.count("audit_events WHERE patient_id IS NOT NULL");
    assert_eq!(app.db.count("audit_patient_keys"), with_patient, "one key per row with a patient");
    assert_eq!(app.db.count("audit_actor_keys"), total, "one key per row");
    assert_lists_match_the_log(&app, &patients, &actors);
    read_both(1);
    assert_lists_match_the_log(&app, &patients, &actors);
}

/// Passes of several instances race each other, a stream of new rows and listings: every listing
/// taken meanwhile finds every row the log had before it began, once each and in order (a head
/// moved past keys not yet in, or backwards, would hide rows), and once keyed to the end every row
/// has its keys.
#[test]
fn keying_passes_racing_each_other_new_rows_and_listings_repeat_and_miss_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let app = Arc::new(spawn_app());
    let w = app.world();
    let config = test_config(&app.db);
    let stop = Arc::new(AtomicBool::new(false));
    let passes: Vec<_> = (0..3)
        .map(|_| {
            let (config, stop) = (config.clone(), stop.clone());
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let db = renkei::db::Db::connect(&config.db).unwrap();
                    let mut moved = 0;
                    while !stop.load(Ordering::Relaxed) {
                        moved += renkei::audit::key_pass(&db, 7).await.unwrap();
                    }
                    moved
                })
            })
        })
        .collect();
    let readers: Vec<_> = (0..6)
        .map(|_| {
            let (a, s, token, case) = (app.clone(), stop.clone(), w.coordinator.clone(), w.case.clone());
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                while !s.load(Ordering::Relaxed) {
                    statuses.push(a.get(&format!("/api/v1/cases/{case}"), &token).status);
                }
                statuses
            })
        })
        .collect();
    // Listings while rows arrive and passes move the head, until enough have been taken.
    let mut listings = 0;
    while listings < 60 {
        // The last rows, where the head moves (a page holds at most 200).
        let after = (app.db.count("audit_events") - 100).max(0);
        let seqs = |query: String| -> Vec<i64> {
            events(&app, &format!("&cursor=s{after}{query}")).iter().map(|e| e["seq"].as_i64().unwrap()).collect()
        };
        let before = seqs(String::new());
        let listed = seqs(format!("&patient_id={}", w.patient));
        assert!(listed.windows(2).all(|p| p[0] < p[1]), "in order, each once: {listed:?}");
        assert!(listed.starts_with(&before), "a listing missed rows the log had before it: {before:?} {listed:?}");
        listings += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let moved_by_passes: i64 = passes.into_iter().map(|p| p.join().unwrap()).sum();
    let statuses: Vec<u16> = readers.into_iter().flat_map(|r| r.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200));
    let total = events_all(&app);
    assert_eq!(total, 2 + statuses.len() as i64);
    key(&app, 100_000);
    assert!(moved_by_passes > 0, "the racing passes moved the head");
    assert!(moved_by_passes <= total, "each row passed once: {moved_by_passes}");
    assert_eq!(keyed_seq(&app), total);
    assert_eq!(app.db.count("audit_patient_keys"), total);
    assert_eq!(app.db.count("audit_actor_keys"), total);
}

/// How many rows the log has (its chain's head; after a listing, which catches up on PostgreSQL).
fn events_all(app: &TestApp) -> i64 {
    events(app, "");
    app.db.count("audit_events")
}

/// A key removed would hide a row from a patient's access history without breaking the chain:
/// the database refuses it.
#[test]
fn the_database_refuses_to_change_or_delete_audit_keys() {
    let app = spawn_app();
    app.world();
    events(&app, "");
    assert_eq!(key(&app, 100), 2);
    for table in ["audit_patient_keys", "audit_actor_keys"] {
        let update = app.db.raw(&format!("UPDATE {table} SET seq = seq + 100"));
        assert!(update.unwrap_err().contains("audit"), "an UPDATE of {table} went through");
        assert!(app.db.raw(&format!("DELETE FROM {table}")).is_err(), "a DELETE of {table} went through");
    }
    assert_eq!(app.db.count("audit_patient_keys"), 2);
}

/// Migration 000018 keys the rows already in the log (those written while it was undone too) and
/// drops the log's own indexes by patient and actor; undone, it puts them back.
#[test]
fn keying_the_access_log_by_migration_keeps_every_listing() {
    let app = spawn_app();
    let w = app.world();
    for _ in 0..3 {
        app.get(&format!("/api/v1/cases/{}", w.case), &w.coordinator).assert(200);
    }
    let before = events(&app, &format!("&patient_id={}", w.patient));
    assert_eq!(before.len(), 5);
    let indexes = "pragma_index_list('audit_events') WHERE name IN ('audit_events_patient', 'audit_events_actor')";
    app.db.revert_through("000018");
    // Undone, the log's own indexes are back for the release before (this server's listings need the keys).
    if !app.db.is_postgres() {
        assert_eq!(app.db.count(indexes), 2);
    } else {
        assert_eq!(app.db.count("pg_indexes WHERE indexname IN ('audit_events_patient', 'audit_events_actor')"), 2);
    }
    assert_eq!(app.db.count(&format!("audit_events WHERE patient_id = '{}'", w.patient)), 5);
    app.get(&format!("/api/v1/cases/{}", w.case), &w.coordinator).assert(200);
    app.db.migrate();
    let total = events(&app, "").len() as i64;
    assert_eq!(keyed_seq(&app), total, "the rows already there are keyed by the migration");
    assert_eq!(app.db.count("audit_patient_keys"), total);
    let after = events(&app, &format!("&patient_id={}", w.patient));
    assert_eq!(after[..5], before[..], "keyed, the same rows");
    assert_eq!(after.len(), 6, "and the read made while it was undone");
    if !app.db.is_postgres() {
        assert_eq!(app.db.count(indexes), 0);
    } else {
        assert_eq!(app.db.count("pg_indexes WHERE indexname IN ('audit_events_patient', 'audit_events_actor')"), 0);
    }
}

/// The server keys its log by itself on its timer.
#[test]
fn the_server_keys_its_log_on_a_timer() {
    let app = spawn_with(TestDb::create(), |c| c.audit_keys_interval = std::time::Duration::from_millis(20));
    let w = app.world();
    for _ in 0..5 {
        app.get(&format!("/api/v1/cases/{}", w.case), &w.coordinator).assert(200);
    }
    let total = events(&app, "").len() as i64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while keyed_seq(&app) < total {
        assert!(std::time::Instant::now() < deadline, "the log was not keyed in 10 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(app.db.count("audit_patient_keys"), total);
}

/// The rows not yet keyed, as `/metrics` reports them: every row until a pass, none after it,
/// and the new rows after that.
#[test]
fn metrics_report_how_far_the_keys_lag_behind_the_log() {
    let app = spawn_app();
    let w = app.world();
    let lag = |app: &TestApp| -> i64 {
        let r = app.request("GET", "/metrics", None, &[], None);
        r.assert(200);
        assert!(r.text.contains("# TYPE renkei_audit_keys_lag_rows gauge"), "{}", r.text);
        let line = r.text.lines().find(|l| l.starts_with("renkei_audit_keys_lag_rows ")).expect("the lag series");
        line["renkei_audit_keys_lag_rows ".len()..].parse().expect("a number")
    };
    for _ in 0..3 {
        app.get(&format!("/api/v1/cases/{}", w.case), &w.coordinator).assert(200);
    }
    let rows = app.db.count("audit_events");
    assert!(rows >= 3);
    assert_eq!(keyed_seq(&app), 0);
    assert_eq!(lag(&app), rows, "nothing is keyed yet");
    assert_eq!(key(&app, 2), 2);
    assert_eq!(lag(&app), rows - 2, "keyed part of the way");
    key(&app, 1_000_000);
    assert_eq!(lag(&app), 0);
    for _ in 0..2 {
        app.get(&format!("/api/v1/cases/{}", w.case), &w.coordinator).assert(200);
    }
    assert_eq!(lag(&app), 2);
}
