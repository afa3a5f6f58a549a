//! "Who covers now" and the coverage notice, at instants inside and at the edges of absences,
//! shifts and a handover (half-open periods).

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, World};

/// The day all scenarios happen on: two days ahead, so that its Japan day (which starts at 15:00
/// UTC the day before) lies wholly after the assignments made "now", whatever the time of day.
fn scenario_day() -> chrono::NaiveDate {
    Utc::now().date_naive() + Duration::days(2)
}

/// The scenario day's 00:00 UTC plus `h` hours (minutes with a fraction).
fn tomorrow(h: f64) -> String {
    let base = scenario_day().and_hms_opt(0, 0, 0).unwrap().and_utc();
    (base + Duration::minutes((h * 60.0) as i64)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn cover(app: &TestApp, w: &World, at: &str) -> Value {
    let r = app.get(&format!("/api/v1/cases/{}/cover?at={at}", w.case), &w.coordinator);
    r.assert(200);
    r.body
}

/// `who` is away from `from` to `to` hours of the scenario day (recorded by their clinic).
fn away(app: &TestApp, w: &World, who: &str, from: f64, to: f64) {
    app.post(
        &format!("/api/v1/practitioners/{who}/absences"),
        &app.coordinator_of(&w.clinic),
        &json!({"starts_at": tomorrow(from), "ends_at": tomorrow(to), "reason": "学会"}),
    )
    .assert(201);
}

/// `who` is on call for the base from `from` to `to` hours of the scenario day.
fn on_call(app: &TestApp, w: &World, who: &str, from: f64, to: f64) {
    app.post(
        &format!("/api/v1/organizations/{}/on-call-shifts", w.base),
        &w.coordinator,
        &json!({"practitioner_id": who, "starts_at": tomorrow(from), "ends_at": tomorrow(to)}),
    )
    .assert(201);
}

/// The chain of a lookup at which the primary, the secondary and the on-call physician are all away.
fn all_away(primary: &str, secondary: &str, on_call: &str) -> Value {
    json!([
        {"practitioner_id": primary, "role": "primary", "skipped": "absent"},
        {"practitioner_id": secondary, "role": "secondary", "skipped": "absent"},
        {"practitioner_id": on_call, "role": "on_call", "skipped": "absent"},
    ])
}

/// Primary doctors[0], secondary doctors[1] from now; tomorrow the primary is away 00:00–12:00,
/// the secondary 06:00–09:00, and doctors[2] is on call for the base 06:00–08:00.
fn scenario(app: &TestApp) -> World {
    let w = app.world();
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    app.handover(&w.coordinator, &w.case, "secondary", &w.doctors[1], None).assert(200);
    away(app, &w, &w.doctors[0], 0.0, 12.0);
    away(app, &w, &w.doctors[1], 6.0, 9.0);
    on_call(app, &w, &w.doctors[2], 6.0, 8.0);
    w
}

#[test]
fn cover_walks_primary_secondary_on_call_and_names_each_skip() {
    let app = spawn_app();
    let w = scenario(&app);
    let c = cover(&app, &w, &tomorrow(-0.5));
    assert_eq!((c["resolved"].as_bool(), c["via"].as_str()), (Some(true), Some("primary")));
    assert_eq!(c["practitioner"]["id"], w.doctors[0]);
    assert_eq!(c["practitioner"]["organization_name"], "さくら在宅クリニック");
    assert_eq!(c["chain"].as_array().unwrap().len(), 1);

    // The absence starts at 00:00 exactly: the secondary covers from that instant.
    let c = cover(&app, &w, &tomorrow(0.0));
    assert_eq!(c["via"], "secondary");
    assert_eq!(c["chain"][0], json!({"practitioner_id": w.doctors[0], "role": "primary", "skipped": "absent"}));

    let c = cover(&app, &w, &tomorrow(6.0));
    assert_eq!(c["via"], "on_call");
    assert_eq!(c["practitioner"]["id"], w.doctors[2]);
    let skipped: Vec<&str> =
        c["chain"].as_array().unwrap().iter().map(|s| s["skipped"].as_str().unwrap_or("-")).collect();
    assert_eq!(skipped, ["absent", "absent", "-"]);

    // The shift ends at 08:00 exactly: nobody covers, and the answer says why.
    let c = cover(&app, &w, &tomorrow(8.0));
    assert_eq!(c["resolved"], false);
    assert_eq!(c["practitioner"], json!(null));
    assert_eq!(c["chain"][2], json!({"practitioner_id": null, "role": "on_call", "skipped": "not_on_duty"}));
    assert_eq!(cover(&app, &w, &tomorrow(7.99))["via"], "on_call");

    assert_eq!(cover(&app, &w, &tomorrow(9.0))["via"], "secondary");
    assert_eq!(cover(&app, &w, &tomorrow(11.99))["via"], "secondary");
    assert_eq!(cover(&app, &w, &tomorrow(12.0))["via"], "primary");
}

#[test]
fn an_absent_on_call_physician_is_skipped_even_when_also_on_the_team() {
    let app = spawn_app();
    let w = scenario(&app);
    // doctors[2] (only on the roster) is away for part of their shift.
    away(&app, &w, &w.doctors[2], 7.0, 7.5);
    let c = cover(&app, &w, &tomorrow(7.2));
    assert_eq!(c["resolved"], false);
    assert_eq!(c["chain"][2], json!({"practitioner_id": w.doctors[2], "role": "on_call", "skipped": "absent"}));
    assert_eq!(cover(&app, &w, &tomorrow(7.5))["via"], "on_call");

    // The secondary (away 06:00–09:00) is also on call 08:00–09:00: away in both places, and
    // named once in each step.
    on_call(&app, &w, &w.doctors[1], 8.0, 9.0);
    let c = cover(&app, &w, &tomorrow(8.5));
    assert_eq!(c["resolved"], false);
    assert_eq!(c["chain"], all_away(&w.doctors[0], &w.doctors[1], &w.doctors[1]));
    let c = cover(&app, &w, &tomorrow(9.0));
    assert_eq!((c["via"].as_str(), c["practitioner"]["id"].as_str()), (Some("secondary"), Some(w.doctors[1].as_str())));
}

#[test]
fn cover_accepts_any_offset_and_switches_exactly_at_a_handover() {
    let app = spawn_app();
    let w = app.world();
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    let at = tomorrow(3.0);
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[1], Some(&at)).assert(200);
    assert_eq!(cover(&app, &w, &tomorrow(2.99))["practitioner"]["id"], w.doctors[0]);
    assert_eq!(cover(&app, &w, &at)["practitioner"]["id"], w.doctors[1]);
    // The same instant written in Japan time.
    let jst =
        DateTime::parse_from_rfc3339(&at).unwrap().with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap());
    let c = cover(&app, &w, &jst.to_rfc3339().replace('+', "%2B"));
    assert_eq!(c["practitioner"]["id"], w.doctors[1]);
    assert!(c["at"].as_str().unwrap().ends_with('Z'), "answers are in UTC");
}

#[test]
fn cover_without_any_physician_is_unresolved_and_refusals_hold() {
    let app = spawn_app();
    let w = app.world();
    let c = cover(&app, &w, &tomorrow(1.0));
    assert_eq!(c["resolved"], false);
    let skipped: Vec<&str> = c["chain"].as_array().unwrap().iter().map(|s| s["skipped"].as_str().unwrap()).collect();
    assert_eq!(skipped, ["none_assigned", "none_assigned", "not_on_duty"]);
    app.get(&format!("/api/v1/cases/{}/cover?at=noon", w.case), &w.coordinator)
        .assert_problem(400, "validation_failed");
    let stranger = app.coordinator_of(&app.clinic("別の拠点"));
    app.get(&format!("/api/v1/cases/{}/cover", w.case), &stranger).assert_problem(404, "not_found");
    app.request("GET", &format!("/api/v1/cases/{}/cover", w.case), None, &[], None)
        .assert_problem(401, "missing_token");
}

#[test]
fn a_deactivated_primary_is_skipped_as_inactive() {
    let app = spawn_app();
    let w = app.world();
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    app.handover(&w.coordinator, &w.case, "secondary", &w.doctors[1], None).assert(200);
    app.patch(&format!("/api/v1/practitioners/{}", w.doctors[0]), &app.admin(), "\"1\"", &json!({"active": false}))
        .assert(200);
    let c = cover(&app, &w, &tomorrow(1.0));
    assert_eq!(c["via"], "secondary");
    assert_eq!(c["chain"][0]["skipped"], "inactive");
}

#[test]
fn the_coverage_notice_lists_each_japan_day_with_who_to_call() {
    let app = spawn_app();
    let w = scenario(&app);
    let day = scenario_day();
    let path = format!("/api/v1/cases/{}/coverage-notice?from={day}&to={}", w.case, day.succ_opt().unwrap());
    let r = app.get(&path, &w.coordinator);
    r.assert(200);
    assert_eq!(r.body["patient_name"], "田中 花子");
    assert_eq!(r.body["primary"]["id"], w.doctors[0]);
    let days = r.body["days"].as_array().unwrap();
    assert_eq!(days.len(), 2);
    // The Japan day `day` runs from the day before 15:00 UTC to `day` 15:00 UTC.
    let first: Vec<(&str, &str)> = days[0]["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["from"].as_str().unwrap(), p["via"].as_str().unwrap_or("nobody")))
        .collect();
    let start = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap()) - Duration::hours(9);
    assert_eq!(first[0], (start.to_rfc3339_opts(SecondsFormat::Secs, true).as_str(), "primary"));
    let vias: Vec<&str> = first.iter().map(|(_, v)| *v).collect();
    assert_eq!(vias, ["primary", "secondary", "on_call", "nobody", "secondary", "primary"]);
    assert!(days[0]["weekday"].is_string());
    let phone = &days[0]["pieces"][1]["practitioner"]["name"];
    assert_eq!(phone, "佐藤 次郎");

    let html = app.request("GET", &path, Some(&w.coordinator), &[("Accept", "text/html")], None);
    html.assert(200);
    assert!(html.header("content-type").unwrap().starts_with("text/html"));
    for text in ["在宅療養 連絡先のお知らせ", "田中 花子 様", "山田 太郎", "副主治医", "当番医"]
    {
        assert!(html.text.contains(text), "missing {text}");
    }
    assert!(!html.text.contains("<script"), "the printable page runs nothing");
}

/// Physicians away more than once in the window, and one on the team and the roster at once (the
/// facts are read one row per assignment or shift and absence): every absence counts, in both
/// places, and each step is named once.
#[test]
fn cover_and_the_notice_read_every_absence_of_a_physician_once() {
    let app = spawn_app();
    let w = scenario(&app);
    // The primary (away 00:00–12:00) is away again 13:00–14:00 and 13:30–13:45, and on call
    // 13:30–14:30; the secondary (away 06:00–09:00) is away again 13:30–13:45.
    away(&app, &w, &w.doctors[0], 13.0, 14.0);
    away(&app, &w, &w.doctors[0], 13.5, 13.75);
    away(&app, &w, &w.doctors[1], 13.5, 13.75);
    on_call(&app, &w, &w.doctors[0], 13.5, 14.5);
    // At 13:37 the on-call physician is the primary, away twice over: every step is skipped, and
    // the on-call step is named once.
    let c = cover(&app, &w, &tomorrow(13.625));
    assert_eq!(c["resolved"], false);
    assert_eq!(c["chain"], all_away(&w.doctors[0], &w.doctors[1], &w.doctors[0]));
    let day = scenario_day();
    let r = app.get(&format!("/api/v1/cases/{}/coverage-notice?from={day}&to={day}", w.case), &w.coordinator);
    r.assert(200);
    let pieces: Vec<(String, String)> = r.body["days"][0]["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["from"].as_str().unwrap().to_owned(), p["via"].as_str().unwrap_or("nobody").to_owned()))
        .collect();
    let vias: Vec<&str> = pieces.iter().map(|(_, v)| v.as_str()).collect();
    let expected = [
        "primary",
        "secondary",
        "on_call",
        "nobody",
        "secondary",
        "primary",
        "secondary",
        "nobody",
        "secondary",
        "primary",
    ];
    assert_eq!(vias, expected);
    let from_of = |i: usize| DateTime::parse_from_rfc3339(&pieces[i].0).unwrap().to_utc();
    let at = |h: f64| DateTime::parse_from_rfc3339(&tomorrow(h)).unwrap().to_utc();
    let cuts: Vec<_> = (6..10).map(from_of).collect();
    assert_eq!(cuts, [at(13.0), at(13.5), at(13.75), at(14.0)]);
}

#[test]
fn the_coverage_notice_refuses_bad_windows() {
    let app = spawn_app();
    let w = app.world();
    let base = format!("/api/v1/cases/{}/coverage-notice", w.case);
    app.get(&format!("{base}?from=2026-04-10&to=2026-04-01"), &w.coordinator).assert_problem(400, "validation_failed");
    app.get(&format!("{base}?from=2026-01-01&to=2026-06-01"), &w.coordinator).assert_problem(400, "validation_failed");
    app.get(&format!("{base}?from=April"), &w.coordinator).assert_problem(400, "validation_failed");
    let r = app.get(&base, &w.coordinator);
    r.assert(200);
    assert_eq!(r.body["days"].as_array().unwrap().len(), 14);
    let stranger = app.coordinator_of(&app.clinic("別の拠点"));
    app.get(&base, &stranger).assert_problem(404, "not_found");
}
