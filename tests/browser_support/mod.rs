//! Headless Chromium for the page tests: load a page as a person's browser would, and read back
//! what it shows (the DOM after scripts ran), what it complained about (console messages, failed
//! loads), a screenshot, and the PDF it prints.
//!
//! Chromium is driven through its command line (`--dump-dom`, `--screenshot`, `--print-to-pdf`)
//! rather than the DevTools protocol: every check the tests make needs only the final page, and
//! `--enable-logging=stderr` reports each console message and uncaught error as a `CONSOLE` line.
//! `scripts/browser install` installs Chromium, the Noto CJK fonts and poppler-utils; a missing
//! one fails the test with that instruction (a skipped browser test is not a passing one).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser, found on PATH or at `$KARE_CHROMIUM`.
pub struct Chromium {
    exe: PathBuf,
}

/// What a page load showed.
pub struct Loaded {
    /// The DOM after the load event and the given virtual time (scripts have run).
    pub dom: String,
    /// Every console message and uncaught error, as Chromium logged it.
    pub console: Vec<String>,
}

impl Loaded {
    /// The visible text, roughly: the DOM without tags, whitespace collapsed.
    pub fn text(&self) -> String {
        visible_text(&self.dom)
    }
}

fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("`{name}` is not installed: run scripts/browser install (Chromium, fonts-noto-cjk, poppler-utils)")
    })
}

impl Chromium {
    /// The browser, or a panic that says how to install it.
    pub fn find() -> Chromium {
        let exe = std::env::var_os("KARE_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| tool("chromium"));
        Chromium { exe }
    }

    /// One headless run with a fresh profile (no cookie survives between runs), `lang` as the
    /// browser's Accept-Language, and a window the size of a tablet held upright unless `size`.
    fn run(&self, lang: &str, size: (u32, u32), args: &[String], url: &str) -> (String, String) {
        let profile = tempfile::tempdir().expect("a temporary Chromium profile");
        let mut cmd = Command::new(&self.exe);
        cmd.args([
            "--headless",
            // Tests run as root in CI containers, where Chromium's sandbox cannot start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            // Read the page at its load event, or after 5 s at most: *Now* keeps a server-sent
            // event stream open, so waiting for the network to go idle
            // (`--virtual-time-budget`) would never end.
            "--timeout=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--accept-lang={lang}"))
        .arg(format!("--window-size={},{}", size.0, size.1))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e}; run scripts/browser install",
                self.exe.display()
            )
        });
        let out = wait_with_deadline(child, Duration::from_secs(90), url);
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Loads `url` and returns the DOM and the console.
    pub fn load(&self, url: &str, lang: &str) -> Loaded {
        let (dom, stderr) = self.run(lang, (820, 1180), &["--dump-dom".to_string()], url);
        assert!(
            dom.contains("<body"),
            "Chromium showed nothing of {url}; its log:\n{stderr}"
        );
        Loaded {
            dom,
            console: console_lines(&stderr),
        }
    }

    /// A PNG of the page at `size` (width, height) into `out`; returns the console.
    pub fn screenshot(&self, url: &str, lang: &str, size: (u32, u32), out: &Path) -> Vec<String> {
        let (_, stderr) = self.run(
            lang,
            size,
            &[format!("--screenshot={}", out.display())],
            url,
        );
        assert!(
            out.is_file(),
            "Chromium wrote no screenshot of {url}; its log:\n{stderr}"
        );
        console_lines(&stderr)
    }

    /// The page printed to PDF (A4 as the page's print CSS asks) into `out`; returns the console.
    pub fn print_pdf(&self, url: &str, lang: &str, out: &Path) -> Vec<String> {
        let (_, stderr) = self.run(
            lang,
            (820, 1180),
            &[
                format!("--print-to-pdf={}", out.display()),
                // The page's own header and footer (print CSS), not Chromium's URL and date.
                "--no-pdf-header-footer".to_string(),
            ],
            url,
        );
        assert!(
            out.is_file(),
            "Chromium printed no PDF of {url}; its log:\n{stderr}"
        );
        console_lines(&stderr)
    }
}

fn wait_with_deadline(
    mut child: std::process::Child,
    limit: Duration,
    url: &str,
) -> std::process::Output {
    // Read the pipes on threads so a chatty browser never blocks on a full pipe.
    let mut so = child.stdout.take().expect("piped stdout");
    let mut se = child.stderr.take().expect("piped stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut so, &mut v).ok();
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut se, &mut v).ok();
        v
    });
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting for Chromium") {
            break st;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!("Chromium did not finish loading {url} within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    }
}

/// The console messages in Chromium's log: lines like
/// `[pid:tid:date:INFO:CONSOLE:1] "Uncaught ReferenceError: …", source: http://… (12)`.
pub fn console_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect()
}

/// The text a person reads: tags, scripts and styles removed, entities for `<>&"` decoded,
/// whitespace collapsed.
pub fn visible_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        out.push(' ');
        let tail = &rest[i..];
        let skip_to = |close: &str| tail.find(close).map(|j| j + close.len());
        let lower: String = tail
            .chars()
            .take(8)
            .collect::<String>()
            .to_ascii_lowercase();
        let end = if lower.starts_with("<script") {
            skip_to("</script>")
        } else if lower.starts_with("<style") {
            skip_to("</style>")
        } else {
            tail.find('>').map(|j| j + 1)
        };
        match end {
            Some(e) => rest = &tail[e..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    let decoded = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `pdftotext -layout` of a PDF.
pub fn pdf_text(pdf: &Path) -> String {
    let out = Command::new(tool("pdftotext"))
        .args(["-layout", "-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .expect("running pdftotext");
    assert!(
        out.status.success(),
        "pdftotext failed on {}",
        pdf.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Pages in a PDF (`pdfinfo`).
pub fn pdf_pages(pdf: &Path) -> u32 {
    let out = Command::new(tool("pdfinfo"))
        .arg(pdf)
        .output()
        .expect("running pdfinfo");
    let info = String::from_utf8_lossy(&out.stdout);
    info.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("pdfinfo gave no page count for {}:\n{info}", pdf.display()))
}

/// The page size in PostScript points (`pdfinfo`'s "Page size: 595.92 x 842.88 pts (A4)").
pub fn pdf_page_size(pdf: &Path) -> String {
    let out = Command::new(tool("pdfinfo"))
        .arg(pdf)
        .output()
        .expect("running pdfinfo");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Page size:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The fonts embedded in a PDF (`pdffonts`): proves Chinese was drawn with a real CJK font.
pub fn pdf_fonts(pdf: &Path) -> String {
    let out = Command::new(tool("pdffonts"))
        .arg(pdf)
        .output()
        .expect("running pdffonts");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The font fontconfig gives Chromium for Simplified Chinese (`fc-match "sans-serif:lang=zh-cn"`).
/// Chromium embeds every font in its PDFs as an unnamed Type 3 font, so the PDF cannot say which
/// one drew the Chinese; this says it was a real CJK font, not the boxes of a missing glyph.
pub fn chinese_font() -> String {
    let out = Command::new(tool("fc-match"))
        .args(["sans-serif:lang=zh-cn", "family"])
        .output()
        .expect("running fc-match");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
