//! Broken files are refused with a typed error whose message names the file and the line
//! (cfg) or sample (dat), in words a field engineer can act on.

use kare::recording::{self, RecordingError};
use std::path::{Path, PathBuf};

const CFG: &str = "Station,Relay,1999\r\n\
    3,2A,1D\r\n\
    1,VA,A,Bus,kV,0.01,0,0,-32767,32767,110,0.1,P\r\n\
    2,VB,B,Bus,kV,0.01,0,0,-32767,32767,110,0.1,P\r\n\
    1,Trip,,CB,0\r\n\
    50\r\n\
    1\r\n\
    1000,4\r\n\
    01/02/2020,10:00:00.000000\r\n\
    01/02/2020,10:00:00.001000\r\n\
    BINARY\r\n\
    1\r\n";

/// One BINARY record of the cfg above: 8 + 2·2 + 2 = 14 bytes.
fn record(n: u32, va: i16, vb: i16, trip: u16) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(n.to_le_bytes());
    v.extend((1000 * (n - 1)).to_le_bytes());
    v.extend(va.to_le_bytes());
    v.extend(vb.to_le_bytes());
    v.extend(trip.to_le_bytes());
    v
}

fn four_records() -> Vec<u8> {
    (1..=4)
        .flat_map(|n| record(n, 100 * n as i16, -5, 0))
        .collect()
}

/// Write `x.cfg` (+ `x.dat` if given) in a fresh directory; return the cfg path.
fn files(cfg: &str, dat: Option<&[u8]>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.cfg");
    std::fs::write(&path, cfg).unwrap();
    if let Some(dat) = dat {
        std::fs::write(dir.path().join("x.dat"), dat).unwrap();
    }
    (dir, path)
}

fn error(cfg: &str, dat: Option<&[u8]>) -> (RecordingError, String) {
    let (dir, path) = files(cfg, dat);
    let e = recording::read(&path).expect_err("the file should be refused");
    // Messages quote the path as given; strip the temporary directory for comparison.
    let msg = e
        .to_string()
        .replace(&format!("{}/", dir.path().display()), "");
    (e, msg)
}

#[test]
fn the_good_file_reads() {
    let (_dir, path) = files(CFG, Some(&four_records()));
    let r = recording::read(&path).unwrap();
    assert_eq!(r.sample_count(), 4);
    assert_eq!(r.analog("VA").unwrap().values, vec![1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn missing_dat() {
    let (e, msg) = error(CFG, None);
    assert!(
        matches!(e, RecordingError::DataFileNotFound { .. }),
        "{e:?}"
    );
    assert_eq!(msg, "x.cfg: data file not found (tried x.dat, x.DAT)");
}

#[test]
fn truncated_binary() {
    let mut dat = four_records();
    dat.truncate(14 * 2 + 5);
    let (e, msg) = error(CFG, Some(&dat));
    assert!(
        matches!(
            e,
            RecordingError::DatTruncated {
                sample: 3,
                expected: 4,
                record_bytes: 14,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        msg,
        "x.dat: BINARY data ends inside sample 3 of 4 (expected 4 samples of 14 bytes)"
    );
}

#[test]
fn short_binary_on_a_record_boundary_is_read_as_far_as_it_goes() {
    let mut dat = four_records();
    dat.truncate(14 * 3);
    let (_dir, path) = files(CFG, Some(&dat));
    assert_eq!(recording::read(&path).unwrap().sample_count(), 3);
}

#[test]
fn non_numeric_cfg_field() {
    let (e, msg) = error(
        &CFG.replace("2,VB,B,Bus,kV,0.01", "2,VB,B,Bus,kV,O.01"),
        Some(&four_records()),
    );
    assert!(
        matches!(e, RecordingError::CfgNotANumber { line: 4, .. }),
        "{e:?}"
    );
    assert_eq!(
        msg,
        "x.cfg line 4: analog channel 2 (`VB`): multiplier `a` is not a number: `O.01`"
    );

    let (e, msg) = error(&CFG.replace("1000,4", "1000,four"), Some(&four_records()));
    assert!(
        matches!(e, RecordingError::CfgNotANumber { line: 8, .. }),
        "{e:?}"
    );
    assert_eq!(
        msg,
        "x.cfg line 8: sample rate 1: last sample number `endsamp` is not a number: `four`"
    );
}

#[test]
fn non_numeric_ascii_value() {
    let cfg = CFG.replace("BINARY", "ASCII");
    let dat = "1,0,1,2,0\r\n2,1000,1,2,0\r\n3,2000,1,2..5,0\r\n4,3000,1,2,0\r\n";
    let (e, msg) = error(&cfg, Some(dat.as_bytes()));
    assert!(
        matches!(
            e,
            RecordingError::DatValue {
                line: 3,
                sample: 3,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        msg,
        "x.dat line 3 (sample 3): analog channel 2 (`VB`): `2..5` is not a number"
    );
}

#[test]
fn wrong_channel_count_in_cfg() {
    let (e, msg) = error(&CFG.replace("3,2A,1D", "3,2A,2D"), Some(&four_records()));
    assert!(
        matches!(
            e,
            RecordingError::ChannelCount {
                line: 2,
                total: 3,
                analog: 2,
                digital: 2,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        msg,
        "x.cfg line 2: channel counts do not add up: 3 channels in total, but 2 analog + 2 digital"
    );
}

#[test]
fn wrong_value_count_in_ascii_dat() {
    let cfg = CFG.replace("BINARY", "ASCII");
    let dat = "1,0,1,2,0\n\n2,1000,1,0\n";
    let (e, msg) = error(&cfg, Some(dat.as_bytes()));
    assert!(
        matches!(
            e,
            RecordingError::DatFieldCount {
                line: 3,
                sample: 2,
                found: 4,
                expected: 5,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        msg,
        "x.dat line 3 (sample 2): 4 values, but the cfg announces 5 (sample number, time stamp, 2 analog and 1 digital)"
    );
}

#[test]
fn unknown_format_word() {
    let (e, msg) = error(&CFG.replace("BINARY", "BINARY64"), Some(&four_records()));
    assert!(
        matches!(e, RecordingError::UnknownDataFormat { line: 11, .. }),
        "{e:?}"
    );
    assert_eq!(msg, "x.cfg line 11: unknown data file type `BINARY64` (expected ASCII, BINARY, BINARY32 or FLOAT32)");
}

#[test]
fn cfg_cut_short() {
    let cut: String = CFG.split_inclusive("\r\n").take(4).collect();
    let (e, msg) = error(&cut, Some(&four_records()));
    assert!(
        matches!(e, RecordingError::CfgMissingLine { line: 5, .. }),
        "{e:?}"
    );
    assert_eq!(
        msg,
        "x.cfg line 5: the file ends where digital channel 1 of 1 should be"
    );
}

#[test]
fn missing_time_stamp_without_sample_rate() {
    let cfg = CFG
        .replace("\r\n1\r\n1000,4\r\n", "\r\n0\r\n0,4\r\n")
        .replace("BINARY", "ASCII");
    let dat = "1,0,1,2,0\n2,1000,1,2,0\n3,,1,2,0\n4,3000,1,2,0\n";
    let (e, msg) = error(&cfg, Some(dat.as_bytes()));
    assert!(
        matches!(e, RecordingError::MissingTimestamp { sample: 3, .. }),
        "{e:?}"
    );
    assert_eq!(
        msg,
        "x.dat: sample 3 has no time stamp, and the cfg gives no sample rate to time it by"
    );
}

#[test]
fn time_stamps_going_backwards_without_sample_rate() {
    let cfg = CFG
        .replace("\r\n1\r\n1000,4\r\n", "\r\n0\r\n0,4\r\n")
        .replace("BINARY", "ASCII");
    let dat = "1,0,1,2,0\n2,1000,1,2,0\n3,500,1,2,0\n";
    let (e, msg) = error(&cfg, Some(dat.as_bytes()));
    assert!(
        matches!(e, RecordingError::TimeNotIncreasing { .. }),
        "{e:?}"
    );
    assert_eq!(
        msg,
        "x.dat sample 3: time 0.0005 s is not after the previous sample's 0.001 s (time must increase from sample to sample)"
    );
}

#[test]
fn unsupported_extension() {
    let e = recording::read(Path::new("/some/where/x.pqd")).unwrap_err();
    assert!(
        matches!(e, RecordingError::UnsupportedExtension { .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "/some/where/x.pqd: cannot tell the recording format from the file name: expected a .cfg (with its .dat), .cff or .csv file"
    );
}

#[test]
fn io_error_names_the_path() {
    let e = recording::read(Path::new("/no/such/dir/x.CFG")).unwrap_err();
    assert!(matches!(e, RecordingError::Io { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("/no/such/dir/x.CFG: cannot read: "),
        "{e}"
    );
}

#[test]
fn cff_without_sections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("y.CFF");
    std::fs::write(&path, CFG).unwrap();
    let e = recording::read(&path).unwrap_err();
    assert!(matches!(e, RecordingError::Cff { line: 1, .. }), "{e:?}");
    assert!(
        e.to_string().ends_with(
            "y.CFF line 1: no `--- file type: CFG ---` section: this is not a COMTRADE .cff file"
        ),
        "{e}"
    );
}

#[test]
fn lenient_cfg_still_reads() {
    // Spaces after commas, LF line endings, blank lines, trailing commas, lower-case format
    // word, upper-case data file name, no timemult line, all-zero dates.
    let cfg = CFG
        .replace("\r\n", "\n")
        .replace("1,VA,A,", "1, VA , A, ")
        .replace("1000,4", "1000, 4,")
        .replace("\n50\n", "\n\n50\n")
        .replace("01/02/2020,10:00:00.000000", "00/00/0000,00:00:00.000000")
        .replace("BINARY\n1\n", "binary\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.cfg");
    std::fs::write(&path, cfg).unwrap();
    std::fs::write(dir.path().join("x.DAT"), four_records()).unwrap();
    let r = recording::read(&path).unwrap();
    assert_eq!(r.analog[0].name, "VA");
    assert_eq!(r.sample_count(), 4);
    assert_eq!(r.start, None);
    assert_eq!(
        r.trigger.map(|t| t.to_rfc3339()),
        Some("2020-02-01T10:00:00.001+00:00".into())
    );
}
