//! Fixtures shared by the end-to-end tests that run the built `kare demo`: the process guard,
//! a plain HTTP GET of its API, its console as a channel of lines read until one matches, and a
//! configuration that routes every ticket to one test webhook.
#![allow(dead_code)] // each test binary uses a part of it

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Stops the demo even when an assertion fails.
pub struct Demo(pub Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` on the demo's API: the response head and body.
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// Console lines until one matches; panics with what was seen when the console ends first or
/// the time is up.
pub fn read_until(
    lines: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let stop = done(&line);
                seen.push(line);
                if stop {
                    return;
                }
            }
            Err(_) => panic!("console ended or timed out:\n{}", seen.join("\n")),
        }
    }
}

/// The demo's console, line by line, from a thread (so a test can wait with a deadline).
pub fn console_lines(stdout: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// A configuration routing repair, generator, PQ-notice and maintenance tickets to the webhook
/// at `url` (the tests' repair desk), retried quickly.
pub fn desk_config(url: &str) -> String {
    format!(
        "[delivery]\nbackoff_base_s = 0.2\nbackoff_max_s = 1.0\n\n\
         [[delivery.endpoint]]\nkind = \"webhook\"\nname = \"desk\"\nurl = \"{url}\"\nsecret = \"kare-test-secret-0123\"\n\n\
         [routes]\nrepair = [\"desk\"]\ngenerator = [\"desk\"]\npq_notice = [\"desk\"]\nmaintenance = [\"desk\"]\n"
    )
}
