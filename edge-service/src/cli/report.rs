//! `kare report` (design.md, contract "kare report"): the key-account service report for one
//! site and a period, read from a store, printed as JSON, written as CSV tables, or as the
//! self-contained HTML document `web` renders.

use crate::report::{self, Period, Report};
use crate::store::{Store, StoreConfig};
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The report's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportLang {
    /// 简体中文.
    ZhCn,
    /// English.
    En,
}

impl ReportLang {
    /// `zh-CN` or `en` (case-insensitive); anything else is a one-line error.
    pub fn parse(s: &str) -> anyhow::Result<ReportLang> {
        match s.to_ascii_lowercase().as_str() {
            "zh-cn" | "zh" => Ok(ReportLang::ZhCn),
            "en" => Ok(ReportLang::En),
            _ => bail!(
                "--lang must be zh-CN or en, not {:?}",
                s.chars().take(32).collect::<String>()
            ),
        }
    }
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    /// Self-contained HTML (A4 portrait).
    Html,
    /// The contract's JSON.
    Json,
    /// One CSV file per table, in a folder.
    Csv,
}

/// What `kare report` was asked.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// `--config`: its `[store]`.
    pub config: Option<PathBuf>,
    /// `--store`: the file or the folder holding `kare.db`.
    pub store: Option<PathBuf>,
    /// `--from`.
    pub from: Option<String>,
    /// `--to`.
    pub to: Option<String>,
    /// `--lang` [default: en].
    pub lang: Option<String>,
    /// `--format`.
    pub format: ReportFormat,
    /// `--out`.
    pub out: Option<PathBuf>,
}

/// The store file named by `--store` (a file, or a folder holding `kare.db`) or by the
/// configuration's `[store]`. It must exist: a report never creates a store.
pub fn store_path(opts: &ReportOptions) -> anyhow::Result<PathBuf> {
    let path = match (&opts.store, &opts.config) {
        (Some(_), Some(_)) => bail!("give --store or --config, not both"),
        (Some(p), None) if p.is_dir() => p.join("kare.db"),
        (Some(p), None) => p.clone(),
        (None, Some(c)) => {
            let cfg = crate::config::Config::load(c)
                .with_context(|| format!("cannot read the configuration {}", c.display()))?;
            cfg.store.unwrap_or_default().path
        }
        (None, None) => bail!(
            "no store: give --store PATH (a store file, or a `kare demo --data-dir` folder) or --config FILE"
        ),
    };
    if !path.is_file() {
        bail!(
            "no store at {}: check the path (--store takes the file or its folder)",
            path.display()
        );
    }
    Ok(path)
}

/// Makes the report: opens the store (a store from an older kare is migrated; one from a newer
/// kare is refused with the reason), reads the period, builds.
pub fn make(opts: &ReportOptions, now: DateTime<Utc>) -> anyhow::Result<Report> {
    let period = Period::parse(opts.from.as_deref(), opts.to.as_deref(), now)?;
    let path = store_path(opts)?;
    let store = Store::open(&StoreConfig::at(&path))
        .with_context(|| format!("cannot open the store {}", path.display()))?;
    let inputs = report::load(&store, &period)
        .with_context(|| format!("cannot read the store {}", path.display()))?;
    Ok(report::build(&inputs, &period, now))
}

/// The HTML document: self-contained, A4 portrait (`web::report_document`).
fn html(r: &Report, lang: ReportLang) -> anyhow::Result<String> {
    let lang = match lang {
        ReportLang::ZhCn => crate::web::Lang::ZhCn,
        ReportLang::En => crate::web::Lang::En,
    };
    Ok(crate::web::report_document(r, lang))
}

/// `kare report`.
pub fn run(opts: &ReportOptions) -> anyhow::Result<()> {
    // Flags first: a bad --lang or a csv without --out is refused before the store is touched.
    let lang = match &opts.lang {
        Some(l) => ReportLang::parse(l)?,
        None => ReportLang::En,
    };
    if opts.format == ReportFormat::Csv && opts.out.is_none() {
        bail!("--format csv writes a folder of tables: give it with --out DIR");
    }
    let r = make(opts, Utc::now())?;
    match opts.format {
        ReportFormat::Json => {
            let text = format!(
                "{}\n",
                serde_json::to_string_pretty(&r).context("cannot write the report as JSON")?
            );
            emit(&text, opts.out.as_deref())
        }
        ReportFormat::Html => emit(&html(&r, lang)?, opts.out.as_deref()),
        ReportFormat::Csv => {
            let dir = opts.out.as_deref().unwrap_or(Path::new("."));
            report::csv::write_folder(&r, dir)
                .with_context(|| format!("cannot write the CSV tables into {}", dir.display()))
        }
    }
}

fn emit(text: &str, out: Option<&Path>) -> anyhow::Result<()> {
    match out {
        Some(p) => std::fs::write(p, text)
            .with_context(|| format!("cannot write the report to {}", p.display())),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|_| stdout.flush())
                .context("cannot write the report to standard output")
        }
    }
}
