//! systemd's notify protocol without systemd: the test binds a Unix datagram socket, runs the
//! built `kare demo` (a store, simulated sources) with `NOTIFY_SOCKET` pointing at it and
//! `WATCHDOG_USEC=400000`, and reads what kare says: `READY=1`, then `WATCHDOG=1` every 200 ms;
//! with the test-only faults `stall-consumer` and `stall-store` the pings stop once the consumer
//! or the store writer stops; a stop says
//! `STOPPING=1`. Every wait is a read with a deadline on the socket, never a sleep.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kare(Child);

impl Drop for Kare {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kare demo` with its notify socket; returns the process and the socket.
fn start(dir: &std::path::Path, fault: Option<&str>) -> (Kare, UnixDatagram) {
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kare"));
    cmd.args(["demo", "--listen", "127.0.0.1:0", "--duration", "60"])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .env_remove("KARE_FAULT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(f) = fault {
        cmd.env("KARE_FAULT", f);
    }
    (Kare(cmd.spawn().unwrap()), sock)
}

/// The next datagram before `deadline` (None when the time is up).
fn next(sock: &UnixDatagram, deadline: Instant) -> Option<String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return None;
    }
    sock.set_read_timeout(Some(left)).unwrap();
    let mut buf = [0u8; 4096];
    match sock.recv(&mut buf) {
        Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        Err(_) => None,
    }
}

/// Reads datagrams until one has `line`; panics with what came when the deadline passes.
fn wait_for(sock: &UnixDatagram, line: &str, within: Duration, seen: &mut Vec<String>) {
    let deadline = Instant::now() + within;
    while let Some(d) = next(sock, deadline) {
        let hit = d.lines().any(|l| l == line);
        seen.push(d);
        if hit {
            return;
        }
    }
    panic!("no {line} within {within:?}; kare said: {seen:?}");
}

#[test]
fn ready_then_watchdog_pings_then_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let (mut kare, sock) = start(dir.path(), None);
    let mut seen = Vec::new();
    wait_for(&sock, "READY=1", Duration::from_secs(60), &mut seen);
    assert!(
        !seen.iter().any(|d| d.contains("WATCHDOG=1")),
        "a ping before READY=1: {seen:?}"
    );
    // Pings every 200 ms: ten of them within a few seconds.
    for _ in 0..10 {
        wait_for(&sock, "WATCHDOG=1", Duration::from_secs(2), &mut seen);
    }
    // SIGTERM (systemd's stop): STOPPING=1.
    let pid = kare.0.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    wait_for(&sock, "STOPPING=1", Duration::from_secs(30), &mut seen);
    let status = kare.0.wait().unwrap();
    assert!(status.success(), "kare demo ended with {status}");
}

#[test]
fn a_stalled_consumer_stops_the_pings() {
    pings_stop_after("stall-consumer=2");
}

#[test]
fn a_stalled_store_writer_stops_the_pings() {
    pings_stop_after("stall-store=2");
}

/// With the fault `stall`, READY=1 and pings come, then stop for good.
fn pings_stop_after(stall: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (mut kare, sock) = start(dir.path(), Some(stall));
    let mut seen = Vec::new();
    wait_for(&sock, "READY=1", Duration::from_secs(60), &mut seen);
    wait_for(&sock, "WATCHDOG=1", Duration::from_secs(2), &mut seen);
    // The loop stops 2 s after it started; the pinger notices within the 1 s minimum stall
    // (plus one period). Read pings until a silence of 3 watchdog periods and more.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let quiet_until = Instant::now() + Duration::from_millis(1500);
        match next(&sock, quiet_until) {
            Some(d) => {
                assert!(
                    Instant::now() < deadline,
                    "pings went on 30 s after {stall}: {d:?}"
                );
            }
            None => break,
        }
    }
    // And they stay stopped.
    assert_eq!(
        next(&sock, Instant::now() + Duration::from_secs(2)),
        None,
        "a ping after the stall"
    );
    // Silent because it stalled, not because it died: kare is still running (systemd would
    // now kill and restart it).
    assert!(
        kare.0.try_wait().unwrap().is_none(),
        "kare exited instead of stalling"
    );
}
