//! CSV recordings: a header row (time column, then one column per channel) and one row of
//! numbers per sample.
//!
//! - Separator: `;` if the header has one, else `,`, else a tab. With `;` or tab, a decimal
//!   comma (`0,5`) is accepted, as spreadsheets in many locales write it.
//! - The first column is time in seconds, whatever its name; it must increase from row to row.
//! - Blank lines are skipped, surrounding double quotes and spaces around values are dropped,
//!   a trailing separator is ignored. An empty channel value is missing (NaN).
//! - `start` is `None`, unless the first time value is plainly Unix epoch seconds
//!   (between 1e8 and 1e10, i.e. 1973–2286): then it is that instant, and `time_s` is relative
//!   to the first row either way.

use super::{
    read_file, text, AnalogChannel, DataFormat, Recording, RecordingError, Revision, Scaling,
};
use chrono::{DateTime, Utc};
use std::borrow::Cow;
use std::path::Path;

/// Read a CSV file.
pub fn read(path: &Path) -> Result<Recording, RecordingError> {
    let bytes = read_file(path)?;
    parse(&text::decode(&bytes).0, &path.display().to_string())
}

/// A field without surrounding spaces and double quotes.
fn clean(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .trim()
}

/// Seconds as whole seconds plus a fraction, so that epoch time stamps (1.7e9 s) keep their
/// sub-microsecond digits when made relative to the first row.
fn split_seconds(s: &str, v: f64) -> (i64, f64) {
    let plain = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.bytes().filter(|&b| b == b'.').count() <= 1;
    if plain {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        if let Ok(i) = int.parse::<i64>() {
            let f = if frac.is_empty() {
                0.0
            } else {
                format!("0.{frac}").parse().unwrap_or(0.0)
            };
            return (i, f);
        }
    }
    let whole = v.floor();
    (whole as i64, v - whole)
}

/// Parse CSV text; `file` is quoted in errors, and its name without extension becomes the
/// station name.
pub fn parse(text: &str, file: &str) -> Result<Recording, RecordingError> {
    let problem = |line: usize, problem: String| RecordingError::Csv {
        file: file.to_string(),
        line,
        problem,
    };
    let mut lines = text::lines(text, 1).filter(|(_, l)| !l.trim().is_empty());
    let (header_line, header) = lines.next().ok_or_else(|| {
        problem(
            1,
            "the file is empty: expected a header such as `time,VA,VB,VC`".into(),
        )
    })?;
    let sep = [';', ',', '\t']
        .into_iter()
        .find(|&c| header.contains(c))
        .unwrap_or(',');
    let decimal_comma = sep != ',';
    let mut names: Vec<&str> = header.split(sep).map(clean).collect();
    while names.len() > 1 && names.last().is_some_and(|n| n.is_empty()) {
        names.pop();
    }
    if names.len() < 2 {
        return Err(problem(
            header_line,
            format!("expected a header with a time column and at least one channel, such as `time,VA,VB,VC`; found `{}`", header.trim()),
        ));
    }
    if let Some(k) = names.iter().position(|n| n.is_empty()) {
        return Err(problem(
            header_line,
            format!("column {} has no name in the header", k + 1),
        ));
    }
    let columns = names.len();
    let channels = columns - 1;

    let number = |s: &str| -> Option<f64> {
        let s: Cow<str> = if decimal_comma && s.contains(',') {
            Cow::Owned(s.replace(',', "."))
        } else {
            Cow::Borrowed(s)
        };
        s.parse::<f64>().ok().filter(|v| v.is_finite())
    };

    let mut values: Vec<Vec<f64>> = vec![Vec::new(); channels];
    let mut time_s = Vec::new();
    let mut first: Option<(i64, f64)> = None;
    let mut epoch_start = None;
    let mut fields: Vec<&str> = Vec::with_capacity(columns + 1);
    for (line_no, line) in lines {
        fields.clear();
        fields.extend(line.split(sep).map(clean));
        let mut found = fields.len();
        while found > columns && fields[found - 1].is_empty() {
            found -= 1;
        }
        if found != columns {
            return Err(problem(
                line_no,
                format!("{found} values, but the header names {columns} columns"),
            ));
        }
        let not_a_number = |column: &str, value: &str| RecordingError::CsvNotANumber {
            file: file.to_string(),
            line: line_no,
            column: column.to_string(),
            value: value.to_string(),
        };
        let t_text = fields[0];
        let t = number(t_text).ok_or_else(|| not_a_number(names[0], t_text))?;
        let parts = split_seconds(&t_text.replace(',', "."), t);
        let (i0, f0) = *first.get_or_insert_with(|| {
            if (1e8..1e10).contains(&t) {
                let nanos = ((parts.1 * 1e9).round() as u32).min(999_999_999);
                epoch_start = DateTime::<Utc>::from_timestamp(parts.0, nanos);
            }
            parts
        });
        let rel = (parts.0 - i0) as f64 + (parts.1 - f0);
        if let Some(&previous) = time_s.last() {
            if rel <= previous {
                return Err(RecordingError::TimeNotIncreasing {
                    file: file.to_string(),
                    at: format!("line {line_no}"),
                    previous,
                    value: rel,
                });
            }
        }
        time_s.push(rel);
        for (c, out) in values.iter_mut().enumerate() {
            let s = fields[c + 1];
            out.push(if s.is_empty() {
                f64::NAN
            } else {
                number(s).ok_or_else(|| not_a_number(names[c + 1], s))?
            });
        }
    }

    let analog = names[1..]
        .iter()
        .zip(values)
        .enumerate()
        .map(|(k, (name, values))| {
            let (min, max) = values
                .iter()
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            let (min, max) = if min > max { (0.0, 0.0) } else { (min, max) };
            AnalogChannel {
                index: k as u32 + 1,
                name: name.to_string(),
                phase: String::new(),
                circuit: String::new(),
                unit: String::new(),
                a: 1.0,
                b: 0.0,
                skew_s: 0.0,
                min,
                max,
                primary: 1.0,
                secondary: 1.0,
                scaling: Scaling::Primary,
                values,
            }
        })
        .collect();
    let station = Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Recording {
        station,
        device: String::new(),
        revision: Revision::Y1999,
        line_frequency_hz: None,
        start: epoch_start,
        start_unreadable: None,
        trigger: None,
        samples_declared: None,
        time_s,
        rates: Vec::new(),
        analog,
        digital: Vec::new(),
        data_format: DataFormat::Ascii,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_separated_with_blank_trailing_line() {
        let r = parse("time,VA,VB,VC\n0,1,2,3\n0.001,4,5,6\n\n", "dir/x.csv").unwrap();
        assert_eq!(r.time_s, vec![0.0, 0.001]);
        assert_eq!(r.analog.len(), 3);
        assert_eq!(r.analog("vb").unwrap().values, vec![2.0, 5.0]);
        assert_eq!(r.station, "x");
        assert_eq!(r.start, None);
        assert!(r.rates.is_empty());
        assert_eq!(r.uniform_rate_hz(), Some(1000.0));
    }

    #[test]
    fn semicolons_decimal_commas_quotes() {
        let r = parse(
            "\"t [s]\";\"U1\";U2;\r\n0,5;1,25;-2\r\n0,75;;3;\r\n",
            "x.csv",
        )
        .unwrap();
        assert_eq!(r.time_s, vec![0.0, 0.25]);
        assert_eq!(r.analog[0].name, "U1");
        assert_eq!(r.analog[0].values[0], 1.25);
        assert!(r.analog[0].values[1].is_nan());
        assert_eq!(r.analog[1].values, vec![-2.0, 3.0]);
    }

    #[test]
    fn epoch_seconds_give_a_start() {
        let r = parse("ts,VA\n1700000000.000125,1\n1700000000.000375,2\n", "x.csv").unwrap();
        let start = r.start.unwrap();
        assert_eq!(start.timestamp(), 1_700_000_000);
        assert_eq!(start.timestamp_subsec_nanos(), 125_000);
        assert!((r.time_s[1] - 0.00025).abs() < 1e-12, "{}", r.time_s[1]);
    }

    #[test]
    fn non_numeric_value() {
        let e = parse("time,VA\n0,1\n\n0.1,abc\n", "x.csv").unwrap_err();
        assert!(matches!(e, RecordingError::CsvNotANumber { line: 4, .. }));
        assert_eq!(
            e.to_string(),
            "x.csv line 4: column `VA`: `abc` is not a number"
        );
    }

    #[test]
    fn time_must_increase() {
        let e = parse("time,VA\n0,1\n0.2,1\n0.1,1\n", "x.csv").unwrap_err();
        assert!(matches!(e, RecordingError::TimeNotIncreasing { .. }));
        assert_eq!(
            e.to_string(),
            "x.csv line 4: time 0.1 s is not after the previous sample's 0.2 s (time must increase from sample to sample)"
        );
    }

    #[test]
    fn wrong_column_count_and_bad_header() {
        let e = parse("time,VA,VB\n0,1\n", "x.csv").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.csv line 2: 2 values, but the header names 3 columns"
        );
        let e = parse("time\n0\n", "x.csv").unwrap_err();
        assert!(matches!(e, RecordingError::Csv { line: 1, .. }));
        let e = parse("", "x.csv").unwrap_err();
        assert!(matches!(e, RecordingError::Csv { line: 1, .. }));
    }
}
