//! The 2013 single-file format `.cff`: the cfg, inf, hdr and dat one after the other, each
//! introduced by a line `--- file type: CFG ---` (`INF`, `HDR`, `DAT ASCII`,
//! `DAT BINARY: <bytes>`). The binary section is raw bytes of the given length, so the file is
//! split at the byte level and only the text sections are decoded.

use super::super::{text, DataFormat, Recording, RecordingError};
use super::{assemble, cfg, decode_dat};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Cfg,
    Other,
    DatAscii,
    /// Binary data with the byte count the header gives, if it does.
    DatBinary(Option<usize>),
}

/// A section: its kind, its body and the line number of the body's first line.
struct Section<'a> {
    kind: Kind,
    header_line: usize,
    first_line: usize,
    body: &'a [u8],
}

/// The kind named by a section header line, or `None` if the line is not a header.
fn header_kind(line: &[u8]) -> Option<Kind> {
    let line = std::str::from_utf8(line).ok()?.trim();
    let inner = line
        .strip_prefix("---")?
        .strip_suffix("---")?
        .trim()
        .to_ascii_lowercase();
    let kind = inner.strip_prefix("file type:")?.trim();
    Some(match kind {
        "cfg" => Kind::Cfg,
        "inf" | "hdr" => Kind::Other,
        _ => {
            let dat = kind.strip_prefix("dat")?.trim();
            let (word, size) = dat.split_once(':').unwrap_or((dat, ""));
            match word.trim() {
                "ascii" => Kind::DatAscii,
                "binary" | "binary32" | "float32" => Kind::DatBinary(size.trim().parse().ok()),
                _ => Kind::Other,
            }
        }
    })
}

/// Where the line starting at `pos` ends, and where the next one starts.
fn line_end(bytes: &[u8], pos: usize) -> (usize, usize) {
    match bytes[pos..].iter().position(|&b| b == b'\n' || b == b'\r') {
        None => (bytes.len(), bytes.len()),
        Some(i) => {
            let end = pos + i;
            let crlf = bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n');
            (end, end + if crlf { 2 } else { 1 })
        }
    }
}

/// Split a cff into its sections.
fn sections<'a>(bytes: &'a [u8], file: &str) -> Result<Vec<Section<'a>>, RecordingError> {
    let mut out: Vec<Section<'a>> = Vec::new();
    // Start of the body of the section being read, if it is a text section still open.
    let mut open: Option<(Kind, usize, usize, usize)> = None; // kind, header line, first line, start
    let (mut pos, mut line) = (0, 1);
    while pos < bytes.len() {
        let (end, next) = line_end(bytes, pos);
        if let Some(kind) = header_kind(&bytes[pos..end]) {
            if let Some((k, h, f, s)) = open.take() {
                out.push(Section {
                    kind: k,
                    header_line: h,
                    first_line: f,
                    body: &bytes[s..pos],
                });
            }
            if let Kind::DatBinary(Some(size)) = kind {
                let available = bytes.len() - next;
                if size > available {
                    return Err(RecordingError::Cff {
                        file: file.to_string(),
                        line,
                        problem: format!(
                            "the DAT BINARY section announces {size} bytes, but only {available} follow"
                        ),
                    });
                }
                out.push(Section {
                    kind,
                    header_line: line,
                    first_line: line + 1,
                    body: &bytes[next..next + size],
                });
                // Whatever follows the binary block starts on a fresh line.
                pos = next + size;
                let rest = &bytes[pos..];
                if rest.starts_with(b"\r\n") {
                    pos += 2;
                } else if rest.starts_with(b"\n") || rest.starts_with(b"\r") {
                    pos += 1;
                }
                line += 1;
                continue;
            }
            open = Some((kind, line, line + 1, next));
        }
        pos = next;
        line += 1;
    }
    if let Some((k, h, f, s)) = open {
        out.push(Section {
            kind: k,
            header_line: h,
            first_line: f,
            body: &bytes[s..],
        });
    }
    Ok(out)
}

/// Decode a `.cff` from its bytes.
pub(super) fn parse(bytes: &[u8], file: &str) -> Result<Recording, RecordingError> {
    let sections = sections(bytes, file)?;
    let missing = |what: &str| RecordingError::Cff {
        file: file.to_string(),
        line: 1,
        problem: format!(
            "no `--- file type: {what} ---` section: this is not a COMTRADE .cff file"
        ),
    };
    let cfg_section = sections
        .iter()
        .find(|s| s.kind == Kind::Cfg)
        .ok_or_else(|| missing("CFG"))?;
    let dat_section = sections
        .iter()
        .find(|s| matches!(s.kind, Kind::DatAscii | Kind::DatBinary(_)))
        .ok_or_else(|| missing("DAT ASCII` or `--- file type: DAT BINARY: <bytes>"))?;

    let parsed = cfg::parse_cfg(
        &text::decode(cfg_section.body).0,
        cfg_section.first_line,
        file,
    )?;
    // The section header says whether the data is text; the cfg says which binary layout.
    let format = match (dat_section.kind, parsed.data_format) {
        (Kind::DatAscii, _) => DataFormat::Ascii,
        (_, DataFormat::Ascii) => {
            return Err(RecordingError::Cff {
                file: file.to_string(),
                line: dat_section.header_line,
                problem: format!(
                    "the data section is binary, but the CFG section (line {}) says ASCII",
                    parsed.data_format_line
                ),
            })
        }
        (_, binary) => binary,
    };
    let dat = decode_dat(
        &parsed,
        dat_section.body,
        dat_section.first_line,
        format,
        file,
    )?;
    let mut rec = assemble(parsed, dat, file)?;
    rec.data_format = format;
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "S,D,2013\r\n2,1A,1D\r\n1,IA,,,A,2,0,0,-32767,32767,1,1,P\r\n1,T,,,0\r\n\
        50\r\n1\r\n1000,2\r\n01/01/2020,00:00:00\r\n01/01/2020,00:00:00\r\n";

    #[test]
    fn headers() {
        assert_eq!(header_kind(b"--- file type: CFG ---"), Some(Kind::Cfg));
        assert_eq!(
            header_kind(b" --- File Type: dat binary: 90 --- "),
            Some(Kind::DatBinary(Some(90)))
        );
        assert_eq!(
            header_kind(b"--- file type: DAT ASCII ---"),
            Some(Kind::DatAscii)
        );
        assert_eq!(header_kind(b"--- file type: HDR ---"), Some(Kind::Other));
        assert_eq!(header_kind(b"1,2,3"), None);
    }

    #[test]
    fn binary_section_with_more_sections_after_it() {
        let mut bytes =
            format!("--- file type: CFG ---\r\n{CFG}BINARY\r\n1\r\n0,0\r\n").into_bytes();
        bytes.extend(b"--- file type: DAT BINARY: 24 ---\r\n");
        for (n, x, d) in [(1u32, 5i16, 1u16), (2, -5, 0)] {
            bytes.extend(n.to_le_bytes());
            bytes.extend(0u32.to_le_bytes());
            bytes.extend(x.to_le_bytes());
            bytes.extend(d.to_le_bytes());
        }
        // More sections may follow the binary block.
        bytes.extend(b"\r\n--- file type: HDR ---\r\nnotes\r\n");
        let rec = parse(&bytes, "x.cff").unwrap();
        assert_eq!(rec.analog[0].values, vec![10.0, -10.0]);
        assert_eq!(rec.digital[0].values, vec![1, 0]);
        assert_eq!(rec.data_format, DataFormat::Binary);
    }

    #[test]
    fn short_binary_section() {
        let bytes = format!(
            "--- file type: CFG ---\n{CFG}BINARY\n--- file type: DAT BINARY: 240 ---\n12345"
        );
        let e = parse(bytes.as_bytes(), "x.cff").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.cff line 12: the DAT BINARY section announces 240 bytes, but only 5 follow"
        );
    }

    #[test]
    fn errors_in_the_ascii_section_quote_cff_lines() {
        let bytes = format!(
            "--- file type: CFG ---\n{CFG}ASCII\n--- file type: DAT ASCII ---\n1,0,1,0\n2,0,x,0\n"
        );
        let e = parse(bytes.as_bytes(), "x.cff").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.cff line 14 (sample 2): analog channel 1 (`IA`): `x` is not a number"
        );
    }

    #[test]
    fn not_a_cff() {
        let e = parse(b"hello\n", "x.cff").unwrap_err();
        assert!(matches!(e, RecordingError::Cff { line: 1, .. }));
    }
}
