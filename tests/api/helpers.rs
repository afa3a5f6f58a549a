//! Spawns the real application on port 0 with a fresh database per test: a temporary SQLite
//! file, or — when `RENKEI_TEST_DATABASE_URL` names a PostgreSQL server — a new database on
//! it, dropped afterwards. Tokens are built here with jsonwebtoken, not by the server's signer.

use std::sync::mpsc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use diesel::{Connection, RunQueryDsl};
use renkei::auth::jwt::{JwtSettings, Secret};
use renkei::config::Config;
use renkei::db::{Backend, DbSettings};
use serde_json::{json, Value};

pub const ISSUER: &str = "renkei-test";
pub const AUDIENCE: &str = "renkei-test-api";
pub const IDP_ISSUER: &str = "https://idp.example.test/realms/region";

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub secret: Vec<u8>,
    pub admin_org: String,
    pub db: TestDb,
    agent: ureq::Agent,
    handle: ServerHandle,
}

/// A response, whatever its status.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The problem code of an error response.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn assert(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        self
    }

    /// Asserts a problem+json error with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> &Self {
        self.assert(status);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.text);
        assert_eq!(self.code(), code, "{}", self.text);
        assert_eq!(self.body["status"], status);
        assert!(self.body["request_id"].is_string(), "problem without request_id: {}", self.text);
        self
    }

    pub fn field_errors(&self) -> Vec<(String, String)> {
        self.body["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (e["field"].as_str().unwrap_or("").to_owned(), e["code"].as_str().unwrap_or("").to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn id(&self) -> String {
        self.body["id"].as_str().expect("response has an id").to_owned()
    }
}

/// The database of one test.
pub enum TestDb {
    Sqlite { _dir: tempfile::TempDir, path: std::path::PathBuf },
    Postgres { admin_url: String, name: String, url: String },
}

impl TestDb {
    pub fn create() -> Self {
        match std::env::var("RENKEI_TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => Self::postgres(&admin_url),
            _ => Self::sqlite(),
        }
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("renkei.db");
        TestDb::Sqlite { _dir: dir, path }
    }

    fn postgres(admin_url: &str) -> Self {
        let name = format!("renkei_t_{}", uuid::Uuid::now_v7().simple());
        let mut admin = diesel::PgConnection::establish(admin_url).expect("RENKEI_TEST_DATABASE_URL is reachable");
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut admin).expect("create test database");
        let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
        TestDb::Postgres { admin_url: admin_url.to_owned(), url: format!("{base}/{name}"), name }
    }

    pub fn backend(&self) -> Backend {
        match self {
            TestDb::Sqlite { path, .. } => Backend::Sqlite(path.clone()),
            TestDb::Postgres { url, .. } => Backend::Postgres(url.clone()),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name, .. } = self {
            if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
                let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin);
            }
        }
    }
}

/// Settings a test may change before the app starts.
pub fn test_config(db: &TestDb) -> Config {
    let mut secret = vec![0u8; 32];
    rand::fill(&mut secret[..]);
    Config {
        listen: "127.0.0.1:0".into(),
        workers: 2,
        blocking_threads: 4,
        db: DbSettings {
            backend: db.backend(),
            pool_size: 4,
            pool_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
            sqlite_synchronous: "NORMAL".into(),
            sqlite_cache_kib: 256,
        },
        jwt: JwtSettings {
            secret: Secret::new(secret),
            issuers: vec![ISSUER.into(), IDP_ISSUER.into()],
            audience: AUDIENCE.into(),
            keys_file: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/idp/jwks.json").into()),
        },
        audit_key: Secret::new(b"renkei-test-audit-key-0123456789".to_vec()),
        client_token_ttl: Duration::from_secs(900),
        shutdown_timeout: Duration::from_secs(5),
        bed_response: Default::default(),
        // Tests sweep with a controlled clock (`expire_due`), not on a timer.
        bed_sweep_interval: Duration::ZERO,
        // Tests key the access log when they choose (`renkei::audit::key_pass`).
        audit_keys_interval: Duration::ZERO,
        // Webhook tests turn delivery on; the rest do not deliver.
        webhooks: renkei::webhooks::WebhookSettings { poll_interval: Duration::ZERO, ..Default::default() },
        bench_probes: false,
    }
}

/// Starts the app on the backend chosen by the environment.
pub fn spawn_app() -> TestApp {
    spawn_with(TestDb::create(), |_| {})
}

/// Starts the app on `db` after `tweak` adjusts its configuration.
pub fn spawn_with(db: TestDb, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = test_config(&db);
    tweak(&mut config);
    let secret = config.jwt.secret.expose().to_vec();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            match renkei::Application::build(&config) {
                Ok(app) => {
                    let _ = tx.send(Ok((app.port(), app.handle())));
                    let _ = app.run_until_stopped().await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    });
    let (port, handle) = rx.recv().expect("server thread").expect("application starts");
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        secret,
        admin_org: uuid::Uuid::now_v7().to_string(),
        db,
        agent: ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build(),
        handle,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // The stop command is sent at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}

/// Claims of a test token; tests change them to build refused tokens.
pub fn claims(sub: &str, org: &str, roles: &[&str]) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub, "org": org, "roles": roles, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 600})
}

impl TestApp {
    /// Signs arbitrary claims with the app's HS256 secret.
    pub fn sign(&self, claims: &Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(&self.secret),
        )
        .expect("sign")
    }

    /// A token for a new subject of `org` with `roles`.
    pub fn token_for(&self, org: &str, roles: &[&str]) -> String {
        self.sign(&claims(&uuid::Uuid::now_v7().to_string(), org, roles))
    }

    pub fn admin(&self) -> String {
        self.token_for(&self.admin_org, &["admin"])
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        let mut req = self.agent.request(method, &format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let mut has_type = false;
        for (k, v) in headers {
            has_type |= k.eq_ignore_ascii_case("content-type");
            req = req.set(k, v);
        }
        if body.is_some() && !has_type {
            req = req.set("Content-Type", "application/json");
        }
        let result = match body {
            Some(b) => req.send_string(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: transport error {e}"),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_owned())))
            .collect();
        let text = resp.into_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    pub fn get(&self, path: &str, token: &str) -> Resp {
        self.request("GET", path, Some(token), &[], None)
    }

    pub fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.request("POST", path, Some(token), &[], Some(&body.to_string()))
    }

    pub fn patch(&self, path: &str, token: &str, if_match: &str, body: &Value) -> Resp {
        self.request("PATCH", path, Some(token), &[("If-Match", if_match)], Some(&body.to_string()))
    }

    /// Creates an organization as admin and returns its body.
    pub fn create_org(&self, body: Value) -> Value {
        let r = self.post("/api/v1/organizations", &self.admin(), &body);
        r.assert(201);
        r.body
    }

    pub fn clinic(&self, name: &str) -> String {
        self.create_org(json!({"kind": "clinic", "name": name, "municipality_code": "131016"}))["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Adds `practitioner` to the case's care team as a visiting nurse (201 expected).
    pub fn join_as_nurse(&self, token: &str, case: &str, practitioner: &str) {
        self.post(
            &format!("/api/v1/cases/{case}/care-team"),
            token,
            &json!({"practitioner_id": practitioner, "role": "visiting_nurse"}),
        )
        .assert(201);
    }

    /// An active case at another base, with `w.doctors[1]` as its primary and `w.nurse` on its
    /// team; `w.nurse` also joins `w.case`. Returns the other case and its primary's token, and
    /// a reader who sees both ways: `w.nurse` as a nurse and coordinator of `w.base`.
    pub fn case_elsewhere_on_the_nurses_team(&self, w: &World) -> (String, String, String) {
        let (other_base, other_coordinator) = self.other_base("港区医師会", "131032");
        let patient = self.register_patient(&other_coordinator, "木村 一郎", "キムラ イチロウ");
        let case = self.open_case(&other_coordinator, &patient, &other_base);
        self.handover(&other_coordinator, &case, "primary", &w.doctors[1], None).assert(200);
        self.post(&format!("/api/v1/cases/{case}/activate"), &other_coordinator, &json!({})).assert(200);
        self.join_as_nurse(&other_coordinator, &case, &w.nurse);
        self.join_as_nurse(&w.coordinator, &w.case, &w.nurse);
        let doctor = self.as_practitioner(&w.doctors[1], &w.clinic, &["physician"]);
        let both = self.as_practitioner(&w.nurse, &w.base, &["nurse", "coordinator"]);
        (case, doctor, both)
    }

    /// The ids of a list page's items.
    pub fn ids_of(&self, page: &Resp) -> Vec<String> {
        page.assert(200);
        page.body["items"].as_array().expect("items").iter().map(|x| x["id"].as_str().expect("id").to_owned()).collect()
    }

    /// The ids of every item of a list, read one item per page by following `next_cursor`.
    pub fn page_through(&self, path: &str, token: &str) -> Vec<String> {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let url = match &cursor {
                Some(c) => format!("{path}?limit=1&cursor={c}"),
                None => format!("{path}?limit=1"),
            };
            let page = self.get(&url, token);
            seen.extend(self.ids_of(&page));
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return seen,
            }
        }
        panic!("more than 100 pages of {path}: {seen:?}")
    }

    /// Creates another base (a physicians' association) and returns its id and a coordinator's token.
    pub fn other_base(&self, name: &str, municipality: &str) -> (String, String) {
        let id = self
            .create_org(json!({"kind": "physicians_association", "name": name, "municipality_code": municipality}))
            ["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let coordinator = self.coordinator_of(&id);
        (id, coordinator)
    }

    /// Creates a physician of `org` and returns their id.
    pub fn physician(&self, org: &str, name: &str, kana: &str, registration: &str) -> String {
        let r = self.post(
            "/api/v1/practitioners",
            &self.admin(),
            &json!({"organization_id": org, "name": name, "kana": kana, "profession": "physician",
                    "registration_number": registration}),
        );
        r.assert(201);
        r.id()
    }
}

/// Runs `n` closures at once on their own threads, released together, and collects results.
pub fn race<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let f = std::sync::Arc::new(f);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().expect("racing thread")).collect()
}

/// A small region: a base (the association) with a coordinator, a clinic with three physicians
/// and a nurse, and one patient with a `referred` case managed by the base.
pub struct World {
    pub base: String,
    pub clinic: String,
    pub coordinator: String,
    pub doctors: [String; 3],
    pub nurse: String,
    pub patient: String,
    pub case: String,
}

impl TestApp {
    /// A token whose subject is the practitioner `who` of `org`.
    pub fn as_practitioner(&self, who: &str, org: &str, roles: &[&str]) -> String {
        self.sign(&claims(who, org, roles))
    }

    pub fn coordinator_of(&self, org: &str) -> String {
        self.token_for(org, &["coordinator"])
    }

    pub fn register_patient(&self, token: &str, name: &str, kana: &str) -> String {
        let r = self.post(
            "/api/v1/patients",
            token,
            &json!({"name": name, "kana": kana, "birth_date": "1938-05-12", "sex": "female", "municipality_code": "131016"}),
        );
        r.assert(201);
        r.id()
    }

    /// The ids of the patients a search for `q` finds (first page).
    pub fn search_patients(&self, token: &str, q: &str) -> Vec<String> {
        self.ids_of(&self.get(&format!("/api/v1/patients?q={}&limit=100", crate::organizations::url_encode(q)), token))
    }

    /// Renames the patient (reading its current version first).
    pub fn rename_patient(&self, token: &str, patient: &str, name: &str, kana: &str) {
        let path = format!("/api/v1/patients/{patient}");
        let version = self.get(&path, token).body["version"].as_i64().expect("version");
        self.patch(&path, token, &format!("\"{version}\""), &json!({"name": name, "kana": kana})).assert(200);
    }

    pub fn open_case(&self, token: &str, patient: &str, org: &str) -> String {
        let r = self.post("/api/v1/cases", token, &json!({"patient_id": patient, "managing_organization_id": org}));
        r.assert(201);
        r.id()
    }

    pub fn handover(&self, token: &str, case: &str, slot: &str, who: &str, effective_at: Option<&str>) -> Resp {
        let mut body = json!({"practitioner_id": who});
        if let Some(t) = effective_at {
            body["effective_at"] = json!(t);
        }
        self.request(
            "PUT",
            &format!("/api/v1/cases/{case}/physicians/{slot}"),
            Some(token),
            &[],
            Some(&body.to_string()),
        )
    }

    pub fn world(&self) -> World {
        let base = self.create_org(
            json!({"kind": "physicians_association", "name": "千代田区医師会", "municipality_code": "131016"}),
        )["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let clinic = self.clinic("さくら在宅クリニック");
        let doctors = [
            self.physician(&clinic, "山田 太郎", "ヤマダ タロウ", "200001"),
            self.physician(&clinic, "佐藤 次郎", "サトウ ジロウ", "200002"),
            self.physician(&clinic, "鈴木 三郎", "スズキ サブロウ", "200003"),
        ];
        let nurse = self
            .post(
                "/api/v1/practitioners",
                &self.admin(),
                &json!({"organization_id": clinic, "name": "高橋 看子", "kana": "タカハシ ミコ", "profession": "nurse"}),
            )
            .id();
        let coordinator = self.coordinator_of(&base);
        let patient = self.register_patient(&coordinator, "田中 花子", "タナカ ハナコ");
        let case = self.open_case(&coordinator, &patient, &base);
        World { base, clinic, coordinator, doctors, nurse, patient, case }
    }
}

impl TestDb {
    /// Runs SQL directly against the database, around the application (an operator or an
    /// attacker with database access).
    /// Rows in `table` (read around the API, for what it cannot show: rows still waiting).
    pub fn count(&self, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let sql = format!("SELECT CAST(count(*) AS BIGINT) AS n FROM {table}");
        let found: Vec<N> = match self {
            TestDb::Sqlite { path, .. } => {
                let mut c = diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
                diesel::sql_query(sql).load(&mut c).unwrap()
            }
            TestDb::Postgres { url, .. } => {
                let mut c = diesel::PgConnection::establish(url).unwrap();
                diesel::sql_query(sql).load(&mut c).unwrap()
            }
        };
        found[0].n
    }

    /// Undoes migrations, newest first, through the one whose version ends with `version` (an
    /// operator rolling a release back).
    pub fn revert_through(&self, version: &str) {
        use diesel::connection::SimpleConnection;
        use diesel_migrations::MigrationHarness;
        let reached = |v: diesel::migration::MigrationVersion| v.to_string().ends_with(version);
        match self {
            TestDb::Sqlite { path, .. } => {
                let mut c = diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
                c.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON").unwrap();
                while !reached(c.revert_last_migration(renkei::db::SQLITE_MIGRATIONS).unwrap()) {}
            }
            TestDb::Postgres { url, .. } => {
                let mut c = diesel::PgConnection::establish(url).unwrap();
                while !reached(c.revert_last_migration(renkei::db::PG_MIGRATIONS).unwrap()) {}
            }
        }
    }

    /// Applies the migrations that are not applied (after `revert_through`).
    pub fn migrate(&self) {
        let db = renkei::db::Db::connect(&renkei::db::DbSettings {
            backend: self.backend(),
            pool_size: 1,
            pool_timeout: std::time::Duration::from_secs(10),
            sqlite_busy_timeout: std::time::Duration::from_secs(5),
            sqlite_synchronous: "FULL".into(),
            sqlite_cache_kib: 256,
        })
        .unwrap();
        db.migrate().unwrap();
    }

    pub fn raw(&self, sql: &str) -> Result<usize, String> {
        use diesel::connection::SimpleConnection;
        match self {
            TestDb::Sqlite { path, .. } => {
                let mut c = diesel::SqliteConnection::establish(&path.to_string_lossy()).map_err(|e| e.to_string())?;
                c.batch_execute("PRAGMA busy_timeout = 5000").map_err(|e| e.to_string())?;
                diesel::sql_query(sql).execute(&mut c).map_err(|e| e.to_string())
            }
            TestDb::Postgres { url, .. } => {
                let mut c = diesel::PgConnection::establish(url).map_err(|e| e.to_string())?;
                diesel::sql_query(sql).execute(&mut c).map_err(|e| e.to_string())
            }
        }
    }
}

impl TestApp {
    /// The same region as `w`, with a new patient and case.
    pub fn world_for_new_patient(&self, w: &World) -> World {
        let patient = self.register_patient(&w.coordinator, "伊藤 二郎", "イトウ ジロウ");
        let case = self.open_case(&w.coordinator, &patient, &w.base);
        World {
            base: w.base.clone(),
            clinic: w.clinic.clone(),
            coordinator: w.coordinator.clone(),
            doctors: w.doctors.clone(),
            nurse: w.nurse.clone(),
            patient,
            case,
        }
    }
}

/// Starts another server on `config` (a second instance on the same database), returning its
/// port and a handle to stop it.
pub fn start_server(config: Config) -> (u16, ServerHandle) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            match renkei::Application::build(&config) {
                Ok(app) => {
                    let _ = tx.send(Ok((app.port(), app.handle())));
                    let _ = app.run_until_stopped().await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    });
    rx.recv().expect("server thread").expect("application starts")
}

impl TestApp {
    /// Stops the server at once, in-flight work abandoned (a crash, as far as clients can tell).
    pub fn kill(&self) {
        drop(self.handle.stop(false));
    }
}
