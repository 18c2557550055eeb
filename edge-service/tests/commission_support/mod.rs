//! Fixtures for the `kare commission` tests: a simulated sensor node on a pseudo-terminal (the
//! real node firmware loop on a synthetic supply, as `kare demo` runs it), the demo's simulated
//! meters, a real HTTP receiver standing in for the repair desk, and the `kare` binary run on a
//! configuration written for them.
#![allow(dead_code)]

use kare::sim::{self, pty::Pty, Pace, Scenario};
use serde_json::Value;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

/// A simulated sensor node writing pqlink into a pseudo-terminal at real time.
pub struct SimNode {
    /// Where the node's stream is read (the pseudo-terminal's port side).
    pub port: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    _port_fd: OwnedFd,
}

impl SimNode {
    /// Starts a node on `scenario` (TOML).
    pub fn start(scenario: &str) -> SimNode {
        let scenario = Scenario::from_toml(scenario).expect("scenario");
        let pty = Pty::open().expect("pty");
        let (master, port, slave) = pty.into_parts();
        sim::pty::set_nonblocking(&master).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let _ = sim::run(&scenario, master, Pace::RealTime, &s);
        });
        SimNode {
            port,
            stop,
            thread: Some(thread),
            _port_fd: slave,
        }
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A healthy three-phase 230 V 50 Hz supply, with `extra` appended (events, keys).
pub fn scenario(extra: &str) -> String {
    format!("node_id = 42\nnominal_hz = 50\n{extra}\n")
}

/// What the desk keeps and how it answers.
type DeskState = (Arc<Mutex<Vec<Value>>>, Arc<AtomicU16>);

/// A real HTTP receiver answering every POST with `status`, keeping the bodies.
pub struct Desk {
    /// `http://127.0.0.1:PORT/tickets`.
    pub url: String,
    /// The JSON bodies received.
    pub received: Arc<Mutex<Vec<Value>>>,
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Desk {
    /// Starts one answering `status`.
    pub async fn start(status: u16) -> Desk {
        use axum::{extract::State, http::StatusCode, routing::post, Router};
        let received: Arc<Mutex<Vec<Value>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(status));
        let state = (received.clone(), status.clone());
        let app = Router::new()
            .route(
                "/tickets",
                post(
                    |State((rx, st)): State<DeskState>, body: String| async move {
                        if let Ok(v) = serde_json::from_str(&body) {
                            rx.lock().unwrap().push(v);
                        }
                        StatusCode::from_u16(st.load(Ordering::Relaxed)).unwrap_or(StatusCode::OK)
                    },
                ),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/tickets", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Desk {
            url,
            received,
            status,
            task,
        }
    }

    /// The kinds of the tickets received, in order.
    pub fn kinds(&self) -> Vec<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|v| v["kind"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The configuration's site, store, desk route and node.
pub fn base_config(dir: &Path, desk: &str, node_port: &Path, udin: f64) -> String {
    format!(
        r#"[site]
id = "SITE-T"
customer_id = "C-T"
customer_name = "Test Hospital"

[routes]
repair = ["desk"]

[store]
path = "{store}"

[delivery]
[[delivery.endpoint]]
kind = "webhook"
name = "desk"
url = "{desk}"
secret = "test-secret-of-the-desk"

[[node]]
name = "node-1"
port = "{node}"
udin = {udin:.1}
"#,
        store = dir.join("kare.db").display(),
        node = node_port.display(),
    )
}

/// A `[[modbus]]` section with one SDM630.
pub fn modbus_section(port: &Path, slave: u8) -> String {
    format!(
        r#"
[[modbus]]
name = "bus-1"
port = "{}"
baud = 9600
parity = "none"

[[modbus.device]]
name = "incomer"
slave_id = {slave}
profile = "eastron-sdm630"
poll_every_s = 1.0
"#,
        port.display()
    )
}

/// A `[[dlt645]]` section with the simulated meter (2400 8N1: pseudo-terminals have no parity).
pub fn dlt645_section(port: &Path) -> String {
    format!(
        r#"
[[dlt645]]
name = "bus-2"
port = "{}"
baud = 2400
parity = "none"

[[dlt645.device]]
name = "tariff"
address = "{}"
"#,
        port.display(),
        sim::meters::DLT645_ADDRESS
    )
}

/// What a `kare commission --json` run gave.
pub struct Run {
    /// Exit status.
    pub code: i32,
    /// The signed record (standard output), parsed.
    pub signed: Value,
    /// Standard output as text.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Every check.
    pub fn checks(&self) -> Vec<Value> {
        self.signed["record"]["checks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The checks with this id (e.g. `node.phase-sequence`).
    pub fn check(&self, id: &str) -> Vec<Value> {
        self.checks()
            .into_iter()
            .filter(|c| c["id"] == id)
            .collect()
    }

    /// `(id, subject, status, summary)` of every check not passing, for messages.
    pub fn not_passing(&self) -> Vec<(String, String, String, String)> {
        self.checks()
            .iter()
            .filter(|c| c["status"] != "pass")
            .map(|c| {
                (
                    c["id"].as_str().unwrap_or("").into(),
                    c["subject"].as_str().unwrap_or("").into(),
                    c["status"].as_str().unwrap_or("").into(),
                    c["summary"].as_str().unwrap_or("").into(),
                )
            })
            .collect()
    }
}

/// Writes `config` to `dir/kare.toml` and runs `kare commission --non-interactive --json` on
/// it, with `extra` flags.
pub async fn commission(dir: &Path, config: &str, extra: &[&str]) -> Run {
    let path = dir.join("kare.toml");
    std::fs::write(&path, config).unwrap();
    let record = dir.join("record.json");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kare"))
        .args([
            "commission",
            "--non-interactive",
            "--json",
            "--crew",
            "Test Crew",
        ])
        .arg("--config")
        .arg(&path)
        .arg("--record")
        .arg(&record)
        .arg("--state-dir")
        .arg(dir)
        .args(["--node-seconds", "2", "--meter-seconds", "10"])
        .args(extra)
        .output()
        .await
        .expect("kare runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let signed = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not the signed record ({e}):\n{stdout}\n{stderr}"));
    Run {
        code: out.status.code().unwrap_or(-1),
        signed,
        stdout,
        stderr,
    }
}
