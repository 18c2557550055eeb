//! The appliance's pages and the printed report in a real browser (issue 12): headless Chromium
//! loads every page of a running `kare demo` in English and in 简体中文, and the tests assert what
//! a person sees there, that the browser logged nothing (no script error, no failed load), and
//! that the report Chromium prints is A4 with its sections, drawn with a real CJK font.
//!
//! Set `KARE_SCREENSHOTS=DIR` to also keep a screenshot of each page in each language
//! (`scripts/screenshots` does, into docs/screenshots).

mod browser_support;
mod demo_support;

use browser_support::{chinese_font, pdf_page_size, pdf_pages, pdf_text, Chromium};
use chrono::{Duration as Days, Utc};
use demo_support::{console_lines, http_get, read_until, Demo};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A demo of `tests/report-scenario.toml` (a dip, a swell, a reclosing sequence, a 330 s
/// outage) run as fast as it goes until the scenario is over.
fn demo_after_the_outage(data: &Path) -> (Demo, String) {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/report-scenario.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kare"))
        .args([
            "demo",
            "--speed",
            "0",
            "--duration",
            "300",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--scenario")
        .arg(&scenario)
        .arg("--data-dir")
        .arg(data)
        .env("KARE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting kare demo");
    let lines = console_lines(child.stdout.take().unwrap());
    let demo = Demo(child);
    let mut seen = Vec::new();
    read_until(&lines, &mut seen, Duration::from_secs(120), |l| {
        l.contains("TICKET repair") && l.contains("CLOSED") && l.contains("sustained")
    });
    // The scenario then ends and the node falls silent: its maintenance ticket is the last
    // change, after which the pages hold still (*Now* reloads itself on each new event).
    read_until(&lines, &mut seen, Duration::from_secs(120), |l| {
        l.contains("TICKET maintenance") && l.contains("OPENED")
    });
    // The pages' address is the first thing the demo prints.
    let first = seen.first().cloned().unwrap_or_default();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split(['/', ' ']).next())
        .unwrap_or_else(|| panic!("the demo's first line is not its pages' URL: {first:?}"))
        .to_string();
    (demo, addr)
}

/// Three days around now: the demo's data clock starts at the wall clock.
fn period() -> (String, String) {
    (
        (Utc::now() - Days::days(1)).format("%Y-%m-%d").to_string(),
        (Utc::now() + Days::days(2)).format("%Y-%m-%d").to_string(),
    )
}

fn api(addr: &str, path: &str) -> Value {
    let (head, body) = http_get(addr, path);
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{path}: {head}\n{body}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

fn screenshots_dir() -> Option<PathBuf> {
    std::env::var_os("KARE_SCREENSHOTS").map(PathBuf::from)
}

#[test]
fn every_page_loads_in_chromium_in_both_languages_and_shows_the_outage() {
    let chromium = Chromium::find();
    let data = tempfile::tempdir().unwrap();
    let (_demo, addr) = demo_after_the_outage(data.path());

    let events = api(&addr, "/api/v1/events?kind=interruption")["events"].clone();
    let outage = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["duration_s"].as_f64().unwrap_or(0.0) > 300.0)
        .unwrap_or_else(|| panic!("the 330 s outage in {events}"))
        .clone();
    let outage_id = outage["id"].as_i64().unwrap();
    let dips = api(&addr, "/api/v1/events?kind=dip")["events"].clone();
    let first_dip = dips
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["extreme_pct"].as_f64().unwrap_or(0.0) > 50.0)
        .min_by_key(|d| d["id"].as_i64())
        .unwrap_or_else(|| panic!("the 60 % dip in {dips}"))
        .clone();
    let dip_id = first_dip["id"].as_i64().unwrap();

    let (from, to) = period();
    let report = format!("/report?period=custom&from={from}&to={to}");
    let pages: Vec<(String, &str)> = vec![
        ("/now".into(), "now"),
        ("/events".into(), "events"),
        (format!("/events/{outage_id}"), "event"),
        ("/tickets".into(), "tickets"),
        (report.clone(), "report"),
    ];
    // What a person reads on each page, per language.
    let words = |lang: &str, page: &str| -> Vec<&'static str> {
        match (lang, page) {
            ("en", "now") => vec!["Supply now", "Demo General Hospital"],
            ("zh-CN", "now") => vec!["实时", "Demo General Hospital"],
            ("en", "events") => vec!["Events"],
            ("zh-CN", "events") => vec!["事件"],
            ("en", "tickets") => vec!["Tickets", "SITE-DEMO-01-outage-"],
            ("zh-CN", "tickets") => vec!["工单", "SITE-DEMO-01-outage-"],
            ("en", "report") => vec![
                "Key-account service report",
                "Supply continuity",
                "Power quality",
            ],
            ("zh-CN", "report") => vec!["大客户供电服务报告", "供电连续性", "电能质量"],
            _ => vec![],
        }
    };
    for lang in ["en", "zh-CN"] {
        for (path, page) in &pages {
            let url = format!("http://{addr}{path}");
            let loaded = chromium.load(&url, lang);
            assert!(
                loaded.console.is_empty(),
                "{lang} {path}: the browser logged:\n{}",
                loaded.console.join("\n")
            );
            let text = loaded.text();
            for w in words(lang, page) {
                assert!(
                    text.contains(w),
                    "{lang} {path}: no {w:?} in what the page shows:\n{text}"
                );
            }
            if let Some(dir) = screenshots_dir() {
                std::fs::create_dir_all(&dir).unwrap();
                let png = dir.join(format!("{page}-{lang}.png"));
                let console = chromium.screenshot(&url, lang, (1280, 1600), &png);
                assert!(console.is_empty(), "{lang} {path}: {console:?}");
                // And as an account manager shows it: a tablet held upright.
                if *page == "report" {
                    let png = dir.join(format!("{page}-{lang}-tablet.png"));
                    let console = chromium.screenshot(&url, lang, (820, 1180), &png);
                    assert!(console.is_empty(), "{lang} {path}: {console:?}");
                }
            }
        }
        // The report: the outage in the continuity table, linked to its event; the first dip a
        // point on the ITIC chart, linked to its page.
        let loaded = chromium.load(&format!("http://{addr}{report}"), lang);
        let dom = &loaded.dom;
        let continuity = dom
            .find("id=\"continuity\"")
            .map(|i| &dom[i..])
            .unwrap_or_else(|| panic!("{lang}: no continuity section"));
        let continuity = &continuity[..continuity.find("</section>").unwrap_or(continuity.len())];
        assert!(
            continuity.contains(&format!("/events/{outage_id}\"")),
            "{lang}: the outage (event {outage_id}) is not in the continuity table:\n{continuity}"
        );
        // The ITIC chart is the SVG labelled with its title ("ITIC (CBEMA) curve" / "… 曲线").
        let itic = dom
            .find("aria-label=\"ITIC")
            .map(|i| &dom[i..])
            .unwrap_or_else(|| panic!("{lang}: no ITIC chart"));
        let itic = &itic[..itic.find("</svg>").unwrap_or(itic.len())];
        assert!(
            itic.contains(&format!("/events/{dip_id}\"")),
            "{lang}: the dip (event {dip_id}) is not a linked point on the ITIC chart"
        );
    }

    // The language switch is remembered (a cookie) over the browser's own preference.
    let (head, _) = http_get(&addr, "/now?lang=zh-CN");
    assert!(
        head.to_ascii_lowercase().contains("set-cookie: lang=zh-cn"),
        "{head}"
    );

    // A bad query parameter is a 400 page that says what is wrong, never a 500.
    let (head, body) = http_get(&addr, "/events?from=yesterday");
    assert!(head.contains(" 400 "), "{head}");
    assert!(body.contains("from"), "{body}");
    let (head, _) = http_get(&addr, &format!("/report?period=custom&from={to}&to={from}"));
    assert!(head.contains(" 400 "), "{head}");
}

#[test]
fn the_printed_report_is_a4_with_its_sections_in_both_languages() {
    let chromium = Chromium::find();
    let data = tempfile::tempdir().unwrap();
    let (demo, _addr) = demo_after_the_outage(data.path());
    // Stop the demo (a clean stop) so the printed report cannot change under the test.
    unsafe { libc::kill(demo.0.id() as i32, libc::SIGTERM) };
    let mut demo = demo;
    let status = demo.0.wait().unwrap();
    assert!(status.success(), "the demo stopped with {status}");

    let (from, to) = period();
    let out = tempfile::tempdir().unwrap();
    for (lang, title, continuity, footer, font) in [
        (
            "en",
            "Key-account service report",
            "Supply continuity",
            "Page {n} of {N}",
            None,
        ),
        (
            "zh-CN",
            "大客户供电服务报告",
            "供电连续性",
            "第 {n} 页，共 {N} 页",
            Some("Noto Sans CJK"),
        ),
    ] {
        let html = out.path().join(format!("report-{lang}.html"));
        let st = Command::new(env!("CARGO_BIN_EXE_kare"))
            .args(["report", "--store"])
            .arg(data.path())
            .args([
                "--from", &from, "--to", &to, "--lang", lang, "--format", "html", "--out",
            ])
            .arg(&html)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        let pdf = out.path().join(format!("report-{lang}.pdf"));
        let console = chromium.print_pdf(&format!("file://{}", html.display()), lang, &pdf);
        assert!(console.is_empty(), "{lang}: {console:?}");
        assert!(
            pdf_page_size(&pdf).contains("(A4)"),
            "{lang}: {}",
            pdf_page_size(&pdf)
        );
        let pages = pdf_pages(&pdf);
        let text = pdf_text(&pdf);
        // Page breaks: each of the five chapters (continuity, power quality, steady state,
        // energy, service) starts a page; this scenario's few events fill one more (6 pages in
        // both languages when written). More than 8 would be a layout that spills.
        assert!((5..=8).contains(&pages), "{lang}: {pages} pages:\n{text}");
        for w in [title, continuity, "Demo General Hospital", "SITE-DEMO-01"] {
            assert!(
                text.contains(w),
                "{lang}: no {w:?} in the printed text:\n{text}"
            );
        }
        // The footer says which page of how many, on every page.
        for n in 1..=pages {
            let f = footer
                .replace("{n}", &n.to_string())
                .replace("{N}", &pages.to_string());
            assert!(text.contains(&f), "{lang}: no footer {f:?}:\n{text}");
        }
        // The page asks for Noto Sans CJK SC first, and it is what this machine has for Chinese
        // (Chromium's PDF names no font: see `chinese_font`); the Chinese text came back out of
        // the PDF above.
        if let Some(f) = font {
            let got = chinese_font();
            assert!(
                got.contains(f),
                "{lang}: Chinese would be drawn in {got:?}, not a CJK font"
            );
        }
    }
}
