//! `renkei-bench`: seeds a synthetic region through the API, then drives a realistic mix at fixed
//! arrival rates (open loop: latency counts from when a request was due, so a slow server cannot
//! hide its queue) and each operation at its maximum, next to the ceiling probes of the same server
//! (`/healthz`, a bare point read and a bare insert). Prints a table, writes JSON and an SVG chart.
//! See docs/PERFORMANCE.md for the method. Synthetic data only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser, Debug, Clone)]
#[command(name = "renkei-bench", about = "Load generator for Renkei")]
struct Args {
    /// The server (started with RENKEI_BENCH_PROBES=true).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The server's HS256 secret (to sign the virtual users' tokens).
    #[arg(long, default_value = "data/jwt-secret")]
    secret_file: String,
    /// Patients with an active case, a primary and a secondary physician.
    #[arg(long, default_value_t = 5000)]
    patients: usize,
    /// Offered rates of the mix, requests per second (open loop).
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,2000")]
    rates: Vec<u32>,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Concurrent connections for the maximum-throughput phases.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// The server's process id, to report its memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// A label for the run (e.g. the backend).
    #[arg(long, default_value = "run")]
    label: String,
    /// A shell command to run once the region is seeded, before the first phase (e.g. `psql … -c
    /// ANALYZE`: after a bulk load, PostgreSQL plans with no statistics until autovacuum gets to it).
    #[arg(long)]
    after_seed: Option<String>,
    /// The open-loop mix: `all`, `reads` (cover, case read, list, search) or `writes` (the rest),
    /// each with the weights of the full mix.
    #[arg(long, default_value = "all", value_parser = ["all", "reads", "writes"])]
    mix: String,
    /// Only these maximum-throughput operations (all when empty), e.g. to drive one under a profiler.
    #[arg(long, value_delimiter = ',')]
    ops: Vec<String>,
    #[arg(long, default_value = "bench-results.json")]
    out: String,
    #[arg(long, default_value = "bench-latency.svg")]
    svg: String,
}

const NATIONAL: [&str; 16] = [
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
];

struct Client {
    agent: ureq::Agent,
    base: String,
}

struct Resp {
    status: u16,
    body: Value,
}

impl Client {
    fn new(base: &str) -> Self {
        let agent =
            ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).max_idle_connections_per_host(64).build();
        Client { agent, base: base.trim_end_matches('/').to_owned() }
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Resp {
        let mut req = self.agent.request(method, &format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let result = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(&b.to_string()),
            None => req.call(),
        };
        match result {
            Ok(r) => Resp { status: r.status(), body: r.into_json().unwrap_or(Value::Null) },
            Err(ureq::Error::Status(s, r)) => Resp { status: s, body: r.into_json().unwrap_or(Value::Null) },
            Err(_) => Resp { status: 0, body: Value::Null },
        }
    }

    fn must(&self, method: &str, path: &str, token: &str, body: &Value) -> Value {
        let r = self.call(method, path, Some(token), Some(body));
        assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
        r.body
    }
}

fn token(secret: &[u8], sub: &str, org: &str, roles: &[&str]) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": sub, "org": org, "roles": roles, "iss": "renkei", "aud": "renkei",
                        "iat": now, "nbf": now - 5, "exp": now + 6 * 3600});
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &jsonwebtoken::EncodingKey::from_secret(secret))
        .unwrap()
}

/// What the virtual users act on.
struct Region {
    /// (case id, token of its primary physician).
    cases: Vec<(String, String)>,
    /// (coordinator token, base id, a kana to search for).
    coordinators: Vec<(String, String, String)>,
    /// Patients registered without a case, for case creation: (patient, coordinator token, base).
    spare: Mutex<Vec<(String, String, String)>>,
    /// (discharge staff token, bed manager token, hospital id, its beds).
    hospitals: Vec<(String, String, String, Vec<String>)>,
    /// Pending bed requests: (request id, hospital index).
    pending: Mutex<VecDeque<(String, usize)>>,
    org_probe: String,
    bases: Vec<String>,
    counter: AtomicUsize,
}

/// A synthetic name and its reading. Readings are diverse, as in a real region (the most common
/// surname in Japan is borne by ~1.5 % of people): 40 × 40 × 8 family readings, so that a search
/// for a reading's first two kana finds about one patient in 1,600, not one in eight.
fn kana_name(i: usize) -> (String, String) {
    const FAMILY: [&str; 8] = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村"];
    const SYLLABLES: [&str; 40] = [
        "ア", "イ", "ウ", "エ", "オ", "カ", "キ", "ク", "ケ", "コ", "サ", "シ", "ス", "セ", "ソ", "タ", "チ", "ツ",
        "テ", "ト", "ナ", "ニ", "ヌ", "ネ", "ノ", "ハ", "ヒ", "フ", "ヘ", "ホ", "マ", "ミ", "ム", "メ", "モ", "ヤ",
        "ユ", "ヨ", "ラ", "リ",
    ];
    const ENDINGS: [&str; 8] = ["ダ", "ノ", "モト", "カワ", "ムラ", "ヤマ", "タ", "サキ"];
    const GIVEN: [(&str, &str); 6] = [
        ("花子", "ハナコ"),
        ("太郎", "タロウ"),
        ("幸子", "サチコ"),
        ("一郎", "イチロウ"),
        ("和子", "カズコ"),
        ("進", "ススム"),
    ];
    // Scattered by a full 64-bit mix (splitmix64). A multiplicative hash modulo 12,800 kept the
    // residues of `i`: the patients of base `i % bases` had only a tenth of the readings, so a
    // base's search matched 10× (at 500,000: 100×) more of its own patients than a real one would.
    let h = usize::try_from(splitmix64(i as u64) % 12_800).unwrap_or(0);
    let family_kana = format!("{}{}{}", SYLLABLES[h % 40], SYLLABLES[(h / 40) % 40], ENDINGS[(h / 1600) % 8]);
    let (g, gk) = GIVEN[(i / FAMILY.len()) % GIVEN.len()];
    (format!("{} {g}{}", FAMILY[i % FAMILY.len()], i / 48), format!("{family_kana} {gk}"))
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn parallel<T: Send + 'static>(n: usize, threads: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (f, next, out) = (f.clone(), next.clone(), out.clone());
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let v = f(i);
                out.lock().unwrap().push((i, v));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut v = Arc::try_unwrap(out).ok().unwrap().into_inner().unwrap();
    v.sort_by_key(|(i, _)| *i);
    v.into_iter().map(|(_, x)| x).collect()
}

fn seed(args: &Args, secret: &[u8]) -> Region {
    let started = Instant::now();
    let c = Arc::new(Client::new(&args.url));
    let admin = token(secret, &uuid::Uuid::now_v7().to_string(), &uuid::Uuid::now_v7().to_string(), &["admin"]);
    // The region scales with the patients: 50,000 patients ≈ 300 organizations, 3,000 practitioners, 1,000 beds.
    let p = args.patients;
    let n_bases = (p / 5000).max(2);
    let n_hospitals = (p / 2500).max(2);
    let n_clinics = (p * 300 / 50_000).saturating_sub(n_bases + n_hospitals).max(4);
    let doctors_per_clinic = (p * 3000 / 50_000 / n_clinics).max(3);
    let org = |kind: &str, name: String| -> String {
        c.must(
            "POST",
            "/api/v1/organizations",
            &admin,
            &json!({"kind": kind, "name": name, "municipality_code": "131016"}),
        )["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let bases: Vec<String> = (0..n_bases).map(|i| org("physicians_association", format!("医師会{i}"))).collect();
    let hospital_ids: Vec<String> = (0..n_hospitals).map(|i| org("hospital", format!("病院{i}"))).collect();
    let (cc, a2) = (c.clone(), admin.clone());
    let clinics: Vec<String> = parallel(n_clinics, 8, move |i| {
        cc.must(
            "POST",
            "/api/v1/organizations",
            &a2,
            &json!({"kind": "clinic", "name": format!("診療所{i}"), "municipality_code": "131016"}),
        )["id"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    let (cc, a2, cl) = (c.clone(), admin.clone(), clinics.clone());
    // Registration numbers are unique per profession: a run into a database seeded before takes
    // another block of them, at random (two runs into one database rarely pick the same block).
    let n_doctors = n_clinics * doctors_per_clinic;
    let blocks = (899_999 / n_doctors).max(1);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as usize;
    let block = (nanos % blocks) * n_doctors;
    let doctors: Vec<(String, String)> = parallel(n_doctors, 8, move |i| {
        let clinic = cl[i % cl.len()].clone();
        let (name, kana) = kana_name(i + 7);
        let id = cc.must(
            "POST",
            "/api/v1/practitioners",
            &a2,
            &json!({"organization_id": clinic, "name": name, "kana": kana,
            "profession": "physician", "registration_number": format!("{:06}", 100_000 + block + i)}),
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (id, clinic)
    });
    eprintln!(
        "seed: {} organizations, {} physicians ({:.0?})",
        n_bases + n_hospitals + n_clinics,
        doctors.len(),
        started.elapsed()
    );
    // Absences, recorded by the physicians themselves: two past ones each (the history a cover
    // lookup must not wade through), and one in ten away now, so that cover walks on to the
    // secondary physician.
    let (cc, docs, sec) = (c.clone(), doctors.clone(), secret.to_vec());
    let absences = parallel(n_doctors * 3, 8, move |k| {
        let (i, nth) = (k / 3, k % 3);
        if nth == 2 && i % 10 != 0 {
            return 0;
        }
        let (d, clinic) = &docs[i];
        let own = token(&sec, d, clinic, &["physician"]);
        let from = chrono::Utc::now()
            + match nth {
                0 => -chrono::Duration::days(60 + (i % 20) as i64),
                1 => -chrono::Duration::days(30 + (i % 20) as i64),
                _ => -chrono::Duration::hours(1),
            };
        cc.must(
            "POST",
            &format!("/api/v1/practitioners/{d}/absences"),
            &own,
            &json!({"starts_at": from.to_rfc3339(), "ends_at": (from + chrono::Duration::days(2)).to_rfc3339()}),
        );
        1
    });
    eprintln!("seed: {} absences ({:.0?})", absences.iter().sum::<usize>(), started.elapsed());
    // On-call rosters: a physician on duty around the clock at every base, for the past month
    // (history) and the next week.
    for (i, base) in bases.iter().enumerate() {
        let coord = token(secret, &uuid::Uuid::now_v7().to_string(), base, &["coordinator"]);
        for (k, day) in (-30..7_i64).enumerate() {
            let (d, _) = &doctors[(i * 37 + k) % doctors.len()];
            let from = chrono::Utc::now() - chrono::Duration::hours(1) + chrono::Duration::days(day);
            c.must("POST", &format!("/api/v1/organizations/{base}/on-call-shifts"), &coord,
                &json!({"practitioner_id": d, "starts_at": from.to_rfc3339(), "ends_at": (from + chrono::Duration::days(1)).to_rfc3339()}));
        }
    }
    let coordinators: Vec<(String, String, String)> = bases
        .iter()
        .enumerate()
        .map(|(i, b)| {
            (token(secret, &uuid::Uuid::now_v7().to_string(), b, &["coordinator"]), b.clone(), kana_name(i).1)
        })
        .collect();
    let (cc, coords, docs, sec) = (c.clone(), coordinators.clone(), doctors.clone(), secret.to_vec());
    let cases: Vec<(String, String)> = parallel(p, 8, move |i| {
        let (coord, base, _) = &coords[i % coords.len()];
        let (name, kana) = kana_name(i);
        let patient = cc.must("POST", "/api/v1/patients", coord, &json!({"name": name, "kana": kana,
            "birth_date": format!("19{:02}-0{}-1{}", 30 + i % 40, 1 + i % 9, i % 10), "sex": if i % 2 == 0 { "female" } else { "male" },
            "municipality_code": "131016"}))["id"].as_str().unwrap().to_owned();
        let case =
            cc.must("POST", "/api/v1/cases", coord, &json!({"patient_id": patient, "managing_organization_id": base}))
                ["id"]
                .as_str()
                .unwrap()
                .to_owned();
        let clinic_doctors: Vec<&(String, String)> = {
            let (_, clinic) = &docs[i % docs.len()];
            docs.iter().filter(|(_, c)| c == clinic).collect()
        };
        let primary = clinic_doctors[i % clinic_doctors.len()];
        let secondary = clinic_doctors[(i + 1) % clinic_doctors.len()];
        cc.must(
            "PUT",
            &format!("/api/v1/cases/{case}/physicians/primary"),
            coord,
            &json!({"practitioner_id": primary.0}),
        );
        cc.must(
            "PUT",
            &format!("/api/v1/cases/{case}/physicians/secondary"),
            coord,
            &json!({"practitioner_id": secondary.0}),
        );
        cc.must("POST", &format!("/api/v1/cases/{case}/activate"), coord, &json!({}));
        (case, token(&sec, &primary.0, &primary.1, &["physician"]))
    });
    eprintln!("seed: {} patients with active cases ({:.0?})", cases.len(), started.elapsed());
    let (cc, coords) = (c.clone(), coordinators.clone());
    let spare: Vec<(String, String, String)> = parallel((p / 5).max(500), 8, move |i| {
        let (coord, base, _) = &coords[i % coords.len()];
        let (name, kana) = kana_name(i + 1000);
        let patient = cc.must(
            "POST",
            "/api/v1/patients",
            coord,
            &json!({"name": name, "kana": kana, "birth_date": "1941-02-03",
            "sex": "female", "municipality_code": "131016"}),
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (patient, coord.clone(), base.clone())
    });
    let beds_per_hospital = (p / 50 / n_hospitals).max(5);
    let hospitals: Vec<(String, String, String, Vec<String>)> = hospital_ids
        .iter()
        .map(|h| {
            let staff = token(secret, &uuid::Uuid::now_v7().to_string(), h, &["hospital_discharge"]);
            let manager = token(secret, &uuid::Uuid::now_v7().to_string(), h, &["hospital_bed_manager"]);
            let beds = (0..beds_per_hospital)
                .map(|b| {
                    c.must("POST", &format!("/api/v1/organizations/{h}/beds"), &manager,
                        &json!({"ward": format!("{}階", 2 + b / 20), "label": format!("{b:03}"), "kinds": ["emergency", "urgent", "respite"],
                                "tags": if b % 2 == 0 { json!(["oxygen", "suction"]) } else { json!([]) }}))["id"]
                        .as_str().unwrap().to_owned()
                })
                .collect();
            (staff, manager, h.clone(), beds)
        })
        .collect();
    eprintln!("seed: {} beds; done in {:.0?}", beds_per_hospital * n_hospitals, started.elapsed());
    Region {
        cases,
        coordinators,
        spare: Mutex::new(spare),
        hospitals,
        pending: Mutex::new(VecDeque::new()),
        org_probe: bases[0].clone(),
        bases,
        counter: AtomicUsize::new(0),
    }
}

/// The operations measured.
const OPS: [&str; 11] = [
    "healthz",
    "probe_read",
    "probe_insert",
    "cover",
    "case_read",
    "case_list",
    "patient_search",
    "case_create",
    "screening_post",
    "bed_request_create",
    "bed_request_answer",
];

/// The realistic mix: (operation, weight).
const MIX: [(&str, u32); 8] = [
    ("cover", 25),
    ("case_read", 25),
    ("case_list", 10),
    ("patient_search", 10),
    ("case_create", 5),
    ("screening_post", 10),
    ("bed_request_create", 8),
    ("bed_request_answer", 7),
];

const READ_OPS: [&str; 4] = ["cover", "case_read", "case_list", "patient_search"];
/// The changes reported as a share of the probe insert.
const WRITE_RATIO_OPS: [&str; 4] = ["case_create", "screening_post", "bed_request_create", "bed_request_answer"];

/// Whether the open-loop mix `mix` (`all`, `reads`, `writes`) sends `op`.
fn in_mix(op: &str, mix: &str) -> bool {
    match mix {
        "reads" => READ_OPS.contains(&op),
        "writes" => !READ_OPS.contains(&op),
        _ => true,
    }
}

fn pick(i: usize, mix: &str) -> &'static str {
    let ops: Vec<(&'static str, u32)> = MIX.iter().copied().filter(|(op, _)| in_mix(op, mix)).collect();
    let total: u32 = ops.iter().map(|(_, w)| w).sum();
    let mut x = (i.wrapping_mul(2_654_435_761) % total as usize) as u32;
    for (op, w) in ops {
        if x < w {
            return op;
        }
        x -= w;
    }
    "case_read"
}

/// Runs one operation; the status (0: transport error).
fn run(op: &str, r: &Region, c: &Client, i: usize) -> u16 {
    let (case, doctor) = &r.cases[i % r.cases.len()];
    match op {
        "healthz" => c.call("GET", "/healthz", None, None).status,
        "probe_read" => c.call("GET", &format!("/_probe/organizations/{}", r.org_probe), None, None).status,
        "probe_insert" => c.call("POST", "/_probe/rows", None, Some(&json!({}))).status,
        "cover" => c.call("GET", &format!("/api/v1/cases/{case}/cover"), Some(doctor), None).status,
        "case_read" => c.call("GET", &format!("/api/v1/cases/{case}"), Some(doctor), None).status,
        "case_list" => c.call("GET", "/api/v1/cases?limit=20", Some(doctor), None).status,
        "patient_search" => {
            let (coord, _, kana) = &r.coordinators[i % r.coordinators.len()];
            let q: String = kana.chars().take(2).collect();
            c.call("GET", &format!("/api/v1/patients?q={}&limit=20", urlencode(&q)), Some(coord), None).status
        }
        "case_create" => {
            let Some((patient, coord, base)) = r.spare.lock().unwrap().pop() else { return 599 };
            let resp = c.call(
                "POST",
                "/api/v1/cases",
                Some(&coord),
                Some(&json!({"patient_id": patient, "managing_organization_id": base})),
            );
            // The patient goes back to the pool once the case is cancelled (untimed, but the server
            // does that work too: case_create's maximum is measured with a cancel per create).
            if let Some(id) = resp.body["id"].as_str() {
                c.call("POST", &format!("/api/v1/cases/{id}/cancel"), Some(&coord), None);
            }
            r.spare.lock().unwrap().insert(0, (patient, coord, base));
            resp.status
        }
        "screening_post" => {
            let (staff, _, _, _) = &r.hospitals[i % r.hospitals.len()];
            let n = r.counter.fetch_add(1, Ordering::SeqCst);
            let answers: serde_json::Map<String, Value> =
                NATIONAL.iter().enumerate().map(|(k, code)| ((*code).to_owned(), json!((n + k) % 7 == 0))).collect();
            let (name, kana) = kana_name(n);
            c.call("POST", "/api/v1/screenings", Some(staff), Some(&json!({
                "template": {"code": "national_discharge_difficulty"}, "base_organization_id": r.bases[n % r.bases.len()],
                "encounter_ref": format!("BENCH-{}-{n}", uuid::Uuid::now_v7().simple()),
                "patient": {"name": name, "kana": kana, "birth_date": "1939-04-05", "sex": "male", "municipality_code": "131016"},
                "admitted_at": chrono::Utc::now().to_rfc3339(), "emergency_admission": n % 3 == 0, "answers": answers}))).status
        }
        "bed_request_create" => {
            let h = i % r.hospitals.len();
            let resp = c.call(
                "POST",
                "/api/v1/bed-requests",
                Some(doctor),
                Some(&json!({"case_id": case, "kind": "urgent",
                "hospital_id": r.hospitals[h].2, "reason": "ベンチマーク"})),
            );
            if resp.status == 201 {
                r.pending.lock().unwrap().push_back((resp.body["id"].as_str().unwrap_or_default().to_owned(), h));
            }
            resp.status
        }
        "bed_request_answer" => {
            let Some((req, h)) = r.pending.lock().unwrap().pop_front() else { return 598 };
            let (_, manager, _, beds) = &r.hospitals[h];
            let n = r.counter.fetch_add(1, Ordering::SeqCst);
            if n % 2 == 0 {
                // A slot no other acceptance takes: bed n/2 % beds, day n/2 / beds.
                let slot = n / 2;
                let from = chrono::Utc::now() + chrono::Duration::days(1 + (slot / beds.len()) as i64);
                c.call(
                    "POST",
                    &format!("/api/v1/bed-requests/{req}/accept"),
                    Some(manager),
                    Some(&json!({
                    "bed_id": beds[slot % beds.len()], "starts_at": from.to_rfc3339(),
                    "ends_at": (from + chrono::Duration::hours(12)).to_rfc3339()})),
                )
                .status
            } else {
                c.call(
                    "POST",
                    &format!("/api/v1/bed-requests/{req}/decline"),
                    Some(manager),
                    Some(&json!({"reason_code": "no_bed_available"})),
                )
                .status
            }
        }
        _ => 0,
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[derive(Default, Clone)]
struct Samples {
    latencies_us: Vec<u64>,
    statuses: BTreeMap<u16, usize>,
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0
}

fn summary(op: &str, s: &Samples, secs: f64) -> Value {
    let mut l = s.latencies_us.clone();
    l.sort_unstable();
    let ok = s.statuses.iter().filter(|(k, _)| (200..300).contains(*k)).map(|(_, v)| v).sum::<usize>();
    json!({"op": op, "requests": l.len(), "ok": ok, "throughput": (ok as f64 / secs).round(),
           "p50_ms": pct(&l, 0.50), "p95_ms": pct(&l, 0.95), "p99_ms": pct(&l, 0.99), "max_ms": pct(&l, 1.0),
           "statuses": s.statuses})
}

fn rss_kb(pid: Option<u32>) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    text.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system, clock ticks of 10 ms: Linux's USER_HZ) that a process has used, all its
/// threads included, from /proc/PID/stat.
fn cpu_ticks(stat: &str) -> Option<u64> {
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// CPU ticks used so far by the server, by every PostgreSQL process of the machine, and by this
/// load generator. Throughput on this shared machine moves by a third between runs; the CPU a
/// request costs moves far less, so each maximum phase reports it beside its throughput.
#[derive(Clone, Copy, Default)]
struct Cpu {
    server: u64,
    postgres: u64,
    generator: u64,
}

fn cpu_now(server: Option<u32>) -> Cpu {
    let read = |path: String| std::fs::read_to_string(path).ok();
    let server = server.and_then(|pid| read(format!("/proc/{pid}/stat"))).and_then(|s| cpu_ticks(&s)).unwrap_or(0);
    let generator = read("/proc/self/stat".into()).and_then(|s| cpu_ticks(&s)).unwrap_or(0);
    let mut postgres = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Some(stat) = read(format!("/proc/{}/stat", name.to_string_lossy())) {
            if stat.contains("(postgres)") {
                postgres += cpu_ticks(&stat).unwrap_or(0);
            }
        }
    }
    Cpu { server, postgres, generator }
}

/// Microseconds of CPU per answered request between two readings, per party.
fn cpu_per_request(before: Cpu, after: Cpu, requests: u64) -> Value {
    let per =
        |a: u64, b: u64| if requests == 0 { 0.0 } else { (b.saturating_sub(a) * 10_000) as f64 / requests as f64 };
    json!({"server": per(before.server, after.server).round(), "postgres": per(before.postgres, after.postgres).round(),
           "load_generator": per(before.generator, after.generator).round()})
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Closed loop: `connections` users each sending `op` back to back for `secs`.
/// Before an open-loop phase: enough pending bed requests (created untimed) for every answer the
/// phase will send, so that no answer finds nothing to answer when it is due before a create.
fn top_up_pending(args: &Args, r: &Arc<Region>, rate: u32) {
    let ops: Vec<(&str, u32)> = MIX.iter().copied().filter(|(op, _)| in_mix(op, &args.mix)).collect();
    let weight = ops.iter().find(|(op, _)| *op == "bed_request_answer").map_or(0, |(_, w)| *w);
    let total: u32 = ops.iter().map(|(_, w)| *w).sum();
    let needed = (u64::from(rate) * args.duration * u64::from(weight) / u64::from(total.max(1))) as usize + 16;
    let have = r.pending.lock().unwrap().len();
    if have >= needed {
        return;
    }
    let c = Client::new(&args.url);
    for i in 0..needed - have {
        run("bed_request_create", r, &c, 7_000_000 + i);
    }
}

fn max_phase(args: &Args, r: &Arc<Region>, op: &'static str) -> Value {
    let cpu_before = cpu_now(args.server_pid);
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let results = Arc::new(Mutex::new(Samples::default()));
    let threads: Vec<_> = (0..args.connections)
        .map(|t| {
            let (r, results, url) = (r.clone(), results.clone(), args.url.clone());
            std::thread::spawn(move || {
                let c = Client::new(&url);
                let mut local = Samples::default();
                let mut i = t * 1_000_003;
                while Instant::now() < deadline {
                    let start = Instant::now();
                    let status = run(op, &r, &c, i);
                    local.latencies_us.push(start.elapsed().as_micros() as u64);
                    *local.statuses.entry(status).or_default() += 1;
                    i += 1;
                }
                let mut all = results.lock().unwrap();
                all.latencies_us.extend(local.latencies_us);
                for (k, v) in local.statuses {
                    *all.statuses.entry(k).or_default() += v;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let cpu_after = cpu_now(args.server_pid);
    let s = results.lock().unwrap().clone();
    let mut row = summary(op, &s, args.duration as f64);
    row["cpu_us_per_request"] = cpu_per_request(cpu_before, cpu_after, s.latencies_us.len() as u64);
    row
}

/// Open loop: the mix at `rate` requests per second; each request is due at its slot, and its
/// latency counts from then.
fn rate_phase(args: &Args, r: &Arc<Region>, rate: u32) -> (Value, Vec<Value>) {
    let total = rate as usize * args.duration as usize;
    let workers = (rate as usize / 10).clamp(8, 256);
    let t0 = Instant::now() + Duration::from_millis(200);
    let per_op: Arc<Mutex<BTreeMap<&'static str, Samples>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let (r, per_op, url, mix) = (r.clone(), per_op.clone(), args.url.clone(), args.mix.clone());
            std::thread::spawn(move || {
                let c = Client::new(&url);
                let mut local: BTreeMap<&'static str, Samples> = BTreeMap::new();
                let mut i = w;
                while i < total {
                    let due = t0 + Duration::from_secs_f64(i as f64 / rate as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let op = pick(i, &mix);
                    let status = run(op, &r, &c, i);
                    let s = local.entry(op).or_default();
                    s.latencies_us.push(due.elapsed().as_micros() as u64);
                    *s.statuses.entry(status).or_default() += 1;
                    i += workers;
                }
                let mut all = per_op.lock().unwrap();
                for (op, s) in local {
                    let a = all.entry(op).or_default();
                    a.latencies_us.extend(s.latencies_us);
                    for (k, v) in s.statuses {
                        *a.statuses.entry(k).or_default() += v;
                    }
                }
            })
        })
        .collect();
    // The server's memory every 10 s of the phase (flat, or growing?).
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (d, pid) = (done.clone(), args.server_pid);
    let sampler = std::thread::spawn(move || {
        let mut samples = vec![rss_kb(pid)];
        let mut last = Instant::now();
        while !d.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            if last.elapsed() >= Duration::from_secs(10) {
                samples.push(rss_kb(pid));
                last = Instant::now();
            }
        }
        samples.push(rss_kb(pid));
        samples
    });
    for t in threads {
        t.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let rss_samples = sampler.join().unwrap();
    let per_op = per_op.lock().unwrap().clone();
    let mut all = Samples::default();
    let mut rows = Vec::new();
    for (op, s) in &per_op {
        rows.push(summary(op, s, args.duration as f64));
        all.latencies_us.extend(&s.latencies_us);
        for (k, v) in &s.statuses {
            *all.statuses.entry(*k).or_default() += v;
        }
    }
    let mut total = summary(
        &format!("{}@{rate}", if args.mix == "all" { "mix" } else { args.mix.as_str() }),
        &all,
        args.duration as f64,
    );
    total["server_rss_kb_every_10s"] = json!(rss_samples);
    (total, rows)
}

fn print_row(v: &Value) {
    let errors: usize = v["statuses"]
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| !k.starts_with('2')).map(|(_, n)| n.as_u64().unwrap_or(0) as usize).sum())
        .unwrap_or(0);
    println!(
        "{:<22} {:>8} {:>9} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>7}  {}",
        v["op"].as_str().unwrap_or(""),
        v["requests"],
        v["throughput"],
        v["p50_ms"].as_f64().unwrap_or(0.0),
        v["p95_ms"].as_f64().unwrap_or(0.0),
        v["p99_ms"].as_f64().unwrap_or(0.0),
        v["max_ms"].as_f64().unwrap_or(0.0),
        errors,
        v["statuses"]
    );
}

fn svg(points: &[(u32, f64, f64)], label: &str) -> String {
    let (w, h, m) = (640.0, 360.0, 50.0);
    let max_x = points.iter().map(|p| p.0).max().unwrap_or(1) as f64;
    let max_y = points.iter().map(|p| p.2).fold(1.0, f64::max) * 1.1;
    let x = |v: f64| m + v / max_x * (w - 2.0 * m);
    let y = |v: f64| h - m - v / max_y * (h - 2.0 * m);
    let line = |sel: fn(&(u32, f64, f64)) -> f64| {
        points.iter().map(|p| format!("{:.1},{:.1}", x(p.0 as f64), y(sel(p)))).collect::<Vec<_>>().join(" ")
    };
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='12'>"
    );
    s += &format!("<rect width='{w}' height='{h}' fill='white'/><text x='{m}' y='20'>Renkei mix latency vs offered load ({label})</text>");
    s += &format!("<line x1='{m}' y1='{}' x2='{}' y2='{}' stroke='black'/>", h - m, w - m, h - m);
    s += &format!("<line x1='{m}' y1='{m}' x2='{m}' y2='{}' stroke='black'/>", h - m);
    for p in points {
        s += &format!("<text x='{:.1}' y='{}' text-anchor='middle'>{}</text>", x(p.0 as f64), h - m + 16.0, p.0);
    }
    for k in 0..=4 {
        let v = max_y * k as f64 / 4.0;
        s += &format!("<text x='{}' y='{:.1}' text-anchor='end'>{v:.1}</text>", m - 4.0, y(v) + 4.0);
    }
    s += &format!("<text x='{}' y='{}' text-anchor='middle'>offered requests/s</text>", w / 2.0, h - 10.0);
    s += &format!("<text x='12' y='{}' transform='rotate(-90 12 {})'>ms</text>", h / 2.0, h / 2.0);
    s += &format!("<polyline fill='none' stroke='#1f77b4' stroke-width='2' points='{}'/>", line(|p| p.1));
    s += &format!("<polyline fill='none' stroke='#d62728' stroke-width='2' points='{}'/>", line(|p| p.2));
    s += &format!(
        "<text x='{}' y='40' fill='#1f77b4'>p50</text><text x='{}' y='56' fill='#d62728'>p99</text>",
        w - m - 30.0,
        w - m - 30.0
    );
    s + "</svg>\n"
}

fn main() {
    let args = Args::parse();
    let secret =
        std::env::var("RENKEI_JWT_SECRET").ok().filter(|s| !s.is_empty()).map(String::into_bytes).unwrap_or_else(
            || std::fs::read(&args.secret_file).expect("the server's secret (--secret-file or RENKEI_JWT_SECRET)"),
        );
    let probe = Client::new(&args.url).call("POST", "/_probe/rows", None, Some(&json!({})));
    assert_eq!(probe.status, 201, "start the server with RENKEI_BENCH_PROBES=true");
    let region = Arc::new(seed(&args, &secret));
    if let Some(cmd) = &args.after_seed {
        let status = std::process::Command::new("sh").arg("-c").arg(cmd).status().expect("run --after-seed");
        assert!(status.success(), "--after-seed failed: {status}");
    }
    let rss_start = rss_kb(args.server_pid);
    println!("\n{} — {} patients; load average before: {}", args.label, args.patients, load_average());
    println!(
        "{:<22} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9} {:>7}  statuses",
        "operation (max)", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"
    );
    let mut max_rows = Vec::new();
    for op in OPS.iter().filter(|op| args.ops.is_empty() || args.ops.iter().any(|o| o == *op)) {
        let row = max_phase(&args, &region, op);
        print_row(&row);
        max_rows.push(row);
    }
    println!("\nCPU per request in the maximum phases, µs (server / PostgreSQL processes / load generator):");
    for row in &max_rows {
        let c = &row["cpu_us_per_request"];
        println!(
            "  {:<20} {:>7} {:>7} {:>7}",
            row["op"].as_str().unwrap_or(""),
            c["server"],
            c["postgres"],
            c["load_generator"]
        );
    }
    let tput = |op: &str| max_rows.iter().find(|r| r["op"] == op).and_then(|r| r["throughput"].as_f64());
    println!("\nratios to the probes measured in this run (only operations measured with their probe):");
    let pairs = [
        ("probe_read", "probe read", READ_OPS.as_slice()),
        ("probe_insert", "probe insert", WRITE_RATIO_OPS.as_slice()),
    ];
    for (probe, name, ops) in pairs {
        let Some(ceiling) = tput(probe).filter(|c| *c > 0.0) else { continue };
        for op in ops {
            if let Some(t) = tput(op) {
                println!("  {op:<20} {:.0} % of the {name}", 100.0 * t / ceiling);
            }
        }
    }
    let mut rate_rows = Vec::new();
    let mut points = Vec::new();
    println!(
        "\n{:<22} {:>8} {:>9} {:>8} {:>8} {:>8} {:>9} {:>7}  statuses",
        "mix (open loop)", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"
    );
    for rate in &args.rates {
        top_up_pending(&args, &region, *rate);
        let (all, rows) = rate_phase(&args, &region, *rate);
        print_row(&all);
        for r in &rows {
            print!("  ");
            print_row(r);
        }
        points.push((*rate, all["p50_ms"].as_f64().unwrap_or(0.0), all["p99_ms"].as_f64().unwrap_or(0.0)));
        rate_rows.push(json!({"rate": rate, "all": all, "ops": rows, "server_rss_kb": rss_kb(args.server_pid)}));
    }
    let rss_end = rss_kb(args.server_pid);
    println!("\nserver RSS: {rss_start:?} kB at start, {rss_end:?} kB at end; load average after: {}", load_average());
    let out = json!({"label": args.label, "patients": args.patients, "duration_s": args.duration,
        "connections": args.connections, "max": max_rows, "rates": rate_rows,
        "server_rss_kb": {"start": rss_start, "end": rss_end}, "load_average_after": load_average()});
    std::fs::write(&args.out, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    std::fs::write(&args.svg, svg(&points, &args.label)).unwrap();
    println!("wrote {} and {}", args.out, args.svg);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// utime and stime are the 14th and 15th fields, counted after a command name that may hold
    /// spaces and parentheses.
    #[test]
    fn cpu_ticks_are_read_after_the_command_name() {
        let stat = "4242 (tokio (x) 1) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 567 0 0 20 0 9 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(cpu_ticks("4242 (short) S 1"), None);
        let mine = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
        assert!(cpu_ticks(&mine).is_some(), "{mine}");
    }

    #[test]
    fn cpu_per_request_is_per_answered_request_in_microseconds() {
        let before = Cpu { server: 100, postgres: 50, generator: 10 };
        let after = Cpu { server: 300, postgres: 150, generator: 20 };
        // 200 ticks of 10 ms over 10,000 requests: 200 µs each.
        let v = cpu_per_request(before, after, 10_000);
        assert_eq!(
            (v["server"].as_f64(), v["postgres"].as_f64(), v["load_generator"].as_f64()),
            (Some(200.0), Some(100.0), Some(10.0))
        );
        assert_eq!(cpu_per_request(before, after, 0)["server"].as_f64(), Some(0.0));
    }
}
