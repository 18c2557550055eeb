//! The printable commissioning record: one self-contained HTML page (inline CSS, A4), in the
//! crew's language, that the customer and the desk sign on paper. The signed JSON stays the
//! record of truth; the page shows the public key and signature so a printout can be matched.

use super::check::Status;
use super::record::Record;
use super::view::step_title;
use crate::web::i18n::Lang;
use maud::{html, Markup, PreEscaped, DOCTYPE};

const CSS: &str = "
@page { size: A4; margin: 16mm 14mm; }
body { font-family: 'Noto Sans', 'Noto Sans CJK SC', sans-serif; font-size: 10pt; color: #111; }
h1 { font-size: 16pt; margin: 0 0 4pt; }
h2 { font-size: 12pt; margin: 14pt 0 4pt; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; }
td, th { border: 1px solid #bbb; padding: 3pt 4pt; vertical-align: top; text-align: left; }
th { background: #eee; }
.pass { color: #176b1a; font-weight: bold; }
.warn { color: #8a5a00; font-weight: bold; }
.fail { color: #b00020; font-weight: bold; }
.small { font-size: 8pt; color: #444; word-break: break-all; }
.sign td { height: 28pt; }
tr { page-break-inside: avoid; }
";

fn class(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Warn => "warn",
        Status::Fail => "fail",
    }
}

/// The page for `rec`, whose signed file is `signed`.
pub fn render(lang: Lang, rec: &Record, signed: &str) -> String {
    let (p, w, f) = rec.counts();
    let sig: serde_json::Value = serde_json::from_str(signed).unwrap_or_default();
    let key = sig["signature"]["public_key"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let value = sig["signature"]["value"].as_str().unwrap_or("").to_string();
    let mut steps: Vec<_> = rec.checks.iter().map(|c| c.step).collect();
    steps.dedup();
    let page: Markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                title { (lang.t("cm-page-title")) " " (rec.site_id) }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { (lang.t("cm-page-title")) }
                table {
                    tr { th { (lang.t("cm-page-site")) } td { (rec.site_id) " " (rec.customer) } }
                    tr { th { (lang.t("cm-page-crew")) } td { (rec.crew) } }
                    tr { th { (lang.t("cm-page-when")) } td { (rec.started_at) " – " (rec.finished_at) " (UTC)" } }
                    tr { th { (lang.t("cm-page-appliance")) } td { (rec.host) ", kare " (rec.version) ", " (rec.config) } }
                    tr {
                        th { (lang.t("cm-page-verdict")) }
                        td {
                            span class=(class(rec.verdict)) { (rec.verdict.word()) }
                            " " (lang.ta("cm-summary-counts", &[("pass", &p.to_string()), ("warn", &w.to_string()), ("fail", &f.to_string())]))
                        }
                    }
                }
                @for step in &steps {
                    h2 { (step_title(lang, *step)) }
                    table {
                        @for c in rec.checks.iter().filter(|c| c.step == *step) {
                            tr {
                                td class=(class(c.status)) style="width:3em" { (c.status.word()) }
                                td {
                                    (c.summary)
                                    @if c.status != Status::Pass {
                                        @if let Some(fix) = &c.fix { br; em { (lang.t("cm-fix-label")) " " (fix) } }
                                    }
                                    @if !c.readings.is_empty() {
                                        div class="small" {
                                            @for (i, r) in c.readings.iter().enumerate() {
                                                @if i > 0 { "; " }
                                                (r.name) " = " (reading_text(&r.value)) @if let Some(u) = &r.unit { " " (u) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                h2 { (lang.t("cm-page-signatures")) }
                table class="sign" {
                    tr { th { (lang.t("cm-page-crew-sign")) } td {} th { (lang.t("cm-page-customer-sign")) } td {} }
                }
                p class="small" {
                    (lang.t("cm-page-key")) " " (key) br;
                    (lang.t("cm-page-signature")) " " (value) br;
                    (lang.t("cm-page-verify"))
                }
            }
        }
    };
    page.into_string()
}

fn reading_text(v: &super::check::Value) -> String {
    match v {
        super::check::Value::Number(x) => {
            if x.fract() == 0.0 && x.abs() < 1e15 {
                format!("{x:.0}")
            } else {
                format!("{x:.3}")
            }
        }
        super::check::Value::Bool(b) => b.to_string(),
        super::check::Value::Text(t) => t.clone(),
    }
}
