//! The event feed: the outbox writes events with their change, the feed answers them in commit
//! order, without gaps or duplicates under concurrent writers, scoped like the resources.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{race, spawn_app, TestApp};

fn feed(app: &TestApp, token: &str, query: &str) -> Value {
    let r = app.get(&format!("/api/v1/events?{query}"), token);
    r.assert(200);
    r.body
}

fn types(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_case_tells_its_story_in_order_to_those_who_may_see_it() {
    let app = spawn_app();
    let w = app.world();
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    app.post(&format!("/api/v1/cases/{}/activate", w.case), &w.coordinator, &json!({})).assert(200);
    // A refused change writes nothing.
    app.post(&format!("/api/v1/cases/{}/activate", w.case), &w.coordinator, &json!({})).assert(409);
    let page = feed(&app, &w.coordinator, "after=0");
    assert_eq!(types(&page), ["case.created", "care_team.changed", "case.activated"]);
    let seqs: Vec<i64> = page["items"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|p| p[1] == p[0] + 1), "{seqs:?}");
    assert_eq!(page["next_after"], seqs[2]);
    let activated = &page["items"][2];
    assert_eq!(
        (activated["resource_type"].as_str(), activated["case_id"].as_str()),
        (Some("case"), Some(w.case.as_str()))
    );
    assert_eq!(activated["data"]["status"], "active");
    assert_eq!(
        types(&feed(&app, &w.coordinator, &format!("after={}", seqs[0]))),
        ["care_team.changed", "case.activated"]
    );
    assert_eq!(types(&feed(&app, &w.coordinator, "types=case.activated")), ["case.activated"]);
    // The primary physician is on the team now: they see the case's events; others do not.
    let doctor = app.as_practitioner(&w.doctors[0], &w.clinic, &["physician"]);
    assert_eq!(types(&feed(&app, &doctor, "after=0")).len(), 3);
    let outsider = app.coordinator_of(&w.clinic);
    assert_eq!(feed(&app, &outsider, "after=0")["items"], json!([]));
    app.get("/api/v1/events", &app.token_for(&w.base, &["municipal_viewer"])).assert_problem(403, "forbidden");
    app.get("/api/v1/events?types=case.exploded", &w.coordinator).assert_problem(400, "validation_failed");
    app.get("/api/v1/events?after=-1", &w.coordinator).assert_problem(400, "validation_failed");
    app.get("/api/v1/events?wait=31", &w.coordinator).assert_problem(400, "validation_failed");
    app.request("GET", "/api/v1/events", None, &[], None).assert(401);
}

/// A reader who sees events two ways (coordinator of one base, on a team of another base's case)
/// pages through them one at a time: in sequence order, each once, none of a third base.
#[test]
fn a_reader_seeing_events_two_ways_pages_through_each_once_in_order() {
    let app = spawn_app();
    let w = app.world();
    let (other_base, other) = app.other_base("港区医師会", "131032");
    let elsewhere = app.open_case(&other, &app.register_patient(&other, "木村 一郎", "キムラ イチロウ"), &other_base);
    let (third_base, third) = app.other_base("中央区医師会", "131024");
    app.open_case(&third, &app.register_patient(&third, "林 三郎", "ハヤシ サブロウ"), &third_base);
    app.join_as_nurse(&other, &elsewhere, &w.nurse);
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    // On this base's case too: its events are seen both ways.
    app.join_as_nurse(&w.coordinator, &w.case, &w.nurse);
    let both = app.as_practitioner(&w.nurse, &w.base, &["nurse", "coordinator"]);
    let mut seen: Vec<(i64, String)> = Vec::new();
    let mut after = 0;
    for _ in 0..20 {
        let page = feed(&app, &both, &format!("after={after}&limit=1"));
        let items = page["items"].as_array().unwrap();
        if items.is_empty() {
            break;
        }
        for e in items {
            seen.push((e["seq"].as_i64().unwrap(), e["case_id"].as_str().unwrap_or_default().to_owned()));
        }
        after = page["next_after"].as_i64().unwrap();
    }
    let seqs: Vec<i64> = seen.iter().map(|(s, _)| *s).collect();
    assert!(seqs.windows(2).all(|p| p[0] < p[1]), "in order, each once: {seqs:?}");
    let cases: std::collections::BTreeSet<&str> = seen.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(cases, [w.case.as_str(), elsewhere.as_str()].into_iter().collect(), "{seen:?}");
    // The same events, in one page, as the first reader of the feed would get them.
    let all = feed(&app, &both, "after=0&limit=100");
    let one_page: Vec<i64> = all["items"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(one_page, seqs);
}

#[test]
fn hospitals_see_their_own_kind_of_events_and_bases_no_drafts() {
    let app = spawn_app();
    let w = app.world();
    let hospital = app.create_org(json!({"kind": "hospital", "name": "千代田中央病院", "municipality_code": "131016"}))
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let staff = app.token_for(&hospital, &["hospital_discharge"]);
    let beds = app.token_for(&hospital, &["hospital_bed_manager"]);
    let answers: serde_json::Map<String, Value> = [
        "malignancy_dementia_or_aspiration",
        "ltc_not_applied",
        "communication_disability",
        "severe_behavioral_disorder",
        "abuse_suspected",
        "poverty",
        "adl_decline",
        "toileting_assistance",
        "insufficient_care_at_home",
        "medical_procedure_after_discharge",
        "repeated_admissions",
        "long_term_malnutrition",
        "young_carer",
        "cared_for_by_child",
        "no_kin",
        "other",
    ]
    .iter()
    .map(|c| ((*c).to_owned(), json!(*c == "no_kin")))
    .collect();
    let sheet = app.post(
        "/api/v1/screenings",
        &staff,
        &json!({"template": {"code": "national_discharge_difficulty"}, "base_organization_id": w.base,
                "encounter_ref": "E-1", "patient_id": w.patient, "admitted_at": "2026-11-20T10:00:00+09:00",
                "emergency_admission": false, "answers": answers, "status": "draft"}),
    );
    sheet.assert(201);
    let base_before = feed(&app, &w.coordinator, "types=screening.created");
    assert_eq!(base_before["items"], json!([]), "a draft is the hospital's own");
    assert_eq!(types(&feed(&app, &staff, "after=0")), ["screening.created"]);
    assert_eq!(feed(&app, &beds, "after=0")["items"], json!([]), "bed managers do not read sheets");
    app.post(&format!("/api/v1/screenings/{}/submit", sheet.id()), &staff, &json!({})).assert(200);
    assert_eq!(types(&feed(&app, &w.coordinator, "types=screening.submitted")), ["screening.submitted"]);
}

#[test]
fn a_waiting_reader_is_answered_when_an_event_commits() {
    let app = Arc::new(spawn_app());
    let w = app.world();
    let last = feed(&app, &w.coordinator, "after=0")["next_after"].as_i64().unwrap();
    let (a, coordinator, base) = (app.clone(), w.coordinator.clone(), w.base.clone());
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(600));
        let p = a.register_patient(&coordinator, "遅延 太郎", "チエン タロウ");
        a.open_case(&coordinator, &p, &base);
    });
    let started = Instant::now();
    let page = feed(&app, &w.coordinator, &format!("after={last}&wait=10"));
    assert_eq!(types(&page), ["case.created"]);
    assert!(started.elapsed() < Duration::from_secs(5), "answered on the event, not at the deadline");
    writer.join().unwrap();
    let empty = Instant::now();
    let none = feed(&app, &w.coordinator, &format!("after={}&wait=1", page["next_after"]));
    assert_eq!(none["items"], json!([]));
    assert!(empty.elapsed() >= Duration::from_millis(900), "waited before answering empty");
}

#[test]
fn the_feed_under_concurrent_writers_returns_every_event_once_in_order() {
    let app = Arc::new(spawn_app());
    let w = Arc::new(app.world());
    let start = feed(&app, &w.coordinator, "after=0")["next_after"].as_i64().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // A reader follows the feed while eight writers open cases at once.
    let (a, ww, d) = (app.clone(), w.clone(), done.clone());
    let reader = std::thread::spawn(move || {
        let mut seen: Vec<i64> = Vec::new();
        let mut after = start;
        loop {
            let finished = d.load(Ordering::SeqCst);
            let page = feed(&a, &ww.coordinator, &format!("after={after}&limit=7"));
            for e in page["items"].as_array().unwrap() {
                seen.push(e["seq"].as_i64().unwrap());
            }
            after = page["next_after"].as_i64().unwrap();
            if finished && page["items"].as_array().unwrap().is_empty() {
                return seen;
            }
        }
    });
    let (a, ww) = (app.clone(), w.clone());
    race(8, move |i| {
        for j in 0..5 {
            let p = a.register_patient(&ww.coordinator, &format!("並行 {i}-{j}"), "ヘイコウ");
            a.open_case(&ww.coordinator, &p, &ww.base);
        }
    });
    done.store(true, Ordering::SeqCst);
    let seen = reader.join().unwrap();
    assert_eq!(seen.len(), 40, "one case.created per case");
    let expected: Vec<i64> = (start + 1..=start + 40).collect();
    assert_eq!(seen, expected, "every event once, in order, no gaps");
}
