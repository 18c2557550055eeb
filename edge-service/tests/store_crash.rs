//! Crash safety: a child process saves tickets as fast as it can and is killed with SIGKILL at
//! a random moment, twenty times over the same file. After each kill the file must be intact
//! and hold every ticket the child was told was saved (with its outbox rows).
//!
//! The child is this test binary itself, run again with `store_crash_child` selected and the
//! database path in an environment variable; it prints `ACK <key> <id> <revision>` after each
//! `save_ticket` returns, which is exactly the acknowledgement the service relies on.

use kare::store::*;
use serde_json::json;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CHILD_DB: &str = "KARE_STORE_CRASH_CHILD_DB";
const CHILD_ROUND: &str = "KARE_STORE_CRASH_CHILD_ROUND";
const ENDPOINTS: [&str; 2] = ["desk", "mail"];

fn write(key: &str, state: TicketState, round: usize) -> TicketWrite {
    TicketWrite {
        key: key.into(),
        kind: "repair".into(),
        state,
        priority: "P1".into(),
        site_id: "SITE-1".into(),
        customer_id: "C-1".into(),
        title: format!("crash round {round}"),
        body_json: json!({"key": key, "pad": "z".repeat(300)}),
        event_id: None,
        opened_at: None,
        closed_at: None,
        duration_s: None,
        deliver_to: ENDPOINTS
            .iter()
            .map(|e| DeliverTo {
                channel: Channel::Webhook,
                endpoint: e.to_string(),
                payload_json: json!({"title": key}),
            })
            .collect(),
    }
}

/// The child's work; a no-op unless run as the child.
#[test]
fn store_crash_child() {
    let Ok(db) = std::env::var(CHILD_DB) else {
        return;
    };
    let round: usize = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = StoreHandle::open(&StoreConfig {
            synchronous: Synchronous::Normal,
            batch_window_ms: 2,
            ..StoreConfig::at(db)
        })
        .unwrap();
        let mut tasks = Vec::new();
        for task in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0.. {
                    // New tickets, closes of earlier ones (revision 2) and attempts, mixed.
                    let (key, w) = if i % 4 == 3 && !mine.is_empty() {
                        let key: String = mine.remove(0);
                        let w = write(&key, TicketState::Closed, round);
                        (key, w)
                    } else {
                        let key = format!("r{round}-t{task}-{i}");
                        mine.push(key.clone());
                        (key.clone(), write(&key, TicketState::Open, round))
                    };
                    let saved = store.save_ticket(w).await.unwrap();
                    {
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "ACK {key} {} {}", saved.id, saved.revision).unwrap();
                        out.flush().unwrap();
                    }
                    if i % 5 == 0 {
                        store
                            .record_attempt(Attempt {
                                outbox_id: saved.outbox_ids[0],
                                at: chrono::Utc::now(),
                                detail: "HTTP 503".into(),
                                latency: Duration::from_millis(3),
                                outcome: AttemptOutcome::RetryAt(chrono::Utc::now()),
                            })
                            .await
                            .unwrap();
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[test]
fn store_survives_kill_9_and_keeps_every_acknowledged_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let exe = std::env::current_exe().unwrap();
    // key → (id, highest acknowledged revision)
    let mut acked: HashMap<String, (i64, i64)> = HashMap::new();
    let mut kills_mid_write = 0;
    let started = Instant::now();
    for round in 0..20 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "store_crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_DB, &db)
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Every fifth round dies at its first sign of life (possibly while opening the file);
        // the others after a random number of acknowledged saves.
        let target = if round % 5 == 0 {
            0
        } else {
            fastrand::usize(1..=150)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        let mut acks = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("round {round}: child gave {acks} acks in 10 s"));
            if line.contains("ACK ") {
                acks += 1;
            }
            lines.push(line);
            if acks >= target {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the child ended by itself"
        );
        reader.join().unwrap();
        // Lines written before the kill are acknowledgements too.
        lines.extend(rx.try_iter());
        // The test harness may print its own words before the first line on the same line.
        let acks: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.find("ACK ").map(|i| &l[i..]))
            .collect();
        let round_acks = acks.len();
        if round_acks > 0 {
            kills_mid_write += 1;
        }
        for l in acks {
            let f: Vec<&str> = l.split(' ').collect();
            let (key, id, rev) = (
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            );
            let e = acked.entry(key).or_insert((id, rev));
            assert_eq!(e.0, id, "{l}: the same key got two ids");
            e.1 = e.1.max(rev);
        }

        // Reopen as the service would after the crash: intact, and nothing acknowledged lost.
        let s = Store::open(&StoreConfig::at(&db)).unwrap();
        assert_eq!(s.integrity_check().unwrap(), Ok(()), "round {round}");
        for (key, (id, rev)) in &acked {
            let t = s
                .ticket_by_key(key)
                .unwrap()
                .unwrap_or_else(|| panic!("round {round}: acknowledged ticket {key} lost"));
            assert_eq!(t.id, *id);
            assert!(
                t.revision >= *rev,
                "round {round}: {key} went back to {}",
                t.revision
            );
            let rows = s.outbox_for_ticket(*id).unwrap();
            for r in 1..=*rev {
                let n = rows.iter().filter(|o| o.revision == r).count();
                assert_eq!(
                    n,
                    ENDPOINTS.len(),
                    "round {round}: {key} revision {r}: {n} outbox rows"
                );
            }
        }
        // Every ticket in the file has all of its revisions' outbox rows: none half-written.
        let n_partial: i64 = s
            .connection()
            .query_row(
                "SELECT COUNT(*) FROM tickets t WHERE (SELECT COUNT(*) FROM outbox o \
                 WHERE o.ticket_id = t.id) != 2 * t.revision",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n_partial, 0, "round {round}");
    }
    assert!(
        kills_mid_write >= 12,
        "only {kills_mid_write} rounds got to write"
    );
    assert!(acked.len() > 100, "{} tickets acknowledged", acked.len());
    eprintln!(
        "{} tickets acknowledged over 20 kills in {:?}",
        acked.len(),
        started.elapsed()
    );
}
