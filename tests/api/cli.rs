//! The `renkei` binary as an operator uses it: serve, token, migrate, openapi, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_renkei");

fn renkei(dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("RENKEI_JWT_SECRET")
        .env_remove("RENKEI_DATA_DIR")
        .env_remove("RENKEI_LISTEN")
        .env("RUST_LOG", "info")
        .env("RENKEI_LOG_FORMAT", "json");
    c
}

/// Starts `renkei serve` on a free port and waits for its "listening" line.
fn serve(dir: &std::path::Path) -> (Child, u16) {
    let mut child = renkei(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn renkei");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let port = loop {
        assert!(Instant::now() < deadline, "renkei did not start");
        let line = lines.next().expect("renkei exited early").expect("log line");
        let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
        if v["message"] == "renkei listening" {
            break v["port"].as_u64().expect("port") as u16;
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, port)
}

fn call(method: &str, url: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
    let mut req = ureq::request(method, url).set("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let result = match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    };
    let resp = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = resp.status();
    (status, resp.into_json().unwrap_or(Value::Null))
}

#[test]
fn a_fresh_directory_serves_and_a_minted_token_creates_and_reads_an_organization() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = serve(dir.path());
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(call("GET", &format!("{base}/healthz"), None, None).0, 200);
    let org = uuid::Uuid::now_v7().to_string();
    let out = renkei(dir.path()).args(["token", "--sub", &org, "--org", &org, "--role", "admin"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let (status, created) = call(
        "POST",
        &format!("{base}/api/v1/organizations"),
        Some(&token),
        Some(r#"{"kind": "clinic", "name": "テスト診療所", "municipality_code": "131016"}"#),
    );
    assert_eq!(status, 201, "{created}");
    let (status, got) =
        call("GET", &format!("{base}/api/v1/organizations/{}", created["id"].as_str().unwrap()), Some(&token), None);
    assert_eq!(status, 200);
    assert_eq!(got["name"], "テスト診療所");
    // The secret was generated into the data directory, readable by its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("data/jwt-secret")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }
    assert!(dir.path().join("data/renkei.db").is_file());

    // SIGTERM stops it cleanly.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "renkei ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

#[test]
fn migrate_and_openapi_commands() {
    let dir = tempfile::tempdir().unwrap();
    let out = renkei(dir.path()).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("data/renkei.db").is_file());
    let out = renkei(dir.path()).arg("openapi").output().unwrap();
    assert!(out.status.success());
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim_end(), committed.trim_end());
}

#[test]
fn a_bad_database_url_is_a_clear_start_up_error_and_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    for url in ["mysql://root@localhost/renkei", "sqlite:renkei.db", "renkei.db"] {
        let out = renkei(dir.path()).args(["migrate", "--database-url", url]).output().unwrap();
        assert!(!out.status.success(), "{url} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    }
    assert!(!dir.path().join("renkei.db").exists());
    assert!(!dir.path().join("data/renkei.db").exists());
}

#[test]
fn zero_sizes_are_start_up_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (var, message) in [
        ("RENKEI_DB_POOL_SIZE", "RENKEI_DB_POOL_SIZE must be at least 1"),
        ("RENKEI_BLOCKING_THREADS", "RENKEI_BLOCKING_THREADS must be at least 1"),
        ("RENKEI_SQLITE_CACHE_KIB", "RENKEI_SQLITE_CACHE_KIB must be from 1 to 1048576"),
    ] {
        let out = renkei(dir.path()).arg("migrate").env(var, "0").output().unwrap();
        assert!(!out.status.success(), "{var}=0 was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{stderr}");
    }
    // SQLite would take a size beyond 32 bits as no cache at all: refused, not passed on.
    let out = renkei(dir.path()).arg("migrate").env("RENKEI_SQLITE_CACHE_KIB", "4294967295").output().unwrap();
    assert!(!out.status.success(), "a 4 TiB page cache was accepted");
    assert!(String::from_utf8_lossy(&out.stderr).contains("RENKEI_SQLITE_CACHE_KIB must be from 1 to 1048576"));
}

#[test]
fn a_short_secret_is_refused_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let out = renkei(dir.path()).arg("migrate").env("RENKEI_JWT_SECRET", "short-secret-value").output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
    assert!(!stderr.contains("short-secret-value"));
}
