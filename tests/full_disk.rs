//! Issue 11, item 3: a full disk is not invisible. `kare demo` runs with its store on a small
//! tmpfs that the test fills up before the demo's outage and frees afterwards: while it is full
//! the status page says the store is failing, the repair desk gets the maintenance alarm sent
//! from memory, the console says so and marks every ticket change that is only in memory; once
//! space returns every event and every ticket revision is stored and delivered, in order.
//!
//! Needs root (mount). A failed mount fails the test, with the reason: it never skips.

mod demo_support;

use demo_support::desk_config;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The demo and the tmpfs, cleaned up even when an assertion fails: the process is killed
/// first (it holds files on the mount), then the filesystem is unmounted.
struct Rig {
    child: Option<Child>,
    mount: PathBuf,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
    assert!(
        out.status.success(),
        "this test needs to mount a tmpfs (run it as root, as CI does): mount -t tmpfs -o \
         size={size} tmpfs {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `path` until the filesystem refuses: `ENOSPC`.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xA5u8; 64 * 1024];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // The last partial page too.
    while let Ok(n) = f.write(&chunk[..512]) {
        if n == 0 {
            break;
        }
    }
}

/// Free bytes on the filesystem holding `dir` (the test's own look, not kare's).
fn free_bytes(dir: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a writable statvfs.
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut st) }, 0);
    st.f_bavail as u64 * st.f_frsize as u64
}

fn get(addr: &str, path: &str) -> Value {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (_, body) = text.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap()
}

/// What the repair desk received, in arrival order: idempotency key and body.
type Received = Arc<Mutex<Vec<(String, Value)>>>;

async fn receiver() -> (String, Received) {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    let got: Received = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/desk",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let g = g.clone();
            async move {
                let key = headers["idempotency-key"].to_str().unwrap().to_string();
                let v: Value = serde_json::from_slice(&body).unwrap();
                g.lock().unwrap().push((key, v));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/desk", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, got)
}

/// Keeps every line of a pipe.
fn collect(r: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            match line {
                Ok(line) => l.lock().unwrap().push(line),
                Err(_) => break,
            }
        }
    });
    lines
}

/// Polls `f` until it returns `Some`, or fails with `what` (and `state()`) at the deadline.
async fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> Option<T>,
    state: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {limit:?}\n{}",
            state()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `[key rev N]` from a console TICKET line.
fn key_rev(line: &str) -> (String, i64) {
    let inner = line.split('[').nth(1).unwrap().split(']').next().unwrap();
    let (key, rev) = inner.split_once(" rev ").unwrap();
    (key.to_string(), rev.parse().unwrap())
}

/// The store's tickets (key → latest revision), read without writing (the disk is full).
fn stored_revisions(db: &Path) -> HashMap<String, i64> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let mut st = c
        .prepare("SELECT idempotency_key, revision FROM tickets")
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_raises_the_alarm_from_memory_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("store");
    std::fs::create_dir(&mnt).unwrap();
    mount_tmpfs(&mnt, "8m");
    let mut rig = Rig {
        child: None,
        mount: mnt.clone(),
    };
    let (url, got) = receiver().await;
    let config = dir.path().join("kare.toml");
    std::fs::write(&config, desk_config(&url)).unwrap();
    // 40 s of steady supply first (2 s at 20x: time to fill the disk), then a dip, a short
    // interruption and a 25 s outage (a repair ticket that flaps, a generator request that is
    // cancelled), then steady supply for good.
    let scenario = dir.path().join("scenario.toml");
    std::fs::write(
        &scenario,
        "node_id = 1\nnominal_hz = 50\nudin = 230.0\nchannels = [\"VA\", \"VB\", \"VC\"]\n\n\
         [[event]]\nkind = \"dip\"\nat_s = 40.0\nduration_s = 0.12\nlevel_pct = 60.0\nphases = [\"A\"]\n\n\
         [[event]]\nkind = \"interruption\"\nat_s = 48.0\nduration_s = 1.5\nlevel_pct = 0.0\n\n\
         [[event]]\nkind = \"interruption\"\nat_s = 55.0\nduration_s = 25.0\nlevel_pct = 0.0\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kare"))
        .args(["demo", "--speed", "20", "--listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&mnt)
        .arg("--scenario")
        .arg(&scenario)
        .env("KARE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    rig.child = Some(child);
    let console = || {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            out.lock().unwrap().join("\n"),
            err.lock().unwrap().join("\n")
        )
    };
    let db = mnt.join("kare.db");
    let addr = wait_for(
        "the demo serves its API with its store open",
        Duration::from_secs(30),
        || {
            let lines = out.lock().unwrap();
            let addr = lines
                .iter()
                .find_map(|l| l.split("http://").nth(1))?
                .split('/')
                .next()?
                .to_string();
            db.exists().then_some(addr)
        },
        console,
    )
    .await;

    // The disk fills up before anything happens on the supply.
    let filler = mnt.join("filler");
    fill(&filler);
    assert_eq!(free_bytes(&mnt), 0, "the tmpfs is full");
    let events_before = get(&addr, "/api/v1/status")["events"]["total"].as_u64();
    assert_eq!(
        events_before,
        Some(0),
        "the scenario's first disturbance came before the disk was full: lengthen its quiet start"
    );

    // The outage happens on a full disk: the status says the store is failing…
    let status = wait_for(
        "/api/v1/status shows the store failing with ticket changes waiting",
        Duration::from_secs(30),
        || {
            let s = get(&addr, "/api/v1/status");
            let st = &s["store"];
            (st["writable"] == false && st["pending"]["ticket_changes"].as_u64() > Some(0))
                .then_some(s)
        },
        console,
    )
    .await;
    let store = &status["store"];
    let problem = store["problem"].as_str().unwrap().to_string();
    assert!(
        problem.contains(
            "kare.db cannot be written: No space left on device; free space on that filesystem"
        ),
        "{store:#}"
    );
    assert!(store["failing_since"].is_string(), "{store:#}");
    assert_eq!(store["free_bytes"], 0, "{store:#}");
    assert!(store["last_error"].is_string(), "{store:#}");
    assert!(store["pending"]["max_ticket_changes"].as_u64() > Some(0));
    // …the repair desk got the alarm sent from memory (id 0: not in the store), while the disk
    // is still full…
    let alarm = wait_for(
        "the maintenance alarm reaches the desk from memory",
        Duration::from_secs(30),
        || {
            got.lock()
                .unwrap()
                .iter()
                .find(|(_, v)| v["kind"] == "maintenance" && v["title"] == problem.as_str())
                .cloned()
        },
        console,
    )
    .await;
    assert_eq!(alarm.1["id"], 0, "sent from memory: {:#}", alarm.1);
    assert_eq!(alarm.1["state"], "open");
    let alarm_key = alarm.1["key"].as_str().unwrap().to_string();
    assert_eq!(alarm.0, format!("{alarm_key}:1"));
    assert!(
        !stored_revisions(&db).contains_key(&alarm_key),
        "the alarm was not written anywhere first"
    );
    // …and the console said so: on stderr, and the ticket line marks it as not stored. Let the
    // whole outage pass (the generator request cancelled) on the full disk.
    wait_for(
        "the outage plays out on the full disk, said on the console",
        Duration::from_secs(30),
        || {
            let o = out.lock().unwrap();
            let e = err.lock().unwrap();
            let said = e.iter().any(|l| l.contains(&problem));
            let line = o.iter().any(|l| {
                l.contains("TICKET maintenance")
                    && l.contains(&alarm_key)
                    && l.contains("(NOT STORED yet: waiting for disk)")
            });
            let over = o
                .iter()
                .any(|l| l.contains("TICKET generator") && l.contains("CANCELLED"));
            (said && line && over).then_some(())
        },
        console,
    )
    .await;
    assert!(std::fs::metadata(&filler).is_ok(), "still full");
    // No ticket line claims to be stored when it is not: every line without the mark names a
    // revision the store holds.
    let stored = stored_revisions(&db);
    let full_lines: Vec<String> = out
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("  TICKET "))
        .cloned()
        .collect();
    assert!(full_lines.len() >= 4, "{}", console());
    for l in &full_lines {
        let (key, rev) = key_rev(l);
        assert!(
            l.contains("NOT STORED yet") || stored.get(&key).is_some_and(|r| *r >= rev),
            "claims to be stored, the store has {:?}: {l}",
            stored.get(&key)
        );
    }
    let waiting_lines = full_lines
        .iter()
        .filter(|l| l.contains("NOT STORED yet"))
        .count();
    assert!(waiting_lines >= 4, "{}", console());
    let logged = get(&addr, "/api/v1/events")["events"]
        .as_array()
        .unwrap()
        .clone();
    let tickets_api = get(&addr, "/api/v1/tickets");
    assert!(
        tickets_api["tickets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["stored"] == false && t["note"] == "NOT STORED yet: waiting for disk"),
        "{tickets_api:#}"
    );

    // Space returns.
    std::fs::remove_file(&filler).unwrap();
    let t_freed = Instant::now();
    wait_for(
        "the store writes again, nothing waits, the alarm is closed and everything delivered",
        Duration::from_secs(60),
        || {
            let s = get(&addr, "/api/v1/status");
            let st = &s["store"];
            let drained = st["writable"] == true
                && st["pending"]["events"] == 0
                && st["pending"]["ticket_changes"] == 0;
            if !drained {
                return None;
            }
            let store = kare::store::Store::open(&kare::store::StoreConfig::at(db.clone())).ok()?;
            let tickets = store
                .tickets(
                    chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                    chrono::Utc::now() + chrono::Duration::days(1),
                )
                .ok()?;
            let alarm_closed = tickets
                .iter()
                .any(|t| t.key == alarm_key && format!("{:?}", t.state) == "Closed");
            let delivered = tickets.iter().all(|t| {
                store
                    .outbox_for_ticket(t.id)
                    .is_ok_and(|rows| rows.iter().all(|r| format!("{:?}", r.state) == "Delivered"))
            });
            (alarm_closed && delivered).then_some(())
        },
        console,
    )
    .await;
    eprintln!(
        "drained {:?} after the filler was removed",
        t_freed.elapsed()
    );

    // Every event logged while the disk was full is in the store, written in its original order.
    let store = kare::store::Store::open(&kare::store::StoreConfig::at(db.clone())).unwrap();
    let rows = store
        .events(
            chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            chrono::Utc::now() + chrono::Duration::days(1),
        )
        .unwrap();
    assert!(
        logged.len() >= 4,
        "events during the outage: {}",
        logged.len()
    );
    let mut last_id = 0;
    // The API lists newest first (those still waiting for the disk on top): oldest first here.
    for e in logged.iter().rev() {
        let start: chrono::DateTime<chrono::Utc> = e["start"].as_str().unwrap().parse().unwrap();
        let row = rows
            .iter()
            .find(|r| {
                r.source == e["source"].as_str().unwrap()
                    && r.kind == e["kind"].as_str().unwrap()
                    && (r.start - start).num_milliseconds().abs() <= 1
            })
            .unwrap_or_else(|| panic!("event not in the store: {e:#}"));
        assert!(row.id > last_id, "stored out of order: {e:#}");
        last_id = row.id;
    }
    // Every ticket revision is stored and reached the desk, revisions of a ticket in order.
    let tickets = store
        .tickets(
            chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            chrono::Utc::now() + chrono::Duration::days(1),
        )
        .unwrap();
    for kind in ["repair", "generator", "pq_notice", "maintenance"] {
        assert!(
            tickets.iter().any(|t| t.kind == kind),
            "a {kind} ticket: {tickets:#?}"
        );
    }
    let got = got.lock().unwrap().clone();
    let mut first: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (key, _) in &got {
        let (k, r) = key.rsplit_once(':').unwrap();
        let revs = first.entry(k.to_string()).or_default();
        let r: i64 = r.parse().unwrap();
        if !revs.contains(&r) {
            revs.push(r);
        }
    }
    for t in &tickets {
        let want: Vec<i64> = (1..=t.revision).collect();
        assert_eq!(
            first.get(&t.key),
            Some(&want),
            "ticket {} revisions received in order",
            t.key
        );
    }
    // Each change that waited was announced again once written.
    let after = out.lock().unwrap().clone();
    assert!(
        after
            .iter()
            .filter(|l| l.contains("(stored now, after waiting for disk)"))
            .count()
            >= waiting_lines,
        "{}",
        console()
    );

    if std::env::var_os("KARE_TEST_SHOW").is_some() {
        eprintln!("{}", console());
    }
    // Nothing was lost: a clean stop succeeds.
    let mut child = rig.child.take().unwrap();
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{}", console());
}
