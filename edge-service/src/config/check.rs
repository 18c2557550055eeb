//! The range checks every section's `validate` uses, so that each refusal says the same things
//! in the same words: the key, the allowed range with its unit, an example, and what was written.
//!
//! Every number a component turns into a `Duration`, a `DateTime` offset or a size has a
//! documented range: out-of-range values (NaN, 1e300, negative) would otherwise panic far from
//! the configuration (`Duration::from_secs_f64`, `DateTime - TimeDelta`) or make nonsense (a
//! negative generator size), long after start.
//!
//! Names that reach the console and the logs (nodes, buses, devices, endpoints, the site) may
//! not hold control characters: an escape sequence in a name would repaint the operator's
//! terminal or forge log lines.

use super::ConfigProblem;

/// The last part of a key (`device[0].poll_every_s` → `poll_every_s`), for examples.
fn leaf(key: &str) -> &str {
    let last = key.rsplit('.').next().unwrap_or(key);
    last.split('[').next().unwrap_or(last)
}

/// A number as a person reads it: huge and tiny ones in exponent form (`3e9`, not ten digits).
fn num(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-4..1e9).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// `v` within `lo..=hi` (`unit` such as "seconds"; `example` a good value, as written in TOML).
pub fn within(
    key: &str,
    v: f64,
    lo: f64,
    hi: f64,
    unit: &str,
    example: &str,
) -> Result<(), ConfigProblem> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        return Ok(());
    }
    Err(ConfigProblem::new(
        key,
        format!(
            "must be from {lo} to {hi} {unit}, e.g. `{} = {example}`; not {}",
            leaf(key),
            num(v)
        ),
    ))
}

/// `v` above `lo` (exclusive) and at most `hi`.
pub fn above(
    key: &str,
    v: f64,
    lo: f64,
    hi: f64,
    unit: &str,
    example: &str,
) -> Result<(), ConfigProblem> {
    if v.is_finite() && v > lo && v <= hi {
        return Ok(());
    }
    Err(ConfigProblem::new(
        key,
        format!(
            "must be more than {lo} and at most {hi} {unit}, e.g. `{} = {example}`; not {}",
            leaf(key),
            num(v)
        ),
    ))
}

/// A name shown on the console and in logs: not blank, at most 64 characters, no control
/// characters.
pub fn name(key: &str, v: &str) -> Result<(), ConfigProblem> {
    if v.trim().is_empty() {
        return Err(ConfigProblem::new(
            key,
            format!("must not be empty, e.g. `{} = \"incomer-1\"`", leaf(key)),
        ));
    }
    if v.chars().count() > 64 {
        return Err(ConfigProblem::new(
            key,
            "must be at most 64 characters: it is printed on every console line and log record",
        ));
    }
    no_control(key, v, false)
}

/// Free text (addresses, notes, paths): control characters refused, except line breaks and
/// tabs where `multiline`.
pub fn text(key: &str, v: &str, multiline: bool) -> Result<(), ConfigProblem> {
    no_control(key, v, multiline)
}

fn no_control(key: &str, v: &str, multiline: bool) -> Result<(), ConfigProblem> {
    match v
        .chars()
        .find(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\t')))
    {
        None => Ok(()),
        Some(c) => Err(ConfigProblem::new(
            key,
            format!(
                "must not contain control characters (found U+{:04X}): terminal escape codes in a \
                 name would garble the console and the logs",
                u32::from(c)
            ),
        )),
    }
}

/// A message safe to print: control characters (which a refused value may carry into it) are
/// shown escaped rather than sent to the terminal.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_range_an_example_and_the_value() {
        let p = within("rules.demand_window_h", 3e9, 1.0, 8760.0, "hours", "168").unwrap_err();
        assert_eq!(p.key, "rules.demand_window_h");
        assert_eq!(
            p.problem,
            "must be from 1 to 8760 hours, e.g. `demand_window_h = 168`; not 3e9"
        );
        assert!(above("x", f64::NAN, 0.0, 1.0, "s", "1").is_err());
        assert!(above("x", 0.0, 0.0, 1.0, "s", "1").is_err());
        assert!(above("x", 1.0, 0.0, 1.0, "s", "1").is_ok());
    }

    #[test]
    fn names_refuse_escape_codes_but_not_unicode() {
        assert!(name("node[0].name", "进线-1").is_ok());
        let p = name("node[0].name", "a\u{1b}[31mred").unwrap_err();
        assert!(p.problem.contains("U+001B"), "{p}");
        assert!(name("n", "  ").is_err());
        assert!(text("site.address", "line 1\nline 2", true).is_ok());
        assert!(text("site.address", "bell\u{7}", true).is_err());
        assert_eq!(printable("a\u{1b}b"), "a\\u{1b}b");
    }
}
