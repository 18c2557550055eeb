//! Text decoding and line splitting shared by the cfg, ASCII dat and CSV readers.
//!
//! Recorders write their cfg in whatever code page the engineering PC used. The files kare has
//! met are UTF-8, Windows-1251 (Russian relays) and GB18030 (Chinese relays), so those are the
//! three candidates. Names only matter for display and channel lookup, so a wrong guess costs
//! readability, never data.

use encoding_rs::{GB18030, WINDOWS_1251};
use std::borrow::Cow;

/// The code page a text was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TextEncoding {
    Utf8,
    Gb18030,
    Windows1251,
}

/// Decode file text: UTF-8 when it is valid UTF-8 (a BOM is dropped), else GB18030 or
/// Windows-1251, chosen by [`looks_like_gb18030`].
pub(crate) fn decode(bytes: &[u8]) -> (Cow<'_, str>, TextEncoding) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        return (Cow::Borrowed(s), TextEncoding::Utf8);
    }
    if looks_like_gb18030(bytes) {
        let (text, _) = GB18030.decode_without_bom_handling(bytes);
        (text, TextEncoding::Gb18030)
    } else {
        let (text, _) = WINDOWS_1251.decode_without_bom_handling(bytes);
        (text, TextEncoding::Windows1251)
    }
}

/// Whether non-UTF-8 bytes are better read as GB18030 than as Windows-1251.
///
/// The heuristic, in order:
/// 1. Text that GB18030 cannot decode without errors is Windows-1251 (Windows-1251 maps every
///    byte, so it never fails; Russian words of odd length or followed by a comma or space break
///    GB18030's byte pairs).
/// 2. Otherwise look at the bytes 0x80–0xBF. In Windows-1251 these are rare punctuation and
///    the letters of Ukrainian/Serbian; Russian letters are 0xC0–0xFF. In GB18030 every Chinese
///    character is a byte pair whose second byte is spread over 0x40–0xFE, so roughly a third
///    of the trail bytes (a sixth of all high bytes) land in 0x80–0xBF. If more than 8 % of the
///    high bytes are in 0x80–0xBF, apart from the few symbols common in Russian text (Ё ё № « »
///    ° – — “ ” and the no-break space), the text is GB18030.
///
/// On the sample files: the cp1251 cfgs have 0 % such bytes (and fail GB18030 anyway), the
/// GB18030 cfg 32 %.
fn looks_like_gb18030(bytes: &[u8]) -> bool {
    let (_, had_errors) = GB18030.decode_without_bom_handling(bytes);
    if had_errors {
        return false;
    }
    const COMMON_1251: &[u8] = &[
        0xA8, 0xB8, 0xB9, 0xAB, 0xBB, 0xB0, 0x96, 0x97, 0x93, 0x94, 0xA0, 0x85,
    ];
    let high = bytes.iter().filter(|&&b| b >= 0x80).count();
    let odd = bytes
        .iter()
        .filter(|&&b| (0x80..=0xBF).contains(&b) && !COMMON_1251.contains(&b))
        .count();
    high > 0 && odd * 100 > high * 8
}

/// Text from a file made safe to print in a message: every control character (ESC, BEL, CR,
/// …) and every bidirectional override is written as a `\u{..}` escape.
///
/// A message quoting a hostile file must not drive the terminal it is printed on (`ESC ] 0 ;
/// … BEL` retitles a window, `ESC [ 2 J` clears it) nor reorder what the reader sees (U+202E).
/// Escaping is idempotent: the escaped text holds no such character any more.
pub fn printable(s: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Split text into lines ending in CRLF, LF or a lone CR, numbered from `first_line`.
/// Like [`str::lines`], a final terminator does not start an extra empty line.
pub(crate) fn lines(text: &str, first_line: usize) -> Lines<'_> {
    Lines {
        rest: text,
        number: first_line,
    }
}

/// Iterator returned by [`lines`]: `(line number, line without its terminator)`.
pub(crate) struct Lines<'a> {
    rest: &'a str,
    number: usize,
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let bytes = self.rest.as_bytes();
        let (line, next) = match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(i) if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') => (i, i + 2),
            Some(i) => (i, i + 1),
            None => (bytes.len(), bytes.len()),
        };
        let item = (self.number, &self.rest[..line]);
        self.rest = &self.rest[next..];
        self.number += 1;
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_all_line_endings() {
        let got: Vec<_> = lines("a\r\nb\nc\rd\n\ne", 1).collect();
        assert_eq!(
            got,
            vec![(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, ""), (6, "e")]
        );
        assert_eq!(lines("x\n", 7).collect::<Vec<_>>(), vec![(7, "x")]);
        assert_eq!(lines("", 1).count(), 0);
    }

    #[test]
    fn printable_escapes_control_and_bidi_characters() {
        assert_eq!(printable("Ua"), "Ua");
        let hostile = "\u{1b}]0;pwned\u{7}x\u{202e}y\r";
        let p = printable(hostile);
        assert_eq!(p, "\\u{1b}]0;pwned\\u{7}x\\u{202e}y\\u{d}");
        assert_eq!(printable(&p), p, "idempotent");
    }

    #[test]
    fn decodes_utf8_and_drops_bom() {
        let (t, e) = decode("\u{feff}Ua,°".as_bytes());
        assert_eq!((t.as_ref(), e), ("Ua,°", TextEncoding::Utf8));
    }

    #[test]
    fn tells_cp1251_from_gb18030() {
        let (cyr, _, _) = WINDOWS_1251.encode("Ua_1СШ-110_ТН_110кВ,ЗМН-1 пуск");
        let (t, e) = decode(&cyr);
        assert_eq!(e, TextEncoding::Windows1251);
        assert_eq!(t, "Ua_1СШ-110_ТН_110кВ,ЗМН-1 пуск");

        let (han, _, _) = GB18030.encode("Ua对侧,纵联差动保护,光纤通道一");
        let (t, e) = decode(&han);
        assert_eq!(e, TextEncoding::Gb18030);
        assert_eq!(t, "Ua对侧,纵联差动保护,光纤通道一");
    }

    #[test]
    fn even_russian_that_gb18030_accepts_stays_cp1251() {
        // Two-letter lowercase Russian words form valid GB18030 pairs; the 0x80–0xBF share
        // still says Windows-1251.
        let (cyr, _, _) = WINDOWS_1251.encode("ад,юг,он");
        assert!(!GB18030.decode_without_bom_handling(&cyr).1);
        assert_eq!(decode(&cyr).1, TextEncoding::Windows1251);
    }
}
