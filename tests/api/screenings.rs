//! Discharge screening: templates, intake, never twice, deadlines, the workflow, visibility.

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::helpers::{race, spawn_app, TestApp, World};

const NATIONAL: [&str; 17] = [
    "malignancy_dementia_or_aspiration",
    "emergency_admission",
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
];

struct Region {
    w: World,
    hospital: String,
    /// A token of the hospital's discharge staff.
    staff: String,
}

fn hospital(app: &TestApp, name: &str) -> String {
    app.create_org(json!({"kind": "hospital", "name": name, "municipality_code": "131016"}))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn region(app: &TestApp) -> Region {
    let w = app.world();
    let hospital = hospital(app, "千代田中央病院");
    let staff = app.token_for(&hospital, &["hospital_discharge"]);
    Region { w, hospital, staff }
}

fn iso(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// National answers with the given factors present (every other item `false`; the emergency
/// item follows `emergency_admission`).
fn answers(present: &[&str]) -> Value {
    let mut a = serde_json::Map::new();
    for code in NATIONAL.iter().filter(|c| **c != "emergency_admission") {
        a.insert((*code).to_owned(), json!(present.contains(code)));
    }
    Value::Object(a)
}

fn sheet(r: &Region, encounter: &str, present: &[&str]) -> Value {
    json!({
        "template": {"code": "national_discharge_difficulty"},
        "base_organization_id": r.w.base,
        "encounter_ref": encounter,
        "patient": {"name": "森 太郎", "kana": "モリ タロウ", "birth_date": "1940-02-03", "sex": "male",
                    "municipality_code": "131016", "address": "千代田区一番町1-1"},
        "admitted_at": iso(Utc::now() - Duration::hours(2)),
        "emergency_admission": false,
        "answers": answers(present),
    })
}

fn send(app: &TestApp, r: &Region, body: &Value) -> crate::helpers::Resp {
    app.post("/api/v1/screenings", &r.staff, body)
}

#[test]
fn the_national_template_is_built_in_with_every_factor() {
    let app = spawn_app();
    let token = app.token_for(&app.admin_org, &["nurse"]);
    let r = app.get("/api/v1/screening-templates?code=national_discharge_difficulty", &token);
    r.assert(200);
    let t = &r.body["items"][0];
    assert_eq!((t["scoring"].as_str(), t["status"].as_str()), (Some("any_factor"), Some("published")));
    assert_eq!(t["owner_organization_id"], Value::Null);
    let codes: Vec<&str> = t["items"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap()).collect();
    assert_eq!(codes, NATIONAL);
    assert!(t["items"].as_array().unwrap().iter().all(|i| i["label_ja"].is_string() && i["type"] == "boolean"));
    let id = t["id"].as_str().unwrap();
    app.request("GET", "/api/v1/screening-templates", None, &[], None).assert_problem(401, "missing_token");
    // Nobody changes it: not through the API, not even an admin.
    let admin = app.admin();
    app.post(&format!("/api/v1/screening-templates/{id}/publish"), &admin, &json!({})).assert(403);
    app.patch(&format!("/api/v1/screening-templates/{id}"), &admin, "\"1\"", &json!({"title_en": "x"})).assert(403);
    let changed = app.db.raw(&format!("UPDATE screening_templates SET title_en = 'x' WHERE id = '{id}'"));
    assert!(changed.is_err(), "the database refuses to change a published template");
}

#[test]
fn any_factor_scoring_is_positive_with_one_factor() {
    let app = spawn_app();
    let r = region(&app);
    let negative = send(&app, &r, &sheet(&r, "ADM-1", &[]));
    negative.assert(201);
    assert_eq!((negative.body["result"].as_str(), negative.body["score"].as_i64()), (Some("negative"), Some(0)));
    assert_eq!(negative.body["answers"]["emergency_admission"], false, "the emergency item follows the flag");
    let mut body = sheet(&r, "ADM-2", &["no_kin"]);
    body["emergency_admission"] = json!(true);
    let positive = send(&app, &r, &body);
    positive.assert(201);
    assert_eq!(positive.body["result"], "positive");
    assert_eq!(positive.body["factors"], json!(["emergency_admission", "no_kin"]));
    assert_eq!(positive.body["score"], 2);
    assert_eq!(positive.body["status"], "submitted");
    assert_eq!(positive.body["hospital_id"], r.hospital.as_str());
    assert_eq!(positive.body["template"]["code"], "national_discharge_difficulty");
    let location = positive.header("location").unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/screenings/{}", positive.id()));
}

fn local_template(app: &TestApp, token: &str) -> crate::helpers::Resp {
    app.post(
        "/api/v1/screening-templates",
        token,
        &json!({
            "code": "chiyoda_local", "title_ja": "千代田版", "title_en": "Chiyoda local", "scoring": "weighted_sum",
            "threshold": 5,
            "items": [
                {"code": "lives_alone", "label_ja": "独居", "label_en": "Lives alone", "type": "boolean", "weight": 3},
                {"code": "dementia", "label_ja": "認知症", "label_en": "Dementia", "type": "boolean", "weight": 2},
                {"code": "adl", "label_ja": "ADL", "label_en": "ADL", "type": "choice", "options": [
                    {"code": "independent", "label_ja": "自立", "label_en": "Independent"},
                    {"code": "partial", "label_ja": "一部介助", "label_en": "Partial help", "weight": 1},
                    {"code": "full", "label_ja": "全介助", "label_en": "Full help", "weight": 4}
                ]},
                {"code": "memo_needed", "label_ja": "備考", "label_en": "Memo", "type": "boolean", "weight": 0, "required": false}
            ]
        }),
    )
}

#[test]
fn local_templates_are_drafted_published_then_immutable_and_versioned() {
    let app = spawn_app();
    let r = region(&app);
    let nurse = app.token_for(&r.hospital, &["nurse"]);
    local_template(&app, &nurse).assert_problem(403, "forbidden");
    let bad = app.post(
        "/api/v1/screening-templates",
        &r.staff,
        &json!({"code": "x y", "title_ja": "t", "title_en": "t", "scoring": "weighted_sum",
                "items": [{"code": "a", "label_ja": "a", "label_en": "a", "type": "number"}]}),
    );
    bad.assert_problem(400, "validation_failed");
    let fields: Vec<String> = bad.field_errors().into_iter().map(|(f, _)| f).collect();
    assert!(fields.contains(&"code".to_owned()) && fields.contains(&"items[0].type".to_owned()), "{fields:?}");
    let draft = local_template(&app, &r.staff);
    draft.assert(201);
    assert_eq!((draft.body["status"].as_str(), draft.body["template_version"].as_i64()), (Some("draft"), Some(1)));
    let id = draft.id();
    let path = format!("/api/v1/screening-templates/{id}");
    // Another organization neither sees nor uses the draft.
    let other = app.token_for(&r.w.base, &["admin"]);
    app.get(&path, &other).assert_problem(404, "not_found");
    let mut body = sheet(&r, "ADM-L1", &[]);
    body["template"] = json!({"code": "chiyoda_local"});
    body["answers"] = json!({"lives_alone": true, "dementia": false, "adl": "partial"});
    send(&app, &r, &body).assert_problem(400, "validation_failed");
    app.patch(&path, &r.staff, "\"0\"", &json!({"threshold": 6})).assert_problem(412, "version_mismatch");
    app.request("PATCH", &path, Some(&r.staff), &[], Some("{}")).assert_problem(428, "precondition_required");
    app.patch(&path, &r.staff, "\"1\"", &json!({"threshold": 99})).assert_problem(400, "validation_failed");
    app.patch(&path, &r.staff, "\"1\"", &json!({"title_en": "Chiyoda"})).assert(200);
    let published = app.post(&format!("{path}/publish"), &r.staff, &json!({}));
    published.assert(200);
    assert_eq!(published.body["status"], "published");
    app.post(&format!("{path}/publish"), &r.staff, &json!({})).assert_problem(409, "template_published");
    app.patch(&path, &r.staff, "\"3\"", &json!({"title_en": "x"})).assert_problem(409, "template_published");
    // Weighted sum: 3 + 1 = 4 is below the threshold of 5; 3 + 2 = 5 reaches it.
    let below = send(&app, &r, &body);
    below.assert(201);
    assert_eq!((below.body["score"].as_i64(), below.body["result"].as_str()), (Some(4), Some("negative")));
    assert_eq!(below.body["factors"], json!(["lives_alone", "adl"]));
    let mut at = body.clone();
    at["encounter_ref"] = json!("ADM-L2");
    at["answers"] = json!({"lives_alone": true, "dementia": true, "adl": "independent"});
    let at = send(&app, &r, &at);
    assert_eq!((at.body["score"].as_i64(), at.body["result"].as_str()), (Some(5), Some("positive")));
    // A change is a new version; sheets keep the version they followed.
    let v2 = local_template(&app, &r.staff);
    v2.assert(201);
    assert_eq!(v2.body["template_version"], 2);
    assert_eq!(below.body["template"]["template_version"], 1);
    // A code alone names the latest published version; a version names that one.
    app.post(&format!("/api/v1/screening-templates/{}/publish", v2.id()), &r.staff, &json!({})).assert(200);
    let by = |encounter: &str, template: Value| {
        let mut b = body.clone();
        b["encounter_ref"] = json!(encounter);
        b["template"] = template;
        send(&app, &r, &b)
    };
    let latest = by("ADM-L3", json!({"code": "chiyoda_local"}));
    latest.assert(201);
    assert_eq!(latest.body["template"]["template_version"], 2);
    let first = by("ADM-L4", json!({"code": "chiyoda_local", "version": 1}));
    first.assert(201);
    assert_eq!(first.body["template"]["template_version"], 1);
    by("ADM-L5", json!({"code": "chiyoda_local", "version": 3})).assert_problem(400, "validation_failed");
}

#[test]
fn answers_are_validated_field_by_field_and_nothing_is_stored() {
    let app = spawn_app();
    let r = region(&app);
    let mut body = sheet(&r, "ADM-V", &[]);
    body["answers"]["poverty"] = json!("yes");
    body["answers"]["astrology"] = json!(true);
    body["answers"].as_object_mut().unwrap().remove("no_kin");
    let r1 = send(&app, &r, &body);
    r1.assert_problem(400, "validation_failed");
    let mut errors = r1.field_errors();
    errors.sort();
    assert_eq!(
        errors,
        [
            ("answers.astrology".to_owned(), "unknown_item".to_owned()),
            ("answers.no_kin".to_owned(), "required".to_owned()),
            ("answers.poverty".to_owned(), "invalid_type".to_owned()),
        ]
    );
    let mut described = sheet(&r, "ADM-V", &[]);
    described["patient"]["kana"] = json!("mori");
    described["patient"].as_object_mut().unwrap().remove("sex");
    let mut errors = send(&app, &r, &described).field_errors();
    errors.sort();
    assert_eq!(
        errors,
        [("patient.kana".to_owned(), "invalid_format".to_owned()), ("patient.sex".to_owned(), "required".to_owned())]
    );
    let mut both = sheet(&r, "ADM-V", &[]);
    both["patient_id"] = json!(r.w.patient);
    send(&app, &r, &both).assert_problem(400, "validation_failed");
    let mut inconsistent = sheet(&r, "ADM-V", &[]);
    inconsistent["answers"]["emergency_admission"] = json!(true);
    let e = send(&app, &r, &inconsistent);
    assert_eq!(e.field_errors(), [("answers.emergency_admission".to_owned(), "inconsistent".to_owned())]);
    let mut future = sheet(&r, "ADM-V", &[]);
    future["admitted_at"] = json!(iso(Utc::now() + Duration::days(2)));
    send(&app, &r, &future).assert_problem(400, "validation_failed");
    let mut unknown = sheet(&r, "ADM-V", &[]);
    unknown["template"] = json!({"code": "no_such_template"});
    send(&app, &r, &unknown).assert_problem(400, "validation_failed");
    let list = app.get("/api/v1/screenings", &r.staff);
    assert_eq!(list.body["items"], json!([]), "refused posts store nothing");
    // A draft may be incomplete; submitting it may not.
    let mut draft = sheet(&r, "ADM-V", &[]);
    draft["status"] = json!("draft");
    draft["answers"] = json!({"poverty": true});
    let d = send(&app, &r, &draft);
    d.assert(201);
    assert_eq!((d.body["status"].as_str(), d.body["result"].clone()), (Some("draft"), Value::Null));
    let s = app.post(&format!("/api/v1/screenings/{}/submit", d.id()), &r.staff, &json!({}));
    s.assert_problem(400, "validation_failed");
    assert_eq!(s.field_errors().len(), 15);
}

#[test]
fn only_a_hospitals_discharge_staff_send_sheets() {
    let app = spawn_app();
    let r = region(&app);
    let body = sheet(&r, "ADM-R", &[]);
    app.request("POST", "/api/v1/screenings", None, &[], Some(&body.to_string())).assert(401);
    let nurse = app.token_for(&r.hospital, &["nurse"]);
    app.post("/api/v1/screenings", &nurse, &body).assert_problem(403, "forbidden");
    let clinic_staff = app.token_for(&r.w.clinic, &["hospital_discharge"]);
    app.post("/api/v1/screenings", &clinic_staff, &body).assert_problem(403, "forbidden");
}

#[test]
fn ten_concurrent_identical_posts_make_one_sheet() {
    let app = std::sync::Arc::new(spawn_app());
    let r = std::sync::Arc::new(region(&app));
    let body = sheet(&r, "ADM-RACE", &["poverty"]);
    let (a, rr) = (app.clone(), r.clone());
    let results = race(10, move |_| {
        let resp = send(&a, &rr, &body);
        (resp.status, resp.body["id"].as_str().unwrap_or_default().to_owned())
    });
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "{results:?}");
    assert!(results.iter().all(|(s, _)| *s == 201 || *s == 200), "{results:?}");
    let first = &results[0].1;
    assert!(results.iter().all(|(_, id)| id == first), "every answer names the one sheet");
    let list = app.get("/api/v1/screenings?encounter_ref=ADM-RACE", &r.staff);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[test]
fn a_repeated_encounter_answers_the_sheet_or_conflicts() {
    let app = spawn_app();
    let r = region(&app);
    let body = sheet(&r, "ADM-9", &["poverty"]);
    let first = send(&app, &r, &body);
    first.assert(201);
    let again = send(&app, &r, &body);
    again.assert(200);
    assert_eq!(again.id(), first.id());
    let mut other = body.clone();
    other["answers"]["no_kin"] = json!(true);
    let conflict = send(&app, &r, &other);
    conflict.assert_problem(409, "duplicate_encounter");
    assert_eq!(conflict.body["existing_id"], first.id().as_str());
    // Another hospital's encounter numbers are its own.
    let other_hospital = hospital(&app, "神田病院");
    let staff = app.token_for(&other_hospital, &["hospital_discharge"]);
    app.post("/api/v1/screenings", &staff, &body).assert(201);
}

#[test]
fn an_idempotency_key_replays_and_refuses_another_body() {
    let app = spawn_app();
    let r = region(&app);
    let body = sheet(&r, "ADM-K", &[]).to_string();
    let key = [("Idempotency-Key", "sheet-ADM-K-1")];
    let first = app.request("POST", "/api/v1/screenings", Some(&r.staff), &key, Some(&body));
    first.assert(201);
    let replay = app.request("POST", "/api/v1/screenings", Some(&r.staff), &key, Some(&body));
    replay.assert(201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.id(), first.id());
    let other = sheet(&r, "ADM-K2", &[]).to_string();
    app.request("POST", "/api/v1/screenings", Some(&r.staff), &key, Some(&other))
        .assert_problem(422, "idempotency_key_reused");
}

fn deadline(sheet: &Value, kind: &str) -> Value {
    sheet["deadlines"].as_array().unwrap().iter().find(|d| d["kind"] == kind).unwrap().clone()
}

#[test]
fn deadlines_count_japan_days_and_show_due_met_or_overdue() {
    let app = spawn_app();
    let r = region(&app);
    // Admitted 2026-11-01 at 23:30 JST (14:30 UTC): the screening is due by the end of
    // 4 November JST, the interview and conference by the end of 8 November JST.
    let mut late = sheet(&r, "ADM-D1", &["poverty"]);
    late["admitted_at"] = json!("2026-11-01T23:30:00+09:00");
    late["status"] = json!("draft");
    let s = send(&app, &r, &late);
    s.assert(201);
    let screening = deadline(&s.body, "screening");
    assert_eq!(screening["due_at"], "2026-11-04T15:00:00Z");
    assert_eq!(screening["state"], "overdue");
    assert_eq!(deadline(&s.body, "conference")["due_at"], "2026-11-08T15:00:00Z");
    // Thirty minutes later it is the 2nd in Japan: every deadline moves a day.
    let mut next = sheet(&r, "ADM-D2", &["poverty"]);
    next["admitted_at"] = json!("2026-11-02T00:00:00+09:00");
    let n = send(&app, &r, &next);
    assert_eq!(deadline(&n.body, "screening")["due_at"], "2026-11-05T15:00:00Z");
    let met = deadline(&n.body, "screening");
    assert_eq!((met["state"].as_str(), met["late"].as_bool()), (Some("met"), Some(true)));
    // Admitted now: due.
    let fresh = send(&app, &r, &sheet(&r, "ADM-D3", &[]));
    assert_eq!(deadline(&fresh.body, "interview")["state"], "due");
    let in_time = deadline(&fresh.body, "screening");
    assert_eq!((in_time["state"].as_str(), in_time["late"].as_bool()), (Some("met"), Some(false)));
    // Recording the interview meets it, once.
    let path = format!("/api/v1/screenings/{}/milestones", fresh.id());
    let held = iso(Utc::now() - Duration::minutes(5));
    let m = app.post(&path, &r.staff, &json!({"kind": "interview", "held_at": held}));
    m.assert(200);
    assert_eq!(deadline(&m.body, "interview")["state"], "met");
    app.post(&path, &r.staff, &json!({"kind": "interview", "held_at": held})).assert_problem(409, "already_recorded");
    app.post(&path, &r.staff, &json!({"kind": "visit", "held_at": held})).assert_problem(400, "validation_failed");
    let before_admission = iso(Utc::now() - Duration::days(3));
    app.post(&path, &r.staff, &json!({"kind": "conference", "held_at": before_admission}))
        .assert_problem(400, "validation_failed");
    // The overdue filter finds the two old sheets, not the fresh one.
    let overdue = app.get("/api/v1/screenings?overdue=true", &r.staff);
    let mut found: Vec<&str> =
        overdue.body["items"].as_array().unwrap().iter().map(|s| s["encounter_ref"].as_str().unwrap()).collect();
    found.sort_unstable();
    assert_eq!(found, ["ADM-D1", "ADM-D2"]);
    let due = app.get("/api/v1/screenings?due_before=2026-11-05T00:00:00Z", &r.staff);
    assert_eq!(due.body["items"].as_array().unwrap().len(), 1, "only ADM-D1's screening is unmet before then");
    app.get("/api/v1/screenings?due_before=tomorrow", &r.staff).assert_problem(400, "validation_failed");
}

#[test]
fn drafts_are_patched_with_if_match_and_submitted() {
    let app = spawn_app();
    let r = region(&app);
    let mut body = sheet(&r, "ADM-P", &[]);
    body["status"] = json!("draft");
    body["answers"] = json!({});
    let d = send(&app, &r, &body);
    let path = format!("/api/v1/screenings/{}", d.id());
    // The base does not see drafts.
    app.get(&path, &r.w.coordinator).assert_problem(404, "not_found");
    app.request("PATCH", &path, Some(&r.staff), &[], Some("{}")).assert_problem(428, "precondition_required");
    app.patch(&path, &r.staff, "\"7\"", &json!({"notes": "x"})).assert_problem(412, "version_mismatch");
    app.patch(&path, &r.staff, "\"1\"", &json!({"answers": {"poverty": 3}})).assert_problem(400, "validation_failed");
    let patched =
        app.patch(&path, &r.staff, "\"1\"", &json!({"answers": answers(&["poverty"]), "emergency_admission": true}));
    patched.assert(200);
    assert_eq!(patched.body["result"], "positive");
    assert_eq!(patched.body["factors"], json!(["emergency_admission", "poverty"]));
    let coordinator_patch = app.patch(&path, &r.w.coordinator, "\"2\"", &json!({"notes": "x"}));
    coordinator_patch.assert_problem(404, "not_found");
    let submitted = app.post(&format!("{path}/submit"), &r.staff, &json!({}));
    submitted.assert(200);
    assert_eq!(submitted.body["status"], "submitted");
    app.post(&format!("{path}/submit"), &r.staff, &json!({})).assert_problem(409, "invalid_transition");
    app.patch(&path, &r.staff, "\"3\"", &json!({"notes": "x"})).assert_problem(409, "invalid_transition");
    assert_eq!(app.get(&path, &r.w.coordinator).body["status"], "submitted");
}

#[test]
fn a_revision_supersedes_a_submitted_sheet_and_keeps_it() {
    let app = spawn_app();
    let r = region(&app);
    let original = sheet(&r, "ADM-REV", &[]);
    let first = send(&app, &r, &original);
    let path = format!("/api/v1/screenings/{}", first.id());
    let mut body = sheet(&r, "ADM-REV", &["adl_decline"]);
    let obj = body.as_object_mut().unwrap();
    obj.remove("encounter_ref");
    obj.remove("template");
    let revised = app.post(&format!("{path}/revisions"), &r.staff, &body);
    revised.assert(201);
    assert_eq!((revised.body["revision"].as_i64(), revised.body["result"].as_str()), (Some(2), Some("positive")));
    assert_eq!(revised.body["supersedes_id"], first.id().as_str());
    assert_eq!(revised.body["submitted_at"], first.body["submitted_at"], "the screening was done at the first");
    let old = app.get(&path, &r.staff);
    assert_eq!(old.body["status"], "superseded");
    assert_eq!(old.body["superseded_by_id"], revised.id().as_str());
    app.post(&format!("{path}/revisions"), &r.staff, &body).assert_problem(409, "invalid_transition");
    app.post(&format!("{path}/accept"), &r.w.coordinator, &json!({})).assert_problem(409, "invalid_transition");
    // The original post, retried, answers the revision it became part of; other content conflicts.
    let retry = send(&app, &r, &original);
    retry.assert(200);
    assert_eq!(retry.id(), first.id());
    let list = app.get("/api/v1/screenings?encounter_ref=ADM-REV", &r.staff);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
}

/// A reader who sees sheets two ways (reviewer of one base, on the team of cases linked to
/// sheets) pages through them one at a time: in id order, each once, none it may not see.
#[test]
fn a_reader_seeing_sheets_two_ways_pages_through_each_once() {
    let app = spawn_app();
    let r = region(&app);
    let (other_base, other) = app.other_base("港区医師会", "131032");
    let to_other = |encounter: &str| {
        let mut body = sheet(&r, encounter, &["no_kin"]);
        body["base_organization_id"] = json!(other_base);
        send(&app, &r, &body).id()
    };
    let accept = |id: &str, token: &str| {
        let a = app.post(&format!("/api/v1/screenings/{id}/accept"), token, &json!({}));
        a.assert(200);
        app.join_as_nurse(token, a.body["case_id"].as_str().unwrap(), &r.w.nurse);
    };
    let here = send(&app, &r, &sheet(&r, "ADM-1", &["no_kin"])).id();
    let linked_elsewhere = to_other("ADM-2");
    accept(&linked_elsewhere, &other);
    let both_ways = send(&app, &r, &sheet(&r, "ADM-3", &["no_kin"])).id();
    accept(&both_ways, &r.w.coordinator);
    to_other("ADM-4");
    let reader = app.as_practitioner(&r.w.nurse, &r.w.base, &["nurse", "coordinator"]);
    let seen = app.page_through("/api/v1/screenings", &reader);
    let mut expected = vec![here, linked_elsewhere, both_ways];
    expected.sort();
    assert_eq!(seen, expected);
    // And in one page.
    let one_page: Vec<String> = app.get("/api/v1/screenings?limit=10", &reader).body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(one_page, expected);
}

#[test]
fn acceptance_opens_a_referred_case_with_a_new_patient_and_the_team_sees_it() {
    let app = spawn_app();
    let r = region(&app);
    let s = send(&app, &r, &sheet(&r, "ADM-A", &["no_kin"]));
    let path = format!("/api/v1/screenings/{}", s.id());
    let seen = app.get(&path, &r.w.coordinator);
    seen.assert(200);
    assert_eq!(seen.body["patient_candidates"], json!([]));
    app.post(&format!("{path}/accept"), &r.staff, &json!({})).assert_problem(403, "forbidden");
    let other_base =
        app.create_org(json!({"kind": "physicians_association", "name": "港区医師会", "municipality_code": "131032"}));
    let outsider = app.coordinator_of(other_base["id"].as_str().unwrap());
    app.post(&format!("{path}/accept"), &outsider, &json!({})).assert_problem(404, "not_found");
    let accepted = app.request("POST", &format!("{path}/accept"), Some(&r.w.coordinator), &[], None);
    accepted.assert(200);
    assert_eq!(accepted.body["status"], "accepted");
    let case_id = accepted.body["case_id"].as_str().unwrap().to_owned();
    let patient_id = accepted.body["patient_id"].as_str().unwrap().to_owned();
    let case = app.get(&format!("/api/v1/cases/{case_id}"), &r.w.coordinator);
    assert_eq!(
        (case.body["status"].as_str(), case.body["patient_id"].as_str()),
        (Some("referred"), Some(patient_id.as_str()))
    );
    let patient = app.get(&format!("/api/v1/patients/{patient_id}"), &r.w.coordinator);
    assert_eq!(patient.body["kana"], "モリ タロウ");
    app.post(&format!("{path}/accept"), &r.w.coordinator, &json!({})).assert_problem(409, "invalid_transition");
    app.post(&format!("{path}/decline"), &r.w.coordinator, &json!({"reason": "x"}))
        .assert_problem(409, "invalid_transition");
    app.post(&format!("{path}/withdraw"), &r.staff, &json!({})).assert_problem(409, "invalid_transition");
    // The case's team sees the sheet once linked; a nurse outside it does not.
    let nurse = app.as_practitioner(&r.w.nurse, &r.w.clinic, &["nurse"]);
    app.get(&path, &nurse).assert_problem(404, "not_found");
    let joined = app.post(
        &format!("/api/v1/cases/{case_id}/care-team"),
        &r.w.coordinator,
        &json!({"practitioner_id": r.w.nurse, "role": "visiting_nurse"}),
    );
    joined.assert(201);
    app.get(&path, &nurse).assert(200);
    let listed = app.get(&format!("/api/v1/screenings?case_id={case_id}"), &nurse);
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    // Every access is in the access log with the patient.
    let log =
        app.get(&format!("/api/v1/audit-events?patient_id={patient_id}"), &app.token_for(&app.admin_org, &["auditor"]));
    let actions: Vec<&str> =
        log.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["screening.accept", "patient.create", "case.create", "screening.read"] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
}

#[test]
fn a_likely_existing_patient_is_proposed_never_merged_silently() {
    let app = spawn_app();
    let r = region(&app);
    // The base already knows 森 太郎, born the same day (registered without a case).
    let known = app.post(
        "/api/v1/patients",
        &r.w.coordinator,
        &json!({"name": "森 太郎", "kana": "もり たろう", "birth_date": "1940-02-03", "sex": "male", "municipality_code": "131016"}),
    );
    known.assert(201);
    let known_id = known.id();
    let s = send(&app, &r, &sheet(&r, "ADM-M", &["no_kin"]));
    let path = format!("/api/v1/screenings/{}", s.id());
    let seen = app.get(&path, &r.w.coordinator);
    assert_eq!(seen.body["patient_candidates"][0]["id"], known_id.as_str());
    assert!(
        app.get(&path, &r.staff).body.get("patient_candidates").is_none(),
        "the hospital is not shown the base's records"
    );
    let refused = app.post(&format!("{path}/accept"), &r.w.coordinator, &json!({}));
    refused.assert_problem(409, "patient_match_required");
    assert_eq!(refused.body["candidates"], json!([known_id]));
    let other = app.register_patient(&r.w.coordinator, "森 太郎", "モリ タロウ");
    app.post(&format!("{path}/accept"), &r.w.coordinator, &json!({"patient_id": other}))
        .assert_problem(409, "patient_mismatch");
    let accepted = app.post(&format!("{path}/accept"), &r.w.coordinator, &json!({"patient_id": known_id}));
    accepted.assert(200);
    assert_eq!(accepted.body["patient_id"], known_id.as_str());
    // A second sheet for the same patient finds the open case and must be linked to it.
    let mut again = sheet(&r, "ADM-M2", &["no_kin"]);
    again.as_object_mut().unwrap().remove("patient");
    again["patient_id"] = json!(known_id);
    let s2 = send(&app, &r, &again);
    let p2 = format!("/api/v1/screenings/{}", s2.id());
    let exists = app.post(&format!("{p2}/accept"), &r.w.coordinator, &json!({}));
    exists.assert_problem(409, "open_case_exists");
    let case_id = accepted.body["case_id"].as_str().unwrap();
    assert_eq!(exists.body["existing_id"], case_id);
    app.post(&format!("{p2}/accept"), &r.w.coordinator, &json!({"case_id": r.w.case}))
        .assert_problem(409, "patient_mismatch");
    let linked = app.post(&format!("{p2}/accept"), &r.w.coordinator, &json!({"case_id": case_id}));
    linked.assert(200);
    assert_eq!(linked.body["case_id"], case_id);
}

#[test]
fn decline_withdraw_and_negative_sheets_follow_the_rules() {
    let app = spawn_app();
    let r = region(&app);
    let negative = send(&app, &r, &sheet(&r, "ADM-N", &[]));
    let np = format!("/api/v1/screenings/{}", negative.id());
    app.post(&format!("{np}/accept"), &r.w.coordinator, &json!({})).assert_problem(409, "screening_negative");
    app.post(&format!("{np}/decline"), &r.w.coordinator, &json!({})).assert_problem(400, "validation_failed");
    app.post(&format!("{np}/decline"), &r.staff, &json!({"reason": "x"})).assert_problem(403, "forbidden");
    let declined = app.post(&format!("{np}/decline"), &r.w.coordinator, &json!({"reason": "退院支援の必要なし"}));
    declined.assert(200);
    assert_eq!(
        (declined.body["status"].as_str(), declined.body["decline_reason"].as_str()),
        (Some("declined"), Some("退院支援の必要なし"))
    );
    assert!(declined.body["decided_by"].is_string());
    let positive = send(&app, &r, &sheet(&r, "ADM-W", &["poverty"]));
    let pp = format!("/api/v1/screenings/{}", positive.id());
    app.post(&format!("{pp}/withdraw"), &r.w.coordinator, &json!({})).assert_problem(403, "forbidden");
    let withdrawn = app.post(&format!("{pp}/withdraw"), &r.staff, &json!({}));
    withdrawn.assert(200);
    assert_eq!(withdrawn.body["status"], "withdrawn");
    app.post(&format!("{pp}/accept"), &r.w.coordinator, &json!({})).assert_problem(409, "invalid_transition");
    let list = app.get("/api/v1/screenings?status=declined", &r.w.coordinator);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    app.get("/api/v1/screenings?status=lost", &r.w.coordinator).assert_problem(400, "validation_failed");
}

#[test]
fn sheets_are_seen_by_their_hospital_their_base_and_nobody_else() {
    let app = spawn_app();
    let r = region(&app);
    let s = send(&app, &r, &sheet(&r, "ADM-S", &["poverty"]));
    let path = format!("/api/v1/screenings/{}", s.id());
    let other_hospital = hospital(&app, "神田病院");
    let other_staff = app.token_for(&other_hospital, &["hospital_discharge"]);
    app.get(&path, &other_staff).assert_problem(404, "not_found");
    app.post(&format!("{path}/withdraw"), &other_staff, &json!({})).assert_problem(404, "not_found");
    assert_eq!(app.get("/api/v1/screenings", &other_staff).body["items"], json!([]));
    let clinic_coordinator = app.coordinator_of(&r.w.clinic);
    app.get(&path, &clinic_coordinator).assert_problem(404, "not_found");
    let doctor = app.as_practitioner(&r.w.doctors[0], &r.w.clinic, &["physician"]);
    app.get(&path, &doctor).assert_problem(404, "not_found");
    let viewer = app.token_for(&r.w.base, &["municipal_viewer"]);
    app.get("/api/v1/screenings", &viewer).assert_problem(403, "forbidden");
    app.get(&path, &viewer).assert_problem(404, "not_found");
    app.get(&path, &r.staff).assert(200);
    let glass = app.request("GET", &path, Some(&doctor), &[("X-Break-Glass", "emergency")], None);
    glass.assert_problem(400, "break_glass_not_applicable");
    let base_list =
        app.get(&format!("/api/v1/screenings?hospital_id={}&result=positive", r.hospital), &r.w.coordinator);
    assert_eq!(base_list.body["items"].as_array().unwrap().len(), 1);
    app.get("/api/v1/screenings?limit=0", &r.staff).assert_problem(400, "validation_failed");
    app.get("/api/v1/screenings/not-a-uuid", &r.staff).assert(400);
}

#[test]
fn a_withdrawn_draft_stays_the_hospitals_and_a_declined_sheet_can_be_sent_again() {
    let app = spawn_app();
    let r = region(&app);
    let mut draft = sheet(&r, "ADM-X", &["poverty"]);
    draft["status"] = json!("draft");
    let d = send(&app, &r, &draft);
    let dp = format!("/api/v1/screenings/{}", d.id());
    app.post(&format!("{dp}/withdraw"), &r.staff, &json!({})).assert(200);
    app.post(&format!("{dp}/withdraw"), &r.staff, &json!({})).assert_problem(409, "invalid_transition");
    app.get(&dp, &r.w.coordinator).assert_problem(404, "not_found");
    assert_eq!(app.get("/api/v1/screenings", &r.w.coordinator).body["items"], json!([]));
    // A declined sheet is corrected by a revision, which the base reviews again.
    let s = send(&app, &r, &sheet(&r, "ADM-Y", &["poverty"]));
    let sp = format!("/api/v1/screenings/{}", s.id());
    app.post(&format!("{sp}/decline"), &r.w.coordinator, &json!({"reason": "住所が管轄外"})).assert(200);
    app.post(&format!("{sp}/decline"), &r.w.coordinator, &json!({"reason": "x"}))
        .assert_problem(409, "invalid_transition");
    let mut body = sheet(&r, "ADM-Y", &["poverty", "no_kin"]);
    let obj = body.as_object_mut().unwrap();
    obj.remove("encounter_ref");
    obj.remove("template");
    let revised = app.post(&format!("{sp}/revisions"), &r.staff, &body);
    revised.assert(201);
    assert_eq!((revised.body["status"].as_str(), revised.body["revision"].as_i64()), (Some("submitted"), Some(2)));
    app.post(&format!("/api/v1/screenings/{}/accept", revised.id()), &r.w.coordinator, &json!({})).assert(200);
}

#[test]
fn hospital_side_steps_are_refused_to_everyone_else() {
    let app = spawn_app();
    let r = region(&app);
    let mut draft = sheet(&r, "ADM-Z", &["poverty"]);
    draft["status"] = json!("draft");
    let d = send(&app, &r, &draft);
    let s = send(&app, &r, &sheet(&r, "ADM-Z2", &["poverty"]));
    let other = app.token_for(&hospital(&app, "神田病院"), &["hospital_discharge"]);
    let revision = {
        let mut b = sheet(&r, "x", &[]);
        b.as_object_mut().unwrap().remove("encounter_ref");
        b
    };
    let held = json!({"kind": "interview", "held_at": iso(Utc::now())});
    for (path, body) in [
        (format!("/api/v1/screenings/{}/submit", d.id()), json!({})),
        (format!("/api/v1/screenings/{}/revisions", s.id()), revision.clone()),
        (format!("/api/v1/screenings/{}/milestones", s.id()), held.clone()),
    ] {
        app.request("POST", &path, None, &[], Some(&body.to_string())).assert(401);
        app.post(&path, &other, &body).assert_problem(404, "not_found");
    }
    app.post(&format!("/api/v1/screenings/{}/revisions", s.id()), &r.w.coordinator, &revision)
        .assert_problem(403, "forbidden");
    app.post(&format!("/api/v1/screenings/{}/milestones", s.id()), &r.w.coordinator, &held)
        .assert_problem(403, "forbidden");
    app.post(&format!("/api/v1/screenings/{}/revisions", d.id()), &r.staff, &revision)
        .assert_problem(409, "invalid_transition");
    let mut bad = revision.clone();
    bad["answers"] = json!({"poverty": "maybe"});
    app.post(&format!("/api/v1/screenings/{}/revisions", s.id()), &r.staff, &bad)
        .assert_problem(400, "validation_failed");
    // A draft posted again as submitted is not silently answered with the draft.
    let mut again = draft.clone();
    again["status"] = json!("submitted");
    send(&app, &r, &again).assert_problem(409, "duplicate_encounter");
}

#[test]
fn accepting_into_a_case_checks_the_case() {
    let app = spawn_app();
    let r = region(&app);
    let s = send(&app, &r, &sheet(&r, "ADM-C", &["poverty"]));
    let path = format!("/api/v1/screenings/{}/accept", s.id());
    let other_base =
        app.create_org(json!({"kind": "physicians_association", "name": "港区医師会", "municipality_code": "131032"}));
    let other_coordinator = app.coordinator_of(other_base["id"].as_str().unwrap());
    let p = app.register_patient(&other_coordinator, "森 太郎", "モリ タロウ");
    let foreign_case = app.open_case(&other_coordinator, &p, other_base["id"].as_str().unwrap());
    app.post(&path, &r.w.coordinator, &json!({"case_id": foreign_case})).assert_problem(400, "validation_failed");
    let cancelled = app.post(&format!("/api/v1/cases/{}/cancel", r.w.case), &r.w.coordinator, &json!({}));
    cancelled.assert(200);
    app.post(&path, &r.w.coordinator, &json!({"case_id": r.w.case})).assert_problem(409, "case_not_open");
    app.post(&path, &r.w.coordinator, &json!({"case_id": "nope"})).assert_problem(400, "validation_failed");
    app.request("POST", &path, Some(&r.w.coordinator), &[], Some("{\"case\": 1}"))
        .assert_problem(400, "validation_failed");
}

#[test]
fn proposed_patients_are_in_the_access_log() {
    let app = spawn_app();
    let r = region(&app);
    let known = app.post(
        "/api/v1/patients",
        &r.w.coordinator,
        &json!({"name": "森 太郎", "kana": "モリ タロウ", "birth_date": "1940-02-03", "sex": "male", "municipality_code": "131016"}),
    );
    let s = send(&app, &r, &sheet(&r, "ADM-L", &["poverty"]));
    app.get(&format!("/api/v1/screenings/{}", s.id()), &r.w.coordinator).assert(200);
    let auditor = app.token_for(&app.admin_org, &["auditor"]);
    let log = app.get(&format!("/api/v1/audit-events?patient_id={}", known.id()), &auditor);
    let actions: Vec<&str> =
        log.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"screening.candidate"), "{actions:?}");
}
