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
    let (child, port, _) = serve_with(dir, |_| {});
    (child, port)
}

/// [`serve`], with the command adjusted first (its environment, say); also returns the
/// "listening" line.
fn serve_with(dir: &std::path::Path, adjust: impl FnOnce(&mut Command)) -> (Child, u16, Value) {
    let mut command = renkei(dir);
    adjust(&mut command);
    let mut child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn renkei");
    let stderr = child.stderr.take().expect("stderr");
    // Read on a thread, so that a server that never gets to listening (or starts itself over
    // and over) fails the test at the deadline instead of hanging it; the thread then keeps
    // draining the log so the server never blocks on a full pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let listening = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("renkei did not start: {e}");
            }
        };
        let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
        if v["message"] == "renkei listening" {
            break v;
        }
    };
    let port = listening["port"].as_u64().expect("port") as u16;
    (child, port, listening)
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

/// Starts `renkei serve` adjusted, and returns what it was started with: `GLIBC_TUNABLES` as
/// the process's initial environment has it (`/proc`: the same process, so a second start shows
/// there), the arena count its "listening" line reports, and its worker count.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn served_arenas(adjust: impl FnOnce(&mut Command)) -> (Option<String>, String, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port, listening) = serve_with(dir.path(), |c| {
        c.env_remove("GLIBC_TUNABLES").env_remove("MALLOC_ARENA_MAX").env_remove("RENKEI_MALLOC_ARENAS");
        adjust(c);
    });
    let (status, _) = call("GET", &format!("http://127.0.0.1:{port}/healthz"), None, None);
    assert_eq!(status, 200);
    let environ = std::fs::read(format!("/proc/{}/environ", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let tunables = environ
        .split(|b| *b == 0)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .find_map(|v| v.strip_prefix("GLIBC_TUNABLES=").map(str::to_owned));
    let arenas = listening["malloc_arena_max"].as_str().expect("malloc_arena_max").to_owned();
    (tunables, arenas, listening["workers"].as_u64().expect("workers"))
}

/// glibc keeps one allocator arena per core by default, not eight: `serve` started itself again
/// (the same pid, so its own environment has the tunable) with its arguments (a global flag
/// before the command, and the port after it), and answers; another tunable stays beside ours;
/// an operator's own count is left alone, in either variable, and 0 leaves glibc's default.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn serve_limits_the_allocator_arenas_unless_told_otherwise() {
    let cores =
        std::thread::available_parallelism().unwrap().get().min(renkei::malloc::MAX_ARENAS as usize).to_string();
    let (tunables, arenas, workers) = served_arenas(|c| {
        c.args(["--workers", "1"]);
    });
    assert_eq!(tunables, Some(format!("glibc.malloc.arena_max={cores}")));
    assert_eq!(arenas, cores);
    assert_eq!(workers, 1, "the second start kept the arguments");

    let (tunables, arenas, _) = served_arenas(|c| {
        c.env("RENKEI_MALLOC_ARENAS", "3").env("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0");
    });
    // (glibc 2.36 cuts the variable at each ':' as it reads it, in the process's initial copy.)
    assert!(tunables.as_deref().is_some_and(|t| t.starts_with("glibc.malloc.tcache_count=0")), "{tunables:?}");
    assert_eq!(arenas, "3");

    let (tunables, arenas, _) = served_arenas(|c| {
        c.env("GLIBC_TUNABLES", "glibc.malloc.arena_max=4");
    });
    assert_eq!(tunables.as_deref(), Some("glibc.malloc.arena_max=4"));
    assert_eq!(arenas, "4");

    let (tunables, arenas, _) = served_arenas(|c| {
        c.env("MALLOC_ARENA_MAX", "5");
    });
    assert_eq!(tunables, None);
    assert_eq!(arenas, "5");

    let (tunables, arenas, _) = served_arenas(|c| {
        c.env("RENKEI_MALLOC_ARENAS", "0");
    });
    assert_eq!(tunables, None);
    assert_eq!(arenas, "glibc's default");
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
    let out = renkei(dir.path()).arg("migrate").env("RENKEI_MALLOC_ARENAS", "65").output().unwrap();
    assert!(!out.status.success(), "65 arenas were accepted");
    assert!(String::from_utf8_lossy(&out.stderr).contains("RENKEI_MALLOC_ARENAS must be from 0 to 64"));
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
