//! The data file (`.dat`, or the DAT section of a `.cff`): one record per sample, in ASCII or
//! one of the three binary layouts.
//!
//! How many samples are read: the cfg's last `endsamp`. Some recorders number their samples
//! from 0 and give the last number as `endsamp` (one sample more than it says); when the first
//! record's sample number is 0 the limit is therefore `endsamp + 1`. Records beyond the limit
//! are ignored. A file with fewer records is read as far as it goes, as long as it ends on a
//! record boundary: a binary file that stops inside a record, or an ASCII line with the wrong
//! number of values, is an error, so no sample is ever half-invented. When the cfg gives no
//! `endsamp` (or 0), the whole file is read.

use super::super::text;
use super::super::{DataFormat, RecordingError, Revision};
use super::cfg::Cfg;

/// Decoded samples: raw time stamps and scaled values, channel by channel.
#[derive(Debug, Default)]
pub(crate) struct Dat {
    /// Time stamp of every sample in the file's units (before `timemult`); NaN where missing.
    /// Binary time stamps that wrapped around 2³² are unwrapped.
    pub timestamps: Vec<f64>,
    /// a·x + b per analog channel; NaN for missing values.
    pub analog: Vec<Vec<f64>>,
    /// 0/1 per digital channel.
    pub digital: Vec<Vec<u8>>,
    /// The first record's sample number is 0.
    pub zero_based: bool,
}

impl Dat {
    fn with_capacity(cfg: &Cfg, samples: usize) -> Dat {
        Dat {
            timestamps: Vec::with_capacity(samples),
            analog: cfg
                .analog
                .iter()
                .map(|_| Vec::with_capacity(samples))
                .collect(),
            digital: cfg
                .digital
                .iter()
                .map(|_| Vec::with_capacity(samples))
                .collect(),
            zero_based: false,
        }
    }
}

/// How many samples to read, given whether the file numbers them from 0.
fn sample_limit(cfg: &Cfg, zero_based: bool) -> Option<u64> {
    cfg.end_sample.map(|n| n + u64::from(zero_based))
}

/// Decode ASCII data: lines `n,timestamp,A1..Ak,D1..Dm`; blank lines are skipped.
///
/// A blank value is missing (NaN), as is 99999 in a 1999 or 2013 file (those revisions' marker
/// for a missing ASCII value; read as a voltage it would be a huge spike or, once scaled, a
/// false reading). A
/// blank time stamp is missing too; it only matters when the time axis has to come from the
/// stamps. Extra empty fields at the end of a line (a trailing comma) are ignored.
pub(crate) fn parse_ascii(
    text: &str,
    first_line: usize,
    cfg: &Cfg,
    file: &str,
) -> Result<Dat, RecordingError> {
    let (na, nd) = (cfg.analog.len(), cfg.digital.len());
    let expected = 2 + na + nd;
    let missing_99999 = matches!(cfg.revision, Revision::Y1999 | Revision::Y2013);
    // A sample line is at least two characters per value: a cheap bound for the capacity.
    let limit_guess = cfg
        .end_sample
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let guess = (text.len() / (2 * expected)).min(limit_guess.saturating_add(1));
    let mut dat = Dat::with_capacity(cfg, guess);
    let mut limit = None;
    let mut fields: Vec<&str> = Vec::with_capacity(expected + 1);
    let mut sample: u64 = 0;

    for (line_no, line) in text::lines(text, first_line) {
        if line.trim().is_empty() {
            continue;
        }
        if limit.is_some_and(|l| sample >= l) {
            break;
        }
        sample += 1;
        fields.clear();
        fields.extend(line.split(',').map(str::trim));
        let mut found = fields.len();
        while found > expected && fields[found - 1].is_empty() {
            found -= 1;
        }
        if found != expected {
            return Err(RecordingError::DatFieldCount {
                file: file.to_string(),
                line: line_no,
                sample,
                found,
                expected,
                analog: na,
                digital: nd,
            });
        }
        let bad = |field: String, value: &str, expected: &'static str| RecordingError::DatValue {
            file: file.to_string(),
            line: line_no,
            sample,
            field,
            value: value.to_string(),
            expected,
        };
        if sample == 1 {
            dat.zero_based = fields[0] == "0";
            limit = sample_limit(cfg, dat.zero_based);
        }
        let ts = match fields[1] {
            "" => f64::NAN,
            s => s
                .parse()
                .map_err(|_| bad("time stamp".into(), s, "a number"))?,
        };
        dat.timestamps.push(ts);
        for (c, (ch, out)) in cfg.analog.iter().zip(dat.analog.iter_mut()).enumerate() {
            let s = fields[2 + c];
            let x: f64 = if s.is_empty() {
                f64::NAN
            } else {
                s.parse().map_err(|_| {
                    bad(
                        format!("analog channel {} (`{}`)", c + 1, ch.name),
                        s,
                        "a number",
                    )
                })?
            };
            out.push(if missing_99999 && x == 99999.0 {
                f64::NAN
            } else {
                ch.a * x + ch.b
            });
        }
        for (c, (ch, out)) in cfg.digital.iter().zip(dat.digital.iter_mut()).enumerate() {
            let s = fields[2 + na + c];
            let v = match s {
                "0" => 0,
                "1" => 1,
                _ => match s.parse::<f64>() {
                    Ok(0.0) => 0,
                    Ok(1.0) => 1,
                    _ => {
                        return Err(bad(
                            format!("digital channel {} (`{}`)", c + 1, ch.name),
                            s,
                            "0 or 1",
                        ))
                    }
                },
            };
            out.push(v);
        }
    }
    Ok(dat)
}

/// Decode binary data: per sample u32 sample number, u32 time stamp, the analog values (i16,
/// i32 or f32), then the digital channels packed 16 to a u16 word (first channel in the least
/// significant bit); all little-endian.
///
/// 0x8000 (BINARY) and 0x80000000 (BINARY32) mark a missing value and 0xFFFFFFFF a missing
/// time stamp: they become NaN.
pub(crate) fn parse_binary(
    bytes: &[u8],
    cfg: &Cfg,
    format: DataFormat,
    file: &str,
) -> Result<Dat, RecordingError> {
    let record = cfg.record_bytes(format);
    let whole = bytes.len() / record;
    let zero_based = bytes.len() >= 4 && bytes[..4] == [0, 0, 0, 0];
    let limit = sample_limit(cfg, zero_based);
    let n = match limit {
        Some(l) if whole as u64 >= l => l as usize,
        _ if !bytes.len().is_multiple_of(record) => {
            let sample = whole as u64 + 1;
            return Err(RecordingError::DatTruncated {
                file: file.to_string(),
                format,
                sample,
                expected: limit.unwrap_or(sample),
                record_bytes: record,
            });
        }
        _ => whole,
    };

    let mut dat = Dat::with_capacity(cfg, n);
    dat.zero_based = zero_based;
    let scale: Vec<(f64, f64)> = cfg.analog.iter().map(|c| (c.a, c.b)).collect();
    let nd = cfg.digital.len();
    let digital_at = record - 2 * nd.div_ceil(16);
    // u32 time stamps wrap after 2³² units (71 minutes in µs, 4.3 s in ns): unwrap them.
    let mut wraps = 0.0;
    let mut previous: Option<u32> = None;

    for rec in bytes[..n * record].chunks_exact(record) {
        let ts = u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]);
        if ts == u32::MAX {
            dat.timestamps.push(f64::NAN);
        } else {
            if previous.is_some_and(|p| ts < p && p - ts > 1 << 31) {
                wraps += 4_294_967_296.0;
            }
            previous = Some(ts);
            dat.timestamps.push(f64::from(ts) + wraps);
        }
        let values = &rec[8..digital_at];
        match format {
            DataFormat::Binary => {
                for ((v, out), &(a, b)) in values.chunks_exact(2).zip(&mut dat.analog).zip(&scale) {
                    let x = i16::from_le_bytes([v[0], v[1]]);
                    out.push(if x == i16::MIN {
                        f64::NAN
                    } else {
                        a * f64::from(x) + b
                    });
                }
            }
            DataFormat::Binary32 => {
                for ((v, out), &(a, b)) in values.chunks_exact(4).zip(&mut dat.analog).zip(&scale) {
                    let x = i32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                    out.push(if x == i32::MIN {
                        f64::NAN
                    } else {
                        a * f64::from(x) + b
                    });
                }
            }
            DataFormat::Float32 | DataFormat::Ascii => {
                for ((v, out), &(a, b)) in values.chunks_exact(4).zip(&mut dat.analog).zip(&scale) {
                    let x = f32::from_le_bytes([v[0], v[1], v[2], v[3]]);
                    out.push(a * f64::from(x) + b);
                }
            }
        }
        for (w, word) in rec[digital_at..].chunks_exact(2).enumerate() {
            let word = u16::from_le_bytes([word[0], word[1]]);
            for (bit, out) in dat.digital.iter_mut().skip(16 * w).take(16).enumerate() {
                out.push(((word >> bit) & 1) as u8);
            }
        }
    }
    Ok(dat)
}

#[cfg(test)]
mod tests {
    use super::super::cfg::parse_cfg;
    use super::*;

    fn cfg(format: &str, endsamp: u64) -> Cfg {
        let text = format!(
            "S,D,1999\n3,2A,1D\n1,IA,,,A,0.5,1,0,-32767,32767,1,1,P\n2,IB,,,A,2,0,0,-32767,32767,1,1,P\n\
             1,T,,,0\n50\n1\n1000,{endsamp}\n01/01/2020,00:00:00\n01/01/2020,00:00:00\n{format}\n1\n"
        );
        parse_cfg(&text, 1, "x.cfg").unwrap()
    }

    fn record(n: u32, ts: u32, a: &[i16], d: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(n.to_le_bytes());
        v.extend(ts.to_le_bytes());
        for x in a {
            v.extend(x.to_le_bytes());
        }
        v.extend(d.to_le_bytes());
        v
    }

    #[test]
    fn ascii_scales_marks_missing_and_skips_blank_lines() {
        let c = cfg("ASCII", 3);
        let text = "1,0,10,-3,1\r\n\r\n2,1000,,99999,0,\n3,2000,+000004,1.5,1\n4,3000,1,1,1\n";
        let d = parse_ascii(text, 1, &c, "x.dat").unwrap();
        assert_eq!(d.timestamps, vec![0.0, 1000.0, 2000.0]);
        assert_eq!(d.analog[0][0], 6.0);
        assert_eq!(d.analog[0][2], 3.0);
        assert_eq!(d.analog[1][0], -6.0);
        assert_eq!(d.analog[1][2], 3.0);
        assert!(d.analog[0][1].is_nan() && d.analog[1][1].is_nan());
        assert_eq!(d.digital[0], vec![1, 0, 1]);
        assert!(!d.zero_based);
    }

    #[test]
    fn ascii_wrong_value_count() {
        let c = cfg("ASCII", 3);
        let e = parse_ascii("1,0,1,2,0\n\n2,1,1,2\n", 1, &c, "x.dat").unwrap_err();
        assert!(matches!(
            e,
            RecordingError::DatFieldCount {
                line: 3,
                sample: 2,
                found: 4,
                expected: 5,
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "x.dat line 3 (sample 2): 4 values, but the cfg announces 5 \
             (sample number, time stamp, 2 analog and 1 digital)"
        );
    }

    #[test]
    fn ascii_non_numeric_value() {
        let c = cfg("ASCII", 3);
        let e = parse_ascii("1,0,1,2,0\n2,1,1,abc,0\n", 1, &c, "x.dat").unwrap_err();
        assert!(matches!(
            e,
            RecordingError::DatValue {
                line: 2,
                sample: 2,
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "x.dat line 2 (sample 2): analog channel 2 (`IB`): `abc` is not a number"
        );
        let e = parse_ascii("1,0,1,2,2\n", 1, &c, "x.dat").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.dat line 1 (sample 1): digital channel 1 (`T`): `2` is not 0 or 1"
        );
    }

    #[test]
    fn zero_based_numbering_reads_endsamp_plus_one() {
        let c = cfg("ASCII", 2);
        let d = parse_ascii(
            "0,0,1,1,0\n1,1,1,1,0\n2,2,1,1,0\n3,3,1,1,0\n",
            1,
            &c,
            "x.dat",
        )
        .unwrap();
        assert!(d.zero_based);
        assert_eq!(d.timestamps.len(), 3);
    }

    #[test]
    fn without_endsamp_the_whole_file_is_read() {
        let text = "S,D,1999\n1,1A,0D\n1,IA,,,A,1,0,0,0,1\n50\n0\n0,0\n\
                    01/01/2020,00:00:00\n01/01/2020,00:00:00\nASCII\n1\n";
        let c = parse_cfg(text, 1, "x.cfg").unwrap();
        assert_eq!(c.end_sample, None);
        let d = parse_ascii("1,0,5\n2,10,6\n3,20,7\n", 1, &c, "x.dat").unwrap();
        assert_eq!(d.analog[0], vec![5.0, 6.0, 7.0]);
    }

    #[test]
    fn binary_decodes_scales_and_unpacks() {
        let c = cfg("BINARY", 2);
        let mut bytes = record(1, 0, &[10, i16::MIN], 1);
        bytes.extend(record(2, 500, &[-4, 3], 0));
        bytes.extend(record(3, 1000, &[0, 0], 0)); // beyond endsamp: ignored
        let d = parse_binary(&bytes, &c, DataFormat::Binary, "x.dat").unwrap();
        assert_eq!(d.timestamps, vec![0.0, 500.0]);
        assert_eq!(d.analog[0], vec![6.0, -1.0]);
        assert!(d.analog[1][0].is_nan());
        assert_eq!(d.analog[1][1], 6.0);
        assert_eq!(d.digital[0], vec![1, 0]);
    }

    #[test]
    fn binary_short_file_on_a_record_boundary_is_read() {
        let c = cfg("BINARY", 5);
        let bytes = record(1, 0, &[1, 1], 0);
        let d = parse_binary(&bytes, &c, DataFormat::Binary, "x.dat").unwrap();
        assert_eq!(d.timestamps.len(), 1);
    }

    #[test]
    fn binary_truncated_inside_a_record() {
        let c = cfg("BINARY", 5);
        let mut bytes = record(1, 0, &[1, 1], 0);
        bytes.extend(&record(2, 0, &[1, 1], 0)[..7]);
        let e = parse_binary(&bytes, &c, DataFormat::Binary, "x.dat").unwrap_err();
        assert!(matches!(
            e,
            RecordingError::DatTruncated {
                sample: 2,
                expected: 5,
                record_bytes: 14,
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "x.dat: BINARY data ends inside sample 2 of 5 (expected 5 samples of 14 bytes)"
        );
    }

    #[test]
    fn binary_time_stamps_unwrap_and_mark_missing() {
        let c = cfg("BINARY", 3);
        let mut bytes = record(1, u32::MAX - 10, &[0, 0], 0);
        bytes.extend(record(2, 5, &[0, 0], 0));
        bytes.extend(record(3, u32::MAX, &[0, 0], 0));
        let d = parse_binary(&bytes, &c, DataFormat::Binary, "x.dat").unwrap();
        assert_eq!(d.timestamps[1], 4_294_967_296.0 + 5.0);
        assert!(d.timestamps[2].is_nan());
    }

    #[test]
    fn binary32_and_float32() {
        let c = cfg("BINARY32", 1);
        let mut bytes = Vec::new();
        bytes.extend(1u32.to_le_bytes());
        bytes.extend(0u32.to_le_bytes());
        bytes.extend(100_000i32.to_le_bytes());
        bytes.extend(i32::MIN.to_le_bytes());
        bytes.extend(0u16.to_le_bytes());
        let d = parse_binary(&bytes, &c, DataFormat::Binary32, "x.dat").unwrap();
        assert_eq!(d.analog[0], vec![50_001.0]);
        assert!(d.analog[1][0].is_nan());

        let c = cfg("FLOAT32", 1);
        let mut bytes = Vec::new();
        bytes.extend(1u32.to_le_bytes());
        bytes.extend(0u32.to_le_bytes());
        bytes.extend(1.5f32.to_le_bytes());
        bytes.extend((-2.25f32).to_le_bytes());
        bytes.extend(1u16.to_le_bytes());
        let d = parse_binary(&bytes, &c, DataFormat::Float32, "x.dat").unwrap();
        assert_eq!(
            (d.analog[0][0], d.analog[1][0], d.digital[0][0]),
            (1.75, -4.5, 1)
        );
    }
}
