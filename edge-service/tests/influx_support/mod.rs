//! Real servers on loopback for the InfluxDB sink's tests and benchmark: InfluxDB 1.x
//! (`influxd`) and VictoriaMetrics, each started directly (not as a system service) on free
//! 127.0.0.1 ports with a temporary data directory, killed with SIGKILL on drop.
//!
//! A missing binary is installed through `scripts/influx-servers install` (Debian packages);
//! when that fails the test fails and says why: these tests never skip.

#![allow(dead_code)] // each test file uses its own part of this module

use kare::sinks::influx::{self, InfluxConfig, InfluxSender, InfluxStats, Point};
use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// InfluxDB 1.x.
    Influx1,
    /// VictoriaMetrics.
    Victoria,
}

/// A running server.
pub struct Server {
    kind: Kind,
    child: Option<Child>,
    /// HTTP port.
    pub port: u16,
    rpc_port: u16,
    dir: tempfile::TempDir,
}

/// A free loopback port (bound then released; the server binds it right after).
///
/// Never the same port twice in one test binary: a test that stops a server and starts it again
/// on its port (a server outage) must not find that port handed meanwhile to a parallel test.
pub fn free_port() -> u16 {
    static HANDED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed = HANDED.lock().unwrap_or_else(|p| p.into_inner());
    // Hold every probe open until one is new, so the OS cannot offer the same one again.
    let mut probes = Vec::new();
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("no free loopback port");
        let port = l.local_addr().expect("loopback address").port();
        if !handed.contains(&port) {
            handed.push(port);
            return port;
        }
        probes.push(l);
    }
}

/// Tests of one binary run in parallel threads: one apt-get at a time.
static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn ensure_installed(binary: &str) {
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let found = |b: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found(binary) {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/influx-servers");
    let status = Command::new("bash").arg(&script).arg("install").status();
    assert!(
        status.as_ref().is_ok_and(|s| s.success()) && found(binary),
        "`{binary}` is missing and `{} install` could not install it ({status:?}); \
         these tests need the real server (apt-get install influxdb victoria-metrics)",
        script.display()
    );
}

impl Server {
    /// Starts InfluxDB 1.x on a free port.
    pub fn influx1() -> Server {
        Self::start(Kind::Influx1, free_port())
    }

    /// Starts InfluxDB 1.x on a given HTTP port.
    pub fn influx1_on(port: u16) -> Server {
        Self::start(Kind::Influx1, port)
    }

    /// Starts VictoriaMetrics on a free port.
    pub fn victoria() -> Server {
        Self::start(Kind::Victoria, free_port())
    }

    fn start(kind: Kind, port: u16) -> Server {
        ensure_installed(match kind {
            Kind::Influx1 => "influxd",
            Kind::Victoria => "victoria-metrics",
        });
        let mut s = Server {
            kind,
            child: None,
            port,
            rpc_port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        s.launch();
        s
    }

    /// Base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    fn spawn(&mut self) {
        let dir = self.dir();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log"))
            .expect("log file");
        let mut cmd = match self.kind {
            Kind::Influx1 => {
                let conf = dir.join("influxdb.conf");
                std::fs::write(
                    &conf,
                    format!(
                        r#"reporting-enabled = false
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{d}/meta"
  logging-enabled = false
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http}"
  log-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"#,
                        rpc = self.rpc_port,
                        http = self.port,
                        d = dir.display()
                    ),
                )
                .expect("influxdb.conf");
                let mut c = Command::new("influxd");
                c.arg("-config").arg(conf);
                c
            }
            Kind::Victoria => {
                let mut c = Command::new("victoria-metrics");
                c.arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
                    .arg(format!("-storageDataPath={}/vm", dir.display()))
                    .arg("-retentionPeriod=100y")
                    .arg("-loggerLevel=ERROR");
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.kind));
        self.child = Some(child);
    }

    /// Starts the server and waits until it answers. A fixed port (a restart after an outage)
    /// can be held for a moment by someone else's connection: that is retried, for 5 s.
    fn launch(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            self.spawn();
            match self.wait_ready() {
                Ok(()) => return,
                Err(log) if log.contains("address already in use") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(log) => panic!("{:?} exited at start; log:\n{log}", self.kind),
            }
        }
    }

    /// Waits until the server answers; `Err(log)` when it exited instead.
    fn wait_ready(&mut self) -> Result<(), String> {
        let (path, code) = match self.kind {
            Kind::Influx1 => ("/ping", 204),
            Kind::Victoria => ("/health", 200),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http_status(self.port, path) == Some(code) {
                return Ok(());
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(self.dir().join("log")).unwrap_or_default();
                return Err(format!("({st})\n{log}"));
            }
            assert!(
                Instant::now() < deadline,
                "{:?} did not answer on 127.0.0.1:{} within 30 s; log:\n{}",
                self.kind,
                self.port,
                std::fs::read_to_string(self.dir().join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `kill -9`, and wait for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL on Unix
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The status of `GET path` on a loopback port (a tiny HTTP/1.0 client: no runtime needed).
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let head = std::str::from_utf8(&buf[..n]).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}

/// An HTTP client for queries (rustls with ring: reqwest is built without a provider).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// Runs InfluxQL on a 1.x server; returns the JSON (`epoch=ns` time stamps).
pub async fn influxql(url: &str, db: &str, q: &str) -> Value {
    let mut u = reqwest::Url::parse(&format!("{url}/query")).unwrap();
    u.query_pairs_mut()
        .append_pair("db", db)
        .append_pair("epoch", "ns")
        .append_pair("q", q);
    let resp = client().post(u).send().await.expect("query request");
    let status = resp.status();
    let v: Value = resp.json().await.expect("query JSON");
    assert!(status.is_success(), "query {q}: HTTP {status}: {v}");
    v
}

/// The series of the first statement's result; panics on an error.
pub fn series(v: &Value) -> Vec<Value> {
    let r = &v["results"][0];
    assert!(r.get("error").is_none(), "query error: {r}");
    r["series"].as_array().cloned().unwrap_or_default()
}

/// One number from `SELECT count(..)`-like queries: the first value of the first row.
pub fn scalar(v: &Value) -> Option<f64> {
    series(v).first()?["values"][0][1].as_f64()
}

/// `CREATE DATABASE`.
pub async fn create_db(url: &str, db: &str) {
    let v = influxql(url, db, &format!("CREATE DATABASE \"{db}\"")).await;
    assert!(v["results"][0].get("error").is_none(), "{v}");
}

/// A running writer.
pub struct Sink {
    /// Producer side.
    pub tx: InfluxSender,
    /// Counters.
    pub stats: Arc<Mutex<InfluxStats>>,
    stop: CancellationToken,
    task: JoinHandle<Result<(), kare::sinks::influx::InfluxError>>,
    /// Keeps the backlog directory alive.
    pub dir: tempfile::TempDir,
}

/// A v1 configuration for a loopback server, with quick retries (tests restart servers).
pub fn v1_config(url: &str, db: &str, site: &str, customer: &str, tier: &str) -> InfluxConfig {
    let mut c = InfluxConfig::v1(url, db);
    c.tags.site = site.into();
    c.tags.customer = customer.into();
    c.tags.tier = tier.into();
    c.flush_interval_s = 0.2;
    c.retry_max_s = 0.5;
    c.timeout_s = 5.0;
    c.stats_interval_s = 0.0;
    c
}

impl Sink {
    /// Starts `run` with a fresh backlog directory.
    pub fn start(cfg: InfluxConfig) -> Sink {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = cfg.with_data_dir(dir.path());
        let stats = Arc::new(Mutex::new(InfluxStats::default()));
        let (tx, rx) = influx::channel(cfg.channel_capacity, stats.clone());
        let stop = CancellationToken::new();
        let stop_rx = stop.clone();
        let task = tokio::spawn(influx::run(cfg, rx, stop_rx, stats.clone()));
        Sink {
            tx,
            stats,
            stop,
            task,
            dir,
        }
    }

    /// A copy of the counters.
    pub fn stats(&self) -> InfluxStats {
        self.stats.lock().unwrap().clone()
    }

    /// Sends points (panics if one is dropped: tests size the channel).
    pub fn send(&self, pts: impl IntoIterator<Item = Point>) -> usize {
        let mut n = 0;
        for p in pts {
            assert!(self.tx.send(p), "channel full");
            n += 1;
        }
        n
    }

    /// Sends points, waiting while the channel is full (a test or benchmark producer may wait;
    /// the service's never does). Each wait counts in `dropped_channel_full`.
    pub async fn send_patiently(&self, pts: impl IntoIterator<Item = Point>) {
        for p in pts {
            while !self.tx.send(p.clone()) {
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
        }
    }

    /// Waits until `cond` holds on the counters, or panics with them after `timeout`.
    pub async fn wait(&self, what: &str, timeout: Duration, cond: impl Fn(&InfluxStats) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.stats();
            if cond(&s) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; stats: {s:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until everything received was written (nothing in memory or the backlog). At
    /// least: a request that timed out after landing is sent again, and counted twice.
    pub async fn wait_all_written(&self, timeout: Duration) {
        self.wait("every point written", timeout, |s| {
            s.memory_points == 0
                && s.backlog_points == 0
                && s.written_points + s.dropped_unencodable + s.rejected_points + s.evicted_points
                    >= s.received_points
        })
        .await;
    }

    /// Stops the writer and waits for it; returns the backlog's directory too.
    pub async fn stop_keeping_backlog(self) -> (InfluxStats, tempfile::TempDir) {
        self.stop.cancel();
        self.task
            .await
            .expect("writer task")
            .expect("writer result");
        let s = self.stats.lock().unwrap().clone();
        (s, self.dir)
    }

    /// Stops the writer and waits for it.
    pub async fn stop(self) -> InfluxStats {
        self.stop.cancel();
        self.task
            .await
            .expect("writer task")
            .expect("writer result");
        let s = self.stats.lock().unwrap().clone();
        s
    }
}

/// VictoriaMetrics: makes freshly written data visible to export.
pub async fn vm_flush(url: &str) {
    let r = client()
        .get(format!("{url}/internal/force_flush"))
        .send()
        .await
        .expect("force_flush");
    assert!(r.status().is_success());
}

/// VictoriaMetrics: writes everything it holds to disk (by taking a snapshot, then deleting it).
pub async fn vm_persist(url: &str) {
    let v: Value = client()
        .get(format!("{url}/snapshot/create"))
        .send()
        .await
        .expect("snapshot")
        .json()
        .await
        .expect("snapshot JSON");
    let name = v["snapshot"].as_str().expect("snapshot name").to_string();
    let _ = client()
        .get(format!("{url}/snapshot/delete?snapshot={name}"))
        .send()
        .await;
}

/// VictoriaMetrics: every series matching `selector`, as (labels, values, timestamps ms).
pub async fn vm_export(url: &str, selector: &str) -> Vec<(Value, Vec<f64>, Vec<i64>)> {
    vm_flush(url).await;
    let mut u = reqwest::Url::parse(&format!("{url}/api/v1/export")).unwrap();
    u.query_pairs_mut().append_pair("match[]", selector);
    let text = client()
        .get(u)
        .send()
        .await
        .expect("export")
        .text()
        .await
        .expect("export body");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("export line");
            let values = v["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap_or(f64::NAN))
                .collect();
            let ts = v["timestamps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect();
            (v["metric"].clone(), values, ts)
        })
        .collect()
}
