//! The configuration file (`.cfg`, or the CFG section of a `.cff`): channel definitions, sample
//! rates, time stamps, data format.
//!
//! Leniency, because real recorders are sloppy: fields are trimmed, blank lines are skipped,
//! empty optional fields take their defaults, lines the revision added later (`timemult`, the
//! 2013 time code) may be missing, an unknown revision year is read as 1999, and an unparseable
//! date is "no date" rather than an error. What stays an error is anything that would change
//! the numbers: a multiplier that is not a number, channel counts that do not add up, an
//! unknown data format.

mod channels;
mod fields;

use channels::{parse_analog, parse_digital, parse_rate_line};
use fields::*;

use crate::recording::text;
use crate::recording::{
    AnalogChannel, DataFormat, DigitalChannel, RecordingError, Revision, SampleRate,
};
use chrono::{DateTime, NaiveDateTime, Utc};

/// A parsed cfg: the channel definitions (with empty `values`) and what is needed to read and
/// time the data.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cfg {
    pub station: String,
    pub device: String,
    pub revision: Revision,
    pub analog: Vec<AnalogChannel>,
    pub digital: Vec<DigitalChannel>,
    pub line_frequency_hz: Option<f64>,
    /// Rate segments as written (empty when `nrates` is 0).
    pub rates: Vec<SampleRate>,
    /// The last `endsamp` (also from the `0,endsamp` line of `nrates` 0); `None` when the cfg
    /// does not give one or gives 0, in which case the whole data file is read.
    pub end_sample: Option<u64>,
    pub start: Option<CfgTime>,
    pub trigger: Option<CfgTime>,
    /// The start date line as written, when it is there but is no real date (`31/02/2014`,
    /// `25:61:99`): an impossible date is not "no date", and replay says so.
    pub start_unreadable: Option<String>,
    pub data_format: DataFormat,
    /// Line of the data format word, for errors about it.
    pub data_format_line: usize,
    /// `timemult`: time stamp unit multiplier (1 when missing).
    pub time_mult: f64,
    /// 2013 `timecode`: offset of the recorder's time stamps from UTC, in seconds
    /// (UTC = local − offset); `None` when absent.
    pub time_code_s: Option<i32>,
}

/// A cfg date/time as written (local to the recorder), and how many fractional second digits
/// it had: more than 6 in a 2013 file means the dat time stamps count nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CfgTime {
    pub local: NaiveDateTime,
    pub fraction_digits: usize,
}

impl Cfg {
    /// Whether dat time stamps are in nanoseconds (2013, date given with nanosecond precision)
    /// rather than microseconds.
    pub fn nanosecond_stamps(&self) -> bool {
        self.revision == Revision::Y2013
            && [self.start, self.trigger]
                .iter()
                .flatten()
                .any(|t| t.fraction_digits > 6)
    }

    /// A cfg time in UTC: the time stamps are local to the recorder, offset from UTC by the
    /// 2013 time code (no time code: take them as UTC).
    pub fn utc(&self, t: Option<CfgTime>) -> Option<DateTime<Utc>> {
        let local = t?.local;
        let offset = chrono::Duration::seconds(i64::from(self.time_code_s.unwrap_or(0)));
        local.checked_sub_signed(offset).map(|t| t.and_utc())
    }

    /// Number of bytes in one sample record of a binary data file.
    pub fn record_bytes(&self, format: DataFormat) -> usize {
        let width = match format {
            DataFormat::Binary => 2,
            _ => 4,
        };
        8 + self.analog.len() * width + 2 * self.digital.len().div_ceil(16)
    }
}

/// The non-blank lines of a cfg with their numbers, read front to back.
struct Cursor<'a> {
    lines: Vec<(usize, &'a str)>,
    pos: usize,
    /// Number to quote when the file ends early.
    end_line: usize,
    file: &'a str,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<(usize, &'a str)> {
        self.lines.get(self.pos).copied()
    }

    fn next(&mut self, what: impl FnOnce() -> String) -> Result<(usize, &'a str), RecordingError> {
        let line = self.peek().ok_or_else(|| RecordingError::CfgMissingLine {
            file: self.file.to_string(),
            line: self.end_line,
            what: what(),
        })?;
        self.pos += 1;
        Ok(line)
    }

    fn remaining(&self) -> usize {
        self.lines.len() - self.pos
    }

    fn not_a_number(&self, line: usize, field: String, value: &str) -> RecordingError {
        RecordingError::CfgNotANumber {
            file: self.file.to_string(),
            line,
            field,
            value: value.to_string(),
        }
    }

    fn problem(&self, line: usize, problem: String) -> RecordingError {
        RecordingError::Cfg {
            file: self.file.to_string(),
            line,
            problem,
        }
    }

    /// A required number.
    fn number(
        &self,
        line: usize,
        value: &str,
        field: impl FnOnce() -> String,
    ) -> Result<f64, RecordingError> {
        parse_number(value).ok_or_else(|| self.not_a_number(line, field(), value))
    }

    /// An optional number: empty means `default`.
    fn number_or(
        &self,
        line: usize,
        value: Option<&&str>,
        default: f64,
        field: impl FnOnce() -> String,
    ) -> Result<f64, RecordingError> {
        match value {
            None | Some(&"") => Ok(default),
            Some(v) => self.number(line, v, field),
        }
    }

    /// A count (non-negative integer), optionally written with a trailing letter (`24A`).
    fn count(
        &self,
        line: usize,
        value: &str,
        suffix: Option<char>,
        field: impl FnOnce() -> String,
    ) -> Result<u64, RecordingError> {
        let digits = match suffix {
            Some(c) if ends_with_letter(value, c) => value[..value.len() - 1].trim(),
            _ => value,
        };
        parse_count(digits).ok_or_else(|| self.not_a_number(line, field(), value))
    }
}

/// Parse cfg text (already decoded). `first_line` is the number of the text's first line in
/// its file (1, or later inside a `.cff`); `file` is the name to quote in errors.
pub(crate) fn parse_cfg(text: &str, first_line: usize, file: &str) -> Result<Cfg, RecordingError> {
    let all: Vec<(usize, &str)> = text::lines(text, first_line).collect();
    let end_line = all.last().map_or(first_line, |(n, _)| n + 1);
    let lines = all
        .into_iter()
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let mut cur = Cursor {
        lines,
        pos: 0,
        end_line,
        file,
    };

    // station_name,rec_dev_id,rev_year
    let (_, l) = cur.next(|| "the station name, device id and revision year".into())?;
    let f = fields(l);
    let station = f[0].to_string();
    let device = f.get(1).copied().unwrap_or("").to_string();
    let revision = match f.get(2).copied().unwrap_or("") {
        "" | "1991" => Revision::Y1991,
        "2013" => Revision::Y2013,
        // 1999 and anything unknown ("1997", "2000"): the 1999 layout is the common one.
        _ => Revision::Y1999,
    };

    // TT,##A,##D
    let (ln, l) = cur.next(|| "the channel counts (TT,##A,##D)".into())?;
    let f = fields(l);
    if f.len() < 3 {
        return Err(cur.problem(
            ln,
            format!(
                "expected the channel counts `TT,##A,##D`, found `{}`",
                l.trim()
            ),
        ));
    }
    // Some writers put the digital count first; the letters say which is which.
    let (fa, fd) = if ends_with_letter(f[1], 'D') && ends_with_letter(f[2], 'A') {
        (f[2], f[1])
    } else {
        (f[1], f[2])
    };
    let total = cur.count(ln, f[0], None, || "total number of channels `TT`".into())?;
    let n_analog = cur.count(ln, fa, Some('A'), || {
        "number of analog channels `##A`".into()
    })?;
    let n_digital = cur.count(ln, fd, Some('D'), || {
        "number of digital channels `##D`".into()
    })?;
    if n_analog.checked_add(n_digital) != Some(total) {
        return Err(RecordingError::ChannelCount {
            file: file.to_string(),
            line: ln,
            total,
            analog: n_analog,
            digital: n_digital,
        });
    }
    // The counts are untrusted: never reserve more than the lines that could hold them.
    let remaining = cur.remaining();
    let cap = |n: u64| (n as usize).min(remaining);

    let mut analog = Vec::with_capacity(cap(n_analog));
    for k in 1..=n_analog {
        analog.push(parse_analog(&mut cur, k, n_analog)?);
    }
    let mut digital = Vec::with_capacity(cap(n_digital));
    for k in 1..=n_digital {
        digital.push(parse_digital(&mut cur, k, n_digital)?);
    }

    // lf
    let (ln, l) = cur.next(|| "the line frequency".into())?;
    let f = fields(l);
    let lf = cur.number_or(ln, f.first(), 0.0, || "line frequency `lf`".into())?;
    let line_frequency_hz = (lf > 0.0).then_some(lf);

    // nrates, then nrates lines samp,endsamp
    let (ln, l) = cur.next(|| "the number of sample rates `nrates`".into())?;
    let f = fields(l);
    let nrates = if f[0].is_empty() {
        0
    } else {
        parse_count(f[0])
            .ok_or_else(|| cur.not_a_number(ln, "number of sample rates `nrates`".into(), f[0]))?
    };
    let mut rates = Vec::with_capacity(cap(nrates));
    let mut end_sample = None;
    for j in 1..=nrates {
        let (ln, l) = cur.next(|| format!("sample rate {j} of {nrates} (`samp,endsamp`)"))?;
        let (rate_hz, last_sample) = parse_rate_line(&cur, ln, l, &format!("sample rate {j}"))?;
        rates.push(SampleRate {
            rate_hz,
            last_sample,
        });
        end_sample = Some(last_sample);
    }
    if nrates == 0 {
        // The standard wants `0,endsamp` here; some writers leave it out, so only take the line
        // when it is not already the start date.
        if let Some((ln, l)) = cur.peek().filter(|(_, l)| !l.contains('/')) {
            cur.pos += 1;
            end_sample = Some(parse_rate_line(&cur, ln, l, "sample count line")?.1);
        }
    }
    let end_sample = end_sample.filter(|&n| n > 0);

    // Start and trigger date/time: an unreadable date is "unknown", never an error here; an
    // impossible start date (as opposed to an absent or all-zero one) is kept as written so
    // that the reader can be told.
    fn date_line<'a>(
        cur: &mut Cursor<'a>,
        revision: Revision,
    ) -> Option<(usize, &'a str, Option<CfgTime>)> {
        match cur.peek() {
            Some((ln, l)) if data_format_word(fields(l)[0]).is_none() => {
                cur.pos += 1;
                Some((ln, l, parse_date(l, revision)))
            }
            _ => None,
        }
    }
    let start_line = date_line(&mut cur, revision);
    let start = start_line.and_then(|(_, _, d)| d);
    let start_unreadable = start_line
        .filter(|(_, l, d)| d.is_none() && !date_not_set(l))
        .map(|(ln, l, _)| format!("line {ln}: `{}`", l.trim()));
    let trigger = date_line(&mut cur, revision).and_then(|(_, _, d)| d);

    // ft
    let (data_format_line, l) =
        cur.next(|| "the data file type (ASCII, BINARY, BINARY32 or FLOAT32)".into())?;
    let word = fields(l)[0];
    let data_format = data_format_word(word).ok_or_else(|| RecordingError::UnknownDataFormat {
        file: file.to_string(),
        line: data_format_line,
        word: word.to_string(),
    })?;

    // timemult (1999+): optional.
    let mut time_mult = 1.0;
    if let Some((ln, l)) = cur.peek() {
        let v = fields(l)[0];
        match parse_number(v) {
            Some(m) => {
                cur.pos += 1;
                // 0 or negative makes no sense as a unit; read it as the default.
                if m > 0.0 {
                    time_mult = m;
                }
            }
            // 1991 has no timemult: whatever follows is not ours to judge.
            None if revision == Revision::Y1991 || v.is_empty() => {}
            None => {
                return Err(cur.not_a_number(ln, "time stamp multiplier `timemult`".into(), v));
            }
        }
    }

    // 2013: timecode,localcode then tmq_code,leapsec (informational, ignored).
    let mut time_code_s = None;
    if revision == Revision::Y2013 {
        if let Some((ln, l)) = cur.peek() {
            cur.pos += 1;
            let code = fields(l)[0];
            time_code_s = parse_time_code(code).map_err(|()| {
                cur.problem(
                    ln,
                    format!(
                        "time code `{code}` is not an offset from UTC like `-5h30`, `+8` or `0`"
                    ),
                )
            })?;
        }
    }

    Ok(Cfg {
        station,
        device,
        revision,
        analog,
        digital,
        line_frequency_hz,
        rates,
        end_sample,
        start,
        trigger,
        start_unreadable,
        data_format,
        data_format_line,
        time_mult,
        time_code_s,
    })
}

#[cfg(test)]
mod tests;
