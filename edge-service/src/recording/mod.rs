//! Disturbance recordings: COMTRADE (IEEE C37.111-1991/1999/2013) and plain CSV, read into one
//! in-memory [`Recording`] that the replay command analyses.
//!
//! The codecs are pure (they take the file contents and a name to quote in errors); only
//! [`read`], [`comtrade::read_cfg_dat`], [`comtrade::read_cff`], [`csv::read`] and
//! [`comtrade::write`] touch the file system.
//!
//! Errors are meant to be shown to a field engineer as they are: every [`RecordingError`] names
//! the file and, where it applies, the line (cfg, csv) or sample (dat) and says what is wrong.

pub mod comtrade;
pub mod csv;
mod text;

use std::fmt;
use std::path::{Path, PathBuf};

pub use comtrade::WriteFormat;
pub use text::printable;

/// The highest sample rate kare accepts, in samples per second per channel.
///
/// Digital fault and power-quality recorders sample at a few kHz (IEC 61000-4-30 Class A needs
/// no more than that for Urms(1/2)); transient recorders reach about 1 MHz. A cfg rate beyond
/// this is not a recording but a corrupt or hostile file, and taking it at its word would make
/// replay build gigabytes of time axis out of a few kilobytes.
pub const MAX_SAMPLE_RATE_HZ: f64 = 1_000_000.0;

/// A recording in memory: channel definitions, one time axis and the scaled values.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// Station name from the cfg (for CSV: the file name without its extension).
    pub station: String,
    /// Recording device id from the cfg (for CSV: empty).
    pub device: String,
    /// Revision of the standard the cfg declares (CSV: [`Revision::Y1999`], meaningless).
    pub revision: Revision,
    /// Nominal line frequency (`lf`); `None` for CSV or when the cfg gives 0 or nothing.
    pub line_frequency_hz: Option<f64>,
    /// Instant of the first data sample in UTC; `None` when the file does not say (or says
    /// nonsense such as an all-zero date).
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    /// The start date as written (with its cfg line) when the file gives one that is no real
    /// date and time, such as `31/02/2014,25:61:99.999`; `start` is then `None`. An absent or
    /// all-zero date leaves this `None` too.
    pub start_unreadable: Option<String>,
    /// Trigger instant in UTC, as the cfg gives it.
    pub trigger: Option<chrono::DateTime<chrono::Utc>>,
    /// Number of samples the cfg announces (its last `endsamp`, one more for files numbered
    /// from 0); `None` for CSV and for a cfg that gives none. More than
    /// [`Recording::sample_count`] means the data file is shorter than announced (truncated).
    pub samples_declared: Option<u64>,
    /// One entry per sample: seconds after the first sample (the first is 0.0).
    pub time_s: Vec<f64>,
    /// The cfg's sample-rate segments as written (empty when `nrates` is 0, and for CSV).
    pub rates: Vec<SampleRate>,
    /// Analog channels in file order.
    pub analog: Vec<AnalogChannel>,
    /// Status (digital) channels in file order.
    pub digital: Vec<DigitalChannel>,
    /// How the samples were stored.
    pub data_format: DataFormat,
}

/// Revision of C37.111 a cfg declares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Revision {
    /// C37.111-1991 (also any cfg without a revision year).
    Y1991,
    /// C37.111-1999 (also any unknown year such as "1997" or "2000").
    Y1999,
    /// C37.111-2013 (IEC 60255-24:2013).
    Y2013,
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Revision::Y1991 => "1991",
            Revision::Y1999 => "1999",
            Revision::Y2013 => "2013",
        })
    }
}

/// One sample-rate segment of a cfg: `rate_hz` applies up to and including sample number
/// `last_sample`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleRate {
    /// Sample rate in Hz (0 means "use the time stamps").
    pub rate_hz: f64,
    /// Number of the last sample taken at this rate, as written in the cfg.
    pub last_sample: u64,
}

/// Whether a channel's scaled values are primary or secondary quantities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Scaling {
    /// Values are at the primary side of the instrument transformer (`P`).
    #[default]
    Primary,
    /// Values are at the secondary side (`S`).
    Secondary,
}

/// How a COMTRADE data file stores its samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataFormat {
    /// One text line per sample.
    Ascii,
    /// 16-bit integer analog values.
    Binary,
    /// 32-bit integer analog values (2013).
    Binary32,
    /// IEEE 754 single-precision analog values (2013).
    Float32,
}

impl fmt::Display for DataFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataFormat::Ascii => "ASCII",
            DataFormat::Binary => "BINARY",
            DataFormat::Binary32 => "BINARY32",
            DataFormat::Float32 => "FLOAT32",
        })
    }
}

/// An analog channel: its cfg definition and its scaled values.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalogChannel {
    /// Channel number from the cfg (`An`).
    pub index: u32,
    /// Channel id (`ch_id`), trimmed.
    pub name: String,
    /// Phase id (`ph`), trimmed.
    pub phase: String,
    /// Circuit component being monitored (`ccbm`), trimmed.
    pub circuit: String,
    /// Unit (`uu`), trimmed.
    pub unit: String,
    /// Multiplier: value = a·x + b.
    pub a: f64,
    /// Offset: value = a·x + b.
    pub b: f64,
    /// Time skew of this channel against the sample time, in seconds (the cfg gives µs).
    pub skew_s: f64,
    /// Smallest raw value the cfg says the data may hold.
    pub min: f64,
    /// Largest raw value the cfg says the data may hold.
    pub max: f64,
    /// Transformer primary ratio factor (1 when the cfg has none, as in 1991).
    pub primary: f64,
    /// Transformer secondary ratio factor (1 when the cfg has none, as in 1991).
    pub secondary: f64,
    /// Whether the values are primary or secondary quantities.
    pub scaling: Scaling,
    /// a·x + b for every sample, as the file records them; NaN where the file marks a value as
    /// missing.
    pub values: Vec<f64>,
}

/// A status channel: its cfg definition and its states (0 or 1) per sample.
#[derive(Clone, Debug, PartialEq)]
pub struct DigitalChannel {
    /// Channel number from the cfg (`Dn`).
    pub index: u32,
    /// Channel id (`ch_id`), trimmed.
    pub name: String,
    /// Phase id (`ph`), trimmed (empty in 1991).
    pub phase: String,
    /// Circuit component being monitored (`ccbm`), trimmed (empty in 1991).
    pub circuit: String,
    /// Normal state of the input (`y`): 0 or 1.
    pub normal_state: u8,
    /// The state, 0 or 1, at every sample.
    pub values: Vec<u8>,
}

impl Recording {
    /// The analog channel with this name: an exact match on the trimmed name first, then a
    /// case-insensitive one (engineers type `ua` for `Ua`).
    pub fn analog(&self, name: &str) -> Option<&AnalogChannel> {
        let name = name.trim();
        self.analog.iter().find(|c| c.name == name).or_else(|| {
            let lower = name.to_lowercase();
            self.analog.iter().find(|c| c.name.to_lowercase() == lower)
        })
    }

    /// Number of samples (the length of [`Recording::time_s`] and of every channel's values).
    pub fn sample_count(&self) -> usize {
        self.time_s.len()
    }

    /// Whether the data file holds fewer samples than the cfg announces.
    pub fn truncated(&self) -> bool {
        self.samples_declared
            .is_some_and(|n| n > self.sample_count() as u64)
    }

    /// Some(rate) when the whole recording has one sample rate (one rate segment, or time
    /// stamps evenly spaced within 1 %); None for variable-rate files.
    ///
    /// With several segments that all declare the same rate, that declared rate is returned;
    /// otherwise the rate is the mean over the whole record, (n − 1) / duration.
    pub fn uniform_rate_hz(&self) -> Option<f64> {
        let declared = self.rates.first().map(|r| r.rate_hz).unwrap_or(0.0);
        if declared > 0.0
            && declared.is_finite()
            && self.rates.iter().all(|r| r.rate_hz == declared)
        {
            return Some(declared);
        }
        let n = self.time_s.len();
        if n < 2 {
            return None;
        }
        let span = self.time_s[n - 1] - self.time_s[0];
        if !(span > 0.0 && span.is_finite()) {
            return None;
        }
        let mean = span / (n - 1) as f64;
        let even = self
            .time_s
            .windows(2)
            .all(|w| ((w[1] - w[0]) - mean).abs() <= 0.01 * mean);
        even.then(|| 1.0 / mean)
    }
}

/// Read a recording, choosing the format by extension (case-insensitive): `.cfg` (+ its `.dat`,
/// found with either letter case: `x.cfg`→`x.dat`/`x.DAT`, `X.CFG`→`X.DAT`/`X.dat`), `.cff`,
/// `.csv`.
pub fn read(path: &Path) -> Result<Recording, RecordingError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("cfg") => comtrade::read_cfg_dat(path),
        Some("cff") => comtrade::read_cff(path),
        Some("csv") => csv::read(path),
        _ => Err(RecordingError::UnsupportedExtension {
            path: path.to_path_buf(),
        }),
    }
}

/// Why a recording could not be read or written. Every message names the file and, where it
/// applies, the line or the sample, in words meant for the person holding the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The operating system refused to read or write a file.
    #[error("{}: {action}: {reason}", printable(&.path.display().to_string()))]
    Io {
        /// The file.
        path: PathBuf,
        /// "cannot read" or "cannot write".
        action: &'static str,
        /// What the operating system said. Not a `source`: the message already says it, and
        /// a chain-printing caller (`anyhow`'s `{:#}`) would say it twice.
        reason: std::io::Error,
    },

    /// The file name does not say which format the file is in.
    #[error(
        "{}: cannot tell the recording format from the file name: expected a .cfg (with its .dat), .cff or .csv file",
        printable(&.path.display().to_string())
    )]
    UnsupportedExtension {
        /// The file.
        path: PathBuf,
    },

    /// The `.dat` beside a `.cfg` is not there.
    #[error("{}: data file not found (tried {})", printable(&.cfg.display().to_string()), printable(.tried))]
    DataFileNotFound {
        /// The cfg file.
        cfg: PathBuf,
        /// The data file names looked for, comma-separated.
        tried: String,
    },

    /// The cfg ends before a line the standard requires.
    #[error("{} line {line}: the file ends where {} should be", printable(.file), printable(.what))]
    CfgMissingLine {
        /// The cfg file.
        file: String,
        /// The line number where the missing line should be.
        line: usize,
        /// What is missing, e.g. "the data file type (ASCII, BINARY, ...)".
        what: String,
    },

    /// A cfg field that must be a number is not one.
    #[error("{} line {line}: {} is not a number: `{}`", printable(.file), printable(.field), printable(.value))]
    CfgNotANumber {
        /// The cfg file.
        file: String,
        /// Line number in the cfg.
        line: usize,
        /// Which field, e.g. "analog channel 2: multiplier `a`".
        field: String,
        /// The text found.
        value: String,
    },

    /// The channel count line does not add up.
    #[error(
        "{} line {line}: channel counts do not add up: {total} channels in total, but {analog} analog + {digital} digital", printable(.file)
    )]
    ChannelCount {
        /// The cfg file.
        file: String,
        /// Line number in the cfg.
        line: usize,
        /// `TT`.
        total: u64,
        /// `##A`.
        analog: u64,
        /// `##D`.
        digital: u64,
    },

    /// The data file type word is none of the four the standard knows.
    #[error(
        "{} line {line}: unknown data file type `{}` (expected ASCII, BINARY, BINARY32 or FLOAT32)", printable(.file), printable(.word)
    )]
    UnknownDataFormat {
        /// The cfg (or cff) file.
        file: String,
        /// Line number.
        line: usize,
        /// The word found.
        word: String,
    },

    /// Any other malformed cfg line.
    #[error("{} line {line}: {}", printable(.file), printable(.problem))]
    Cfg {
        /// The cfg file.
        file: String,
        /// Line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },

    /// A binary data file ends in the middle of a sample record.
    #[error(
        "{}: {format} data ends inside sample {sample} of {expected} (expected {expected} samples of {record_bytes} bytes)", printable(.file)
    )]
    DatTruncated {
        /// The data file.
        file: String,
        /// BINARY, BINARY32 or FLOAT32.
        format: DataFormat,
        /// 1-based number of the incomplete sample.
        sample: u64,
        /// Number of samples the cfg announces.
        expected: u64,
        /// Size of one sample record in bytes.
        record_bytes: usize,
    },

    /// An ASCII data line has the wrong number of values.
    #[error(
        "{} line {line} (sample {sample}): {found} values, but the cfg announces {expected} (sample number, time stamp, {analog} analog and {digital} digital)", printable(.file)
    )]
    DatFieldCount {
        /// The data file.
        file: String,
        /// Line number in the data file.
        line: usize,
        /// 1-based position of the sample in the file.
        sample: u64,
        /// Values found on the line.
        found: usize,
        /// Values expected: 2 + analog + digital.
        expected: usize,
        /// Analog channels in the cfg.
        analog: usize,
        /// Digital channels in the cfg.
        digital: usize,
    },

    /// An ASCII data value cannot be read.
    #[error("{} line {line} (sample {sample}): {}: `{}` is not {expected}", printable(.file), printable(.field), printable(.value))]
    DatValue {
        /// The data file.
        file: String,
        /// Line number in the data file.
        line: usize,
        /// 1-based position of the sample in the file.
        sample: u64,
        /// Which field, e.g. "analog channel 2 (`IB`)".
        field: String,
        /// The text found.
        value: String,
        /// What it should be: "a number", "0 or 1".
        expected: &'static str,
    },

    /// The time axis must come from the time stamps, and one is missing.
    #[error(
        "{}: sample {sample} has no time stamp, and the cfg gives no sample rate to time it by", printable(.file)
    )]
    MissingTimestamp {
        /// The data file.
        file: String,
        /// 1-based position of the sample in the file.
        sample: u64,
    },

    /// Time goes backwards (or stands still) from one sample to the next.
    #[error(
        "{} {at}: time {value} s is not after the previous sample's {previous} s (time must increase from sample to sample)", printable(.file)
    )]
    TimeNotIncreasing {
        /// The data or CSV file.
        file: String,
        /// "sample 12" (COMTRADE) or "line 17" (CSV).
        at: String,
        /// Time of the previous sample, seconds.
        previous: f64,
        /// Time of this sample, seconds.
        value: f64,
    },

    /// A `.cff` file is not split into sections as the 2013 standard describes.
    #[error("{} line {line}: {}", printable(.file), printable(.problem))]
    Cff {
        /// The cff file.
        file: String,
        /// Line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },

    /// A CSV value that must be a number is not one.
    #[error("{} line {line}: column `{}`: `{}` is not a number", printable(.file), printable(.column), printable(.value))]
    CsvNotANumber {
        /// The CSV file.
        file: String,
        /// Line number.
        line: usize,
        /// Column name from the header.
        column: String,
        /// The text found.
        value: String,
    },

    /// Any other malformed CSV line.
    #[error("{} line {line}: {}", printable(.file), printable(.problem))]
    Csv {
        /// The CSV file.
        file: String,
        /// Line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },

    /// The recording cannot be written as asked.
    #[error("{}: cannot write the recording: {}", printable(&.path.display().to_string()), printable(.problem))]
    Write {
        /// The cfg file to be written.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// Read a whole file, naming it in the error.
fn read_file(path: &Path) -> Result<Vec<u8>, RecordingError> {
    std::fs::read(path).map_err(|reason| RecordingError::Io {
        path: path.to_path_buf(),
        action: "cannot read",
        reason,
    })
}
