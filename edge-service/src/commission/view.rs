//! How a run looks: in a terminal, colour and a progress bar on every step that waits; piped or
//! redirected, plain lines a log keeps; with `--json`, nothing until the signed record on
//! standard output. One [`Ui`] trait, three views; the run does not know which it talks to.

use super::check::{Check, Status, Step};
use crate::web::i18n::Lang;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::time::Duration;

/// What a run tells the person watching.
pub trait Ui {
    /// A step begins.
    fn step(&mut self, step: Step);
    /// Something that takes a while begins (`label` in the crew's language).
    fn wait(&mut self, label: &str);
    /// How far the wait is, 0 to 1.
    fn progress(&mut self, fraction: f64);
    /// The wait is over.
    fn done_waiting(&mut self);
    /// A check ended.
    fn check(&mut self, check: &Check);
    /// A line of its own (the summary, where the record went).
    fn note(&mut self, line: &str);
}

fn colour(status: Status, text: &str, enabled: bool) -> String {
    if !enabled {
        return text.to_string();
    }
    let s = console::style(text).bold();
    match status {
        Status::Pass => s.green(),
        Status::Warn => s.yellow(),
        Status::Fail => s.red(),
    }
    .force_styling(true)
    .to_string()
}

/// Lines for one check: `PASS  summary`, then what was read and what to do.
pub fn check_lines(lang: Lang, c: &Check, styled: bool) -> Vec<String> {
    let mut out = vec![format!(
        "  {}  {}",
        colour(c.status, c.status.word(), styled),
        c.summary
    )];
    if c.status != Status::Pass {
        if let Some(fix) = &c.fix {
            out.push(format!("        {} {fix}", lang.t("cm-fix-label")));
        }
    }
    out
}

/// Step headings in the crew's language.
pub fn step_title(lang: Lang, step: Step) -> String {
    lang.t(&format!("cm-step-{}", step.name()))
}

/// Plain text: one line per step, check and wait; no colour, no cursor movement.
pub struct Plain<W: Write> {
    lang: Lang,
    out: W,
}

impl<W: Write> Plain<W> {
    /// Writes to `out`.
    pub fn new(lang: Lang, out: W) -> Self {
        Plain { lang, out }
    }
}

impl<W: Write> Ui for Plain<W> {
    fn step(&mut self, step: Step) {
        let _ = writeln!(self.out, "\n== {} ==", step_title(self.lang, step));
    }
    fn wait(&mut self, label: &str) {
        let _ = writeln!(self.out, "  ...   {label}");
    }
    fn progress(&mut self, _fraction: f64) {}
    fn done_waiting(&mut self) {}
    fn check(&mut self, check: &Check) {
        for l in check_lines(self.lang, check, false) {
            let _ = writeln!(self.out, "{l}");
        }
    }
    fn note(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}");
    }
}

/// A terminal: coloured statuses, a progress bar while a step waits.
pub struct Terminal {
    lang: Lang,
    bar: Option<ProgressBar>,
}

impl Terminal {
    /// For standard output, which is a terminal.
    pub fn new(lang: Lang) -> Self {
        Terminal { lang, bar: None }
    }
}

impl Ui for Terminal {
    fn step(&mut self, step: Step) {
        let title = console::style(format!("== {} ==", step_title(self.lang, step)))
            .bold()
            .cyan()
            .force_styling(true);
        crate::cli::outln!("\n{title}");
    }
    fn wait(&mut self, label: &str) {
        let bar = ProgressBar::new(1000);
        bar.set_style(
            ProgressStyle::with_template(
                "  {spinner:.cyan} {msg} [{bar:30.cyan/blue}] {percent:>3}%",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bar = Some(bar);
    }
    fn progress(&mut self, fraction: f64) {
        if let Some(b) = &self.bar {
            b.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
        }
    }
    fn done_waiting(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
    fn check(&mut self, check: &Check) {
        let lines = check_lines(self.lang, check, true);
        match &self.bar {
            Some(b) => b.suspend(|| {
                for l in &lines {
                    crate::cli::outln!("{l}");
                }
            }),
            None => {
                for l in &lines {
                    crate::cli::outln!("{l}");
                }
            }
        }
    }
    fn note(&mut self, line: &str) {
        crate::cli::outln!("{line}");
    }
}

/// `--json`: nothing while running (standard output carries only the record).
pub struct Quiet;

impl Ui for Quiet {
    fn step(&mut self, _: Step) {}
    fn wait(&mut self, _: &str) {}
    fn progress(&mut self, _: f64) {}
    fn done_waiting(&mut self) {}
    fn check(&mut self, _: &Check) {}
    fn note(&mut self, _: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_has_no_escape_codes_and_shows_the_fix_of_a_failure() {
        let mut buf = Vec::new();
        let mut ui = Plain::new(Lang::En, &mut buf);
        ui.step(Step::Node);
        ui.check(
            &Check::new(Step::Node, "node.link", "n", Status::Fail, "silent".into())
                .fix("check the cable".into()),
        );
        let text = String::from_utf8(buf).unwrap();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("FAIL  silent"), "{text}");
        assert!(text.contains("check the cable"), "{text}");
    }
}
