//! The pages and the printable report end to end: `kare demo` prints the pages' address first;
//! while it runs, every page answers in both languages, the report page shows the scenario's
//! sustained outage in its continuity table and its events as links on the ITIC chart, and a
//! bad parameter is a 400 page; afterwards `kare report --format html` writes the same report
//! as one self-contained file. (Chromium's view of the same pages is the browser tests'.)

mod demo_support;

use chrono::{Duration, Utc};
use demo_support::{console_lines, http_get, read_until, Demo};
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn the_demo_serves_every_page_and_the_report_in_both_languages() {
    let data = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/report-scenario.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kare"))
        .args(["demo", "--speed", "0", "--duration", "600"])
        .args(["--listen", "127.0.0.1:0"])
        .arg("--scenario")
        .arg(&scenario)
        .arg("--data-dir")
        .arg(data.path())
        .env("KARE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = console_lines(child.stdout.take().unwrap());
    let mut demo = Demo(child);
    let mut seen = Vec::new();
    read_until(
        &lines,
        &mut seen,
        std::time::Duration::from_secs(120),
        |l| l.contains("TICKET repair") && l.contains("CLOSED") && l.contains("sustained"),
    );
    // The first thing the demo says is where its pages are.
    let first = &seen[0];
    assert!(first.starts_with("kare demo: open http://"), "{first}");
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_string();

    let ok = |path: &str| -> String {
        let (head, body) = http_get(&addr, path);
        assert!(head.contains(" 200 "), "{path}: {head}");
        assert!(head.contains("text/html"), "{path}: {head}");
        body
    };
    for lang in ["en", "zh-CN"] {
        for page in ["/now", "/events", "/tickets", "/report"] {
            let body = ok(&format!("{page}?lang={lang}"));
            assert!(body.contains(&format!("<html lang=\"{lang}\">")), "{page}");
        }
    }
    assert!(ok("/now?lang=zh-CN").contains("实时供电状态"));
    let events = ok("/events?kind=interruption&lang=en");
    assert!(events.contains("href=\"/events/"), "{events}");

    // The report for the days around now: the outage, in words a customer reads.
    let from = (Utc::now() - Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let to = (Utc::now() + Duration::days(2))
        .format("%Y-%m-%d")
        .to_string();
    let report = |lang: &str| {
        ok(&format!(
            "/report?period=custom&from={from}&to={to}&lang={lang}"
        ))
    };
    let zh = report("zh-CN");
    assert!(zh.contains("供电连续性") && zh.contains("长时停电"), "{zh}");
    assert!(zh.contains("5 分 30 秒"), "the 330-s outage: {zh}");
    assert!(
        zh.contains("<a href=\"/events/") && zh.contains("><circle"),
        "ITIC points link to events"
    );
    let en = report("en");
    assert!(
        en.contains("Supply continuity") && en.contains("sustained"),
        "{en}"
    );
    assert!(en.contains("5 min 30 s"), "{en}");

    let (head, body) = http_get(&addr, "/events?limit=0&lang=en");
    assert!(head.contains(" 400 "), "{head}");
    assert!(body.contains("limit"), "{body}");

    unsafe { libc::kill(demo.0.id() as i32, libc::SIGTERM) };
    assert!(demo.0.wait().unwrap().success());

    // The same report as a file.
    let out_file = data.path().join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_kare"))
        .args(["report", "--store"])
        .arg(data.path())
        .args([
            "--from", &from, "--to", &to, "--format", "html", "--lang", "zh-CN", "--out",
        ])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&out_file).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("供电连续性") && html.contains("5 分 30 秒"));
    assert!(html.contains("size: A4 portrait"));
    assert!(
        html.contains("<a href=\"#event-"),
        "points link inside the file"
    );
    assert!(
        !html.contains("<link") && !html.contains("src=\"http"),
        "self-contained"
    );
}
