//! TOML syntax and type errors in a scenario, told with the key they are about (`event[2].at_s`)
//! as well as the parser's line and column.

use super::ScenarioError;

/// A one-line error from the TOML parser: line and column, the key when it can be told from the
/// text (`event[1].level_pct`), and the parser's message. The parser's own `Display` is a
/// multi-line snippet; the binary prints one line per error.
pub(super) fn parse_error(text: &str, e: &toml::de::Error) -> ScenarioError {
    let message = e.message().trim().replace('\n', " ");
    // A span over the whole document (a key missing from the top level) locates nothing: saying
    // "line 1" and naming the first key there would mislead.
    let Some(span) = e
        .span()
        .filter(|s| !(s.start == 0 && s.end >= text.trim_end().len()))
    else {
        return ScenarioError::Parse {
            location: String::new(),
            message,
        };
    };
    let at = span.start.min(text.len());
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let column = before[line_start..].chars().count() + 1;
    let location = match key_path(text, line - 1) {
        Some(key) => format!("line {line}, column {column} ({key}): "),
        None => format!("line {line}, column {column}: "),
    };
    ScenarioError::Parse { location, message }
}

/// The dotted key on line `index` (0-based) of `text`, qualified by the table it is in:
/// `event[1].level_pct`, `background.noise_pct`, `nominal_hz`; for a table header line, the
/// table itself (`event[1]`). `None` when the line holds no `key =` (a continued array).
pub(super) fn key_path(text: &str, index: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let line = strip_comment(lines.get(index)?);
    let (header_line, key) = match table_header(line) {
        Some(_) => (index, None),
        None => {
            let (k, _) = line.split_once('=')?;
            let k = k.trim().trim_matches('"').trim_matches('\'');
            if k.is_empty() || k.contains('[') {
                return None;
            }
            let header = (0..index).rev().find(|&i| table_header(lines[i]).is_some());
            match header {
                Some(h) => (h, Some(k.to_string())),
                None => return Some(k.to_string()),
            }
        }
    };
    let (name, array) = table_header(lines[header_line])?;
    let table = if array {
        let n = lines[..header_line]
            .iter()
            .filter(|l| table_header(l) == Some((name, true)))
            .count();
        format!("{name}[{n}]")
    } else {
        name.to_string()
    };
    Some(match key {
        Some(k) => format!("{table}.{k}"),
        None => table,
    })
}

/// `Some((name, is_array_of_tables))` when `line` is a table header such as `[background]` or
/// `[[event]]`.
pub(super) fn table_header(line: &str) -> Option<(&str, bool)> {
    let line = strip_comment(line).trim();
    if let Some(inner) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
        return is_bare_key(inner.trim()).then_some((inner.trim(), true));
    }
    let inner = line.strip_prefix('[')?.strip_suffix(']')?.trim();
    is_bare_key(inner).then_some((inner, false))
}

pub(super) fn is_bare_key(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
}

/// The line without a trailing `# comment` (good enough for keys and headers: a `#` inside a
/// string value only shortens the value part, which is never looked at).
pub(super) fn strip_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(l, _)| l)
}
