//! Webhooks with a receiver started by the test: signatures verify, failures are retried with
//! backoff, a killed server's deliveries are completed after restart, redelivery by hand.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{spawn_with, start_server, test_config, TestApp, TestDb};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A receiver on 127.0.0.1 answering the status `answer(n)` to its n-th request (from 0), after
/// `delay`.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

fn receiver(delay: Duration, answer: impl Fn(usize) -> u16 + Send + Sync + 'static) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let (g, answer) = (got.clone(), Arc::new(answer));
    std::thread::spawn(move || {
        let mut n = 0;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap_or(0);
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.push((k.trim().to_owned(), v.trim().to_owned()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            std::thread::sleep(delay);
            let status = answer(n);
            n += 1;
            g.lock().unwrap().push(Received { headers, body: String::from_utf8_lossy(&body).into_owned() });
            let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    Receiver { url, got }
}

fn fast(c: &mut renkei::config::Config) {
    c.webhooks.allow_private = true;
    c.webhooks.poll_interval = Duration::from_millis(50);
    c.webhooks.backoff_base = Duration::from_millis(50);
    c.webhooks.lease = Duration::from_millis(800);
    c.webhooks.timeout = Duration::from_secs(2);
}

fn subscribe(app: &TestApp, org: &str, url: &str) -> Value {
    let r = app.post("/api/v1/webhooks", &app.token_for(org, &["admin"]), &json!({"url": url, "types": ["*"]}));
    r.assert(201);
    r.body
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn verify(secret: &str, signature: &str, body: &str) -> bool {
    let Some((t, v1)) = signature.split_once(",v1=") else { return false };
    let t = t.trim_start_matches("t=");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    mac.verify_slice(&hex::decode(v1).unwrap_or_default()).is_ok()
}

#[test]
fn deliveries_are_signed_and_subscriptions_checked() {
    let app = spawn_with(TestDb::create(), fast);
    let w = app.world();
    let rx = receiver(Duration::ZERO, |_| 200);
    let admin = app.token_for(&w.base, &["admin"]);
    let nurse = app.token_for(&w.base, &["nurse"]);
    app.post("/api/v1/webhooks", &nurse, &json!({"url": rx.url, "types": ["*"]})).assert_problem(403, "forbidden");
    app.post("/api/v1/webhooks", &admin, &json!({"url": "ftp://x/", "types": ["*"]}))
        .assert_problem(400, "validation_failed");
    app.post("/api/v1/webhooks", &admin, &json!({"url": rx.url, "types": ["case.exploded"]}))
        .assert_problem(400, "validation_failed");
    let hook = subscribe(&app, &w.base, &rx.url);
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let listed = app.get("/api/v1/webhooks", &admin);
    assert!(listed.body["items"][0].get("secret").is_none(), "the secret is shown once");
    let patient = app.register_patient(&w.coordinator, "通知 花子", "ツウチ ハナコ");
    let case = app.open_case(&w.coordinator, &patient, &w.base);
    wait_until("the delivery", Duration::from_secs(10), || !rx.got.lock().unwrap().is_empty());
    let got = rx.got.lock().unwrap()[0].clone();
    let event: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!((event["type"].as_str(), event["resource_id"].as_str()), (Some("case.created"), Some(case.as_str())));
    assert_eq!(got.header("renkei-event-type"), Some("case.created"));
    let signature = got.header("renkei-signature").unwrap();
    assert!(verify(&secret, signature, &got.body), "the signature verifies: {signature}");
    assert!(!verify(&secret, signature, &got.body.replace("case", "kase")), "and only for that body");
    // Another organization's webhooks are not there for you.
    let other = app.token_for(&w.clinic, &["admin"]);
    let id = hook["id"].as_str().unwrap();
    app.get(&format!("/api/v1/webhooks/{id}/deliveries"), &other).assert_problem(404, "not_found");
    // The receiver has the request before the dispatcher has its answer: wait for the status.
    let deliveries = || app.get(&format!("/api/v1/webhooks/{id}/deliveries"), &admin);
    wait_until("the delivered status", Duration::from_secs(10), || {
        deliveries().body["items"][0]["status"] == "delivered"
    });
    let deliveries = deliveries();
    // Redelivery by hand sends it again.
    let delivery = deliveries.body["items"][0]["id"].as_str().unwrap().to_owned();
    app.post(&format!("/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver"), &admin, &json!({})).assert(202);
    wait_until("the redelivery", Duration::from_secs(10), || rx.got.lock().unwrap().len() >= 2);
    app.request("DELETE", &format!("/api/v1/webhooks/{id}"), Some(&admin), &[], None).assert(204);
    app.post(&format!("/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver"), &admin, &json!({}))
        .assert_problem(409, "webhook_stopped");
}

#[test]
fn private_receivers_are_refused_unless_allowed() {
    let app = crate::helpers::spawn_app();
    let w = app.world();
    let admin = app.token_for(&w.base, &["admin"]);
    for url in ["http://127.0.0.1:9/hook", "http://10.0.0.8/hook", "http://169.254.169.254/latest/meta-data"] {
        let r = app.post("/api/v1/webhooks", &admin, &json!({"url": url, "types": ["*"]}));
        r.assert_problem(400, "validation_failed");
        assert_eq!(r.field_errors()[0].1, "not_allowed", "{url}");
    }
}

#[test]
fn a_receiver_failing_three_times_then_succeeding_gets_the_event() {
    let app = spawn_with(TestDb::create(), fast);
    let w = app.world();
    let rx = receiver(Duration::ZERO, |n| if n < 3 { 503 } else { 200 });
    let hook = subscribe(&app, &w.base, &rx.url);
    app.handover(&w.coordinator, &w.case, "primary", &w.doctors[0], None).assert(200);
    wait_until("four attempts", Duration::from_secs(15), || rx.got.lock().unwrap().len() >= 4);
    let id = hook["id"].as_str().unwrap();
    let admin = app.token_for(&w.base, &["admin"]);
    wait_until("the delivery to be recorded", Duration::from_secs(10), || {
        app.get(&format!("/api/v1/webhooks/{id}/deliveries"), &admin).body["items"][0]["status"] == "delivered"
    });
    let d = app.get(&format!("/api/v1/webhooks/{id}/deliveries"), &admin);
    let statuses: Vec<i64> =
        d.body["items"][0]["attempts"].as_array().unwrap().iter().map(|a| a["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [503, 503, 503, 200]);
    let bodies: BTreeSet<String> = rx.got.lock().unwrap().iter().map(|r| r.body.clone()).collect();
    assert_eq!(bodies.len(), 1, "the same event each time");
}

#[test]
fn a_server_killed_mid_delivery_delivers_everything_after_restart() {
    let db = TestDb::create();
    let mut config = test_config(&db);
    fast(&mut config);
    let restart_config = config.clone();
    let app = spawn_with(db, fast);
    let w = app.world();
    // A slow receiver: the server will die with deliveries in flight and others not yet sent.
    let rx = receiver(Duration::from_millis(300), |_| 200);
    subscribe(&app, &w.base, &rx.url);
    let mut cases = Vec::new();
    for i in 0..6 {
        let p = app.register_patient(&w.coordinator, &format!("再起動 {i}"), "サイキドウ");
        cases.push(app.open_case(&w.coordinator, &p, &w.base));
    }
    wait_until("a first delivery", Duration::from_secs(10), || !rx.got.lock().unwrap().is_empty());
    app.kill();
    let before = rx.got.lock().unwrap().len();
    assert!(before < 6, "killed in the middle ({before} of 6 delivered)");
    // Same database, new instance.
    let (_port, handle) = start_server(restart_config);
    let delivered = || -> BTreeSet<String> {
        rx.got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
            .filter(|e| e["type"] == "case.created")
            .map(|e| e["resource_id"].as_str().unwrap().to_owned())
            .collect()
    };
    wait_until("every case.created", Duration::from_secs(20), || cases.iter().all(|c| delivered().contains(c)));
    drop(handle.stop(false));
}

#[test]
fn a_webhook_sees_what_its_subscriber_sees_and_others_cannot_touch_it() {
    let app = spawn_with(TestDb::create(), fast);
    let w = app.world();
    let hospital = app.create_org(json!({"kind": "hospital", "name": "千代田中央病院", "municipality_code": "131016"}))
        ["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rx = receiver(Duration::ZERO, |_| 200);
    // The hospital's bed side subscribes to everything it may see: beds, not discharge sheets.
    let beds_admin = app.token_for(&hospital, &["admin", "hospital_bed_manager"]);
    let hook = app.post("/api/v1/webhooks", &beds_admin, &json!({"url": rx.url, "types": ["*"]}));
    hook.assert(201);
    let id = hook.body["id"].as_str().unwrap().to_owned();
    let staff = app.token_for(&hospital, &["hospital_discharge"]);
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
    .map(|c| ((*c).to_owned(), json!(false)))
    .collect();
    app.post(
        "/api/v1/screenings",
        &staff,
        &json!({"template": {"code": "national_discharge_difficulty"}, "base_organization_id": w.base,
                "encounter_ref": "W-1", "patient_id": w.patient, "admitted_at": "2026-11-20T10:00:00+09:00",
                "emergency_admission": false, "answers": answers}),
    )
    .assert(201);
    std::thread::sleep(Duration::from_millis(600));
    assert!(rx.got.lock().unwrap().is_empty(), "no sheet reaches the bed side's webhook");
    let d = app.get(&format!("/api/v1/webhooks/{id}/deliveries"), &beds_admin);
    assert_eq!(d.body["items"], json!([]));
    // Another organization can neither stop it nor redeliver through it.
    let other = app.token_for(&w.base, &["admin"]);
    app.request("DELETE", &format!("/api/v1/webhooks/{id}"), Some(&other), &[], None).assert_problem(404, "not_found");
    assert_eq!(app.get("/api/v1/webhooks", &beds_admin).body["items"][0]["active"], true);
    app.post(&format!("/api/v1/webhooks/{id}/deliveries/x/redeliver"), &other, &json!({}))
        .assert_problem(404, "not_found");
}

#[test]
fn a_subscription_that_cannot_be_read_stops_nobody_elses_events() {
    let app = spawn_with(TestDb::create(), fast);
    let w = app.world();
    let rx = receiver(Duration::ZERO, |_| 200);
    let broken = subscribe(&app, &w.base, &rx.url);
    let id = broken["id"].as_str().unwrap();
    app.db.raw(&format!("UPDATE webhooks SET types = 'not a list' WHERE id = '{id}'")).unwrap();
    // The change commits and its event is numbered; the unreadable subscription gets no delivery.
    let patient = app.register_patient(&w.coordinator, "壊れ 花子", "コワレ ハナコ");
    let case = app.open_case(&w.coordinator, &patient, &w.base);
    let feed = app.get("/api/v1/events?after=0&types=case.created", &w.coordinator);
    feed.assert(200);
    let created: Vec<&str> =
        feed.body["items"].as_array().unwrap().iter().map(|e| e["resource_id"].as_str().unwrap()).collect();
    assert!(created.contains(&case.as_str()), "{created:?}");
    assert_eq!(app.db.count("webhook_deliveries"), 0);
}
