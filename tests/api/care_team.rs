//! Care teams and the primary/secondary handover (DOMAIN.md §2–3).

use std::sync::Arc;

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::json;

use crate::helpers::{race, spawn_app};

fn in_hours(h: i64) -> String {
    (Utc::now() + Duration::hours(h)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[test]
fn a_handover_ends_the_old_primary_exactly_when_the_new_starts() {
    let app = spawn_app();
    let w = app.world();
    let first = app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None);
    first.assert(200);
    let at = in_hours(24);
    let second = app.handover(&w.coordinator, &w.case, "primary", &w.doctors[1], Some(&at));
    second.assert(200);
    assert_eq!(second.body["starts_at"], at);
    let history = app.get(&format!("/api/v1/cases/{}/care-team?history=true", w.case), &w.coordinator);
    let items = history.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["ends_at"], at, "the old assignment ends exactly when the new starts");
    assert_eq!(items[1]["ends_at"], json!(null));
    assert_eq!(items[0]["practitioner"]["name"], "山田 太郎");
    // Before the instant the first doctor is primary; from it, the second.
    let at_team = |t: &str| app.get(&format!("/api/v1/cases/{}/care-team?at={t}", w.case), &w.coordinator);
    assert_eq!(at_team(&in_hours(23)).body["items"][0]["practitioner_id"], w.doctors[0]);
    assert_eq!(at_team(&at).body["items"][0]["practitioner_id"], w.doctors[1]);
}

#[test]
fn handing_over_to_the_current_primary_changes_nothing() {
    let app = spawn_app();
    let w = app.world();
    let first = app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None);
    let again = app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None);
    again.assert(200);
    assert_eq!(again.body["id"], first.body["id"]);
}

#[test]
fn primary_and_secondary_are_different_active_physicians() {
    let app = spawn_app();
    let w = app.world();
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    let r = app.handover(&w.coordinator, &w.case, "secondary", &w.doctors[0], None);
    r.assert_problem(409, "primary_physician_conflict");
    app.handover(&w.coordinator, &w.case, "secondary", &w.doctors[1], None).assert(200);
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[1], None)
        .assert_problem(409, "primary_physician_conflict");
    let r = app.handover(&w.coordinator, &w.case, "primary", &w.nurse, None);
    r.assert_problem(400, "validation_failed");
    assert_eq!(r.field_errors()[0].1, "not_a_physician");
    app.patch(&format!("/api/v1/practitioners/{}", w.doctors[2]), &app.admin(), "\"1\"", &json!({"active": false}))
        .assert(200);
    let r = app.handover(&w.coordinator, &w.case, "primary", &w.doctors[2], None);
    assert_eq!(r.field_errors()[0].1, "inactive");
    let r = app.handover(&w.coordinator, &w.case, "primary", &uuid::Uuid::now_v7().to_string(), None);
    assert_eq!(r.field_errors()[0].1, "unknown_reference");
}

#[test]
fn handovers_are_never_backdated_nor_reorder_history() {
    let app = spawn_app();
    let w = app.world();
    let past = (Utc::now() - Duration::hours(2)).to_rfc3339();
    let r = app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], Some(&past));
    assert_eq!(r.field_errors()[0], ("effective_at".to_owned(), "in_the_past".to_owned()));
    let later = in_hours(48);
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], Some(&later)).assert(200);
    let r = app.handover(&w.coordinator, &w.case, "primary", &w.doctors[1], Some(&in_hours(24)));
    r.assert_problem(409, "primary_physician_conflict");
}

#[test]
fn twenty_concurrent_handovers_leave_exactly_one_current_primary() {
    let app = Arc::new(spawn_app());
    let w = app.world();
    let doctors: Vec<String> =
        (0..20).map(|i| app.physician(&w.clinic, &format!("医師{i}"), "イシ", &format!("3000{i:02}"))).collect();
    let (a, c, case) = (app.clone(), w.coordinator.clone(), w.case.clone());
    let doctors = Arc::new(doctors);
    let d = doctors.clone();
    let statuses = race(20, move |i| a.handover(&c, &case, "primary", &d[i], None).status);
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    assert!(statuses.contains(&200));
    let team = app.get(&format!("/api/v1/cases/{}/care-team", w.case), &w.coordinator);
    let primaries: Vec<_> =
        team.body["items"].as_array().unwrap().iter().filter(|m| m["role"] == "primary_physician").collect();
    assert_eq!(primaries.len(), 1, "{}", team.text);
    let history = app.get(&format!("/api/v1/cases/{}/care-team?history=true", w.case), &w.coordinator);
    // Compared as instants: the text drops trailing zeros of the fraction (".574Z" is 574,000 µs), so the
    // strings do not sort in time order.
    let instant = |v: &serde_json::Value| v.as_str().map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap());
    let mut periods: Vec<_> = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "primary_physician")
        .map(|m| (instant(&m["starts_at"]).unwrap(), instant(&m["ends_at"])))
        .collect();
    periods.sort();
    for pair in periods.windows(2) {
        assert_eq!(pair[0].1, Some(pair[1].0), "assignments chain without gap or overlap");
    }
    assert_eq!(periods.last().unwrap().1, None);
}

#[test]
fn the_current_primary_may_name_their_secondary_but_not_others() {
    let app = spawn_app();
    let w = app.world();
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    let primary = app.as_practitioner(&w.doctors[0], &w.clinic, &["physician"]);
    app.handover(&primary, &w.case, "secondary", &w.doctors[1], None).assert(200);
    app.handover(&primary, &w.case, "primary", &w.doctors[2], None).assert_problem(403, "forbidden");
    let secondary = app.as_practitioner(&w.doctors[1], &w.clinic, &["physician"]);
    app.handover(&secondary, &w.case, "secondary", &w.doctors[2], None).assert_problem(403, "forbidden");
    let outsider = app.as_practitioner(&w.doctors[2], &w.clinic, &["physician"]);
    app.handover(&outsider, &w.case, "secondary", &w.doctors[2], None).assert_problem(404, "not_found");
}

#[test]
fn the_secondary_is_removed_by_delete_and_history_is_kept() {
    let app = spawn_app();
    let w = app.world();
    let path = format!("/api/v1/cases/{}/physicians/secondary", w.case);
    app.request("DELETE", &path, Some(&w.coordinator), &[], None).assert_problem(409, "none_assigned");
    app.handover(&w.coordinator, &w.case, "secondary", &w.doctors[1], None).assert(200);
    let r = app.request("DELETE", &format!("{path}?effective_at={}", in_hours(1)), Some(&w.coordinator), &[], None);
    r.assert(204);
    let history = app.get(&format!("/api/v1/cases/{}/care-team?history=true", w.case), &w.coordinator);
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1);
    assert!(history.body["items"][0]["ends_at"].is_string());
    let stranger = app.coordinator_of(&app.clinic("別の拠点"));
    app.request("DELETE", &path, Some(&stranger), &[], None).assert_problem(404, "not_found");
}

#[test]
fn members_join_and_end_but_are_never_deleted() {
    let app = spawn_app();
    let w = app.world();
    let path = format!("/api/v1/cases/{}/care-team", w.case);
    let r = app.post(&path, &w.coordinator, &json!({"practitioner_id": w.nurse, "role": "visiting_nurse"}));
    r.assert(201);
    let member = r.id();
    assert!(r.header("location").unwrap().ends_with(&member));
    let end = format!("{path}/{member}/end");
    app.post(&end, &w.coordinator, &json!({"ends_at": "2000-01-01T00:00:00Z"}))
        .assert_problem(400, "validation_failed");
    app.post(&end, &w.coordinator, &json!({})).assert(200);
    app.post(&end, &w.coordinator, &json!({})).assert_problem(409, "invalid_transition");
    assert_eq!(app.get(&path, &w.coordinator).body["items"], json!([]));
    assert_eq!(app.get(&format!("{path}?history=true"), &w.coordinator).body["items"].as_array().unwrap().len(), 1);
    app.post(&format!("{path}/{}/end", uuid::Uuid::now_v7()), &w.coordinator, &json!({}))
        .assert_problem(404, "not_found");
}

#[test]
fn team_changes_are_refused_with_reasons() {
    let app = spawn_app();
    let w = app.world();
    let path = format!("/api/v1/cases/{}/care-team", w.case);
    let r = app.post(&path, &w.coordinator, &json!({"practitioner_id": w.doctors[0], "role": "primary_physician"}));
    assert_eq!(r.field_errors()[0], ("role".to_owned(), "use_handover".to_owned()));
    let r = app.post(&path, &w.coordinator, &json!({"practitioner_id": "x", "role": "astronaut", "starts_at": "soon"}));
    assert_eq!(r.field_errors().len(), 3, "{}", r.text);
    let nurse = app.as_practitioner(&w.nurse, &w.clinic, &["nurse"]);
    app.post(&path, &nurse, &json!({"practitioner_id": w.nurse, "role": "visiting_nurse"}))
        .assert_problem(404, "not_found");
    app.get(&format!("{path}?at=yesterday"), &w.coordinator).assert_problem(400, "validation_failed");
    app.post(&format!("/api/v1/cases/{}/cancel", w.case), &w.coordinator, &json!({})).assert(200);
    app.post(&path, &w.coordinator, &json!({"practitioner_id": w.nurse, "role": "visiting_nurse"}))
        .assert_problem(409, "invalid_transition");
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert_problem(409, "invalid_transition");
}

#[test]
fn the_same_physician_never_holds_both_slots_even_through_scheduled_changes() {
    let app = spawn_app();
    let w = app.world();
    // A: the secondary leaves in an hour; making them primary before that would overlap.
    app.handover(&w.coordinator, &w.case, "secondary", &w.doctors[1], None).assert(200);
    let path = format!("/api/v1/cases/{}/physicians/secondary?effective_at={}", w.case, in_hours(1));
    app.request("DELETE", &path, Some(&w.coordinator), &[], None).assert(204);
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[1], None)
        .assert_problem(409, "primary_physician_conflict");
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[1], Some(&in_hours(1))).assert(200);
    // B: the primary hands over tomorrow; they cannot be secondary before that.
    let w = app.world_for_new_patient(&w);
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[1], Some(&in_hours(24))).assert(200);
    app.handover(&w.coordinator, &w.case, "secondary", &w.doctors[0], None)
        .assert_problem(409, "primary_physician_conflict");
}

#[test]
fn the_database_refuses_what_the_rules_forbid_even_around_the_api() {
    let app = spawn_app();
    let w = app.world();
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let insert = |who: &str, role: &str| {
        app.db.raw(&format!(
            "INSERT INTO care_team_members (id, case_id, practitioner_id, role, starts_at, created_at) \
             VALUES ('{}', '{}', '{who}', '{role}', '{now}', '{now}')",
            uuid::Uuid::now_v7(),
            w.case
        ))
    };
    let err = insert(&w.nurse, "primary_physician").unwrap_err();
    assert!(err.contains("rule: physician slots take active physicians only"), "{err}");
    insert(&w.doctors[0], "primary_physician").unwrap();
    assert!(insert(&w.doctors[1], "primary_physician").is_err(), "a second open primary");
    let err = insert(&w.doctors[0], "secondary_physician").unwrap_err();
    assert!(err.contains("different people"), "{err}");
    insert(&w.nurse, "visiting_nurse").unwrap();
}

#[test]
fn team_changes_cannot_be_backdated() {
    let app = spawn_app();
    let w = app.world();
    let member = app.post(
        &format!("/api/v1/cases/{}/care-team", w.case),
        &w.coordinator,
        &json!({"practitioner_id": w.nurse, "role": "visiting_nurse"}),
    );
    let past = (Utc::now() - Duration::hours(3)).to_rfc3339();
    let r = app.post(
        &format!("/api/v1/cases/{}/care-team/{}/end", w.case, member.id()),
        &w.coordinator,
        &json!({"ends_at": past}),
    );
    assert_eq!(r.field_errors(), [("ends_at".to_owned(), "in_the_past".to_owned())]);
    app.handover(&w.coordinator, &w.case, "secondary", &w.doctors[1], None).assert(200);
    let path = format!("/api/v1/cases/{}/physicians/secondary?effective_at={}", w.case, url(&past));
    let r = app.request("DELETE", &path, Some(&w.coordinator), &[], None);
    r.assert_problem(400, "validation_failed");
}

fn url(s: &str) -> String {
    crate::organizations::url_encode(s)
}

#[test]
fn a_primary_names_a_secondary_only_for_their_own_time() {
    let app = spawn_app();
    let w = app.world();
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[1], Some(&in_hours(24))).assert(200);
    let leaving = app.as_practitioner(&w.doctors[0], &w.clinic, &["physician"]);
    app.handover(&leaving, &w.case, "secondary", &w.doctors[2], Some(&in_hours(30))).assert_problem(403, "forbidden");
    app.handover(&leaving, &w.case, "secondary", &w.doctors[2], Some(&in_hours(2))).assert(200);
}

#[test]
fn closing_a_case_ends_its_team() {
    let app = spawn_app();
    let w = app.world();
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    app.post(
        &format!("/api/v1/cases/{}/care-team", w.case),
        &w.coordinator,
        &json!({"practitioner_id": w.nurse, "role": "visiting_nurse"}),
    )
    .assert(201);
    app.post(&format!("/api/v1/cases/{}/activate", w.case), &w.coordinator, &json!({})).assert(200);
    let nurse = app.as_practitioner(&w.nurse, &w.clinic, &["nurse"]);
    app.get(&format!("/api/v1/cases/{}", w.case), &nurse).assert(200);
    app.post(&format!("/api/v1/cases/{}/close", w.case), &w.coordinator, &json!({"reason": "recovered"})).assert(200);
    app.get(&format!("/api/v1/cases/{}", w.case), &nurse).assert_problem(404, "not_found");
    let history = app.get(&format!("/api/v1/cases/{}/care-team?history=true", w.case), &w.coordinator);
    assert!(history.body["items"].as_array().unwrap().iter().all(|m| m["ends_at"].is_string()), "{}", history.text);
    assert_eq!(app.get(&format!("/api/v1/cases/{}/care-team", w.case), &w.coordinator).body["items"], json!([]));
}

#[test]
fn a_membership_can_be_read_where_its_location_points() {
    let app = spawn_app();
    let w = app.world();
    let r = app.post(
        &format!("/api/v1/cases/{}/care-team", w.case),
        &w.coordinator,
        &json!({"practitioner_id": w.nurse, "role": "visiting_nurse"}),
    );
    let location = r.header("location").unwrap().to_owned();
    let got = app.get(&location, &w.coordinator);
    got.assert(200);
    assert_eq!(got.body["practitioner"]["name"], "高橋 看子");
    app.get(&location, &app.coordinator_of(&app.clinic("別"))).assert_problem(404, "not_found");
    app.get(&format!("/api/v1/cases/{}/care-team/{}", w.case, uuid::Uuid::now_v7()), &w.coordinator)
        .assert_problem(404, "not_found");
}
