//! The identifier table as data: `data/dlt645-identifiers.toml` is embedded and parsed once; a
//! site can add or correct identifiers for its meters with an extra file of the same shape.
//!
//! ```toml
//! [[identifier]]
//! di = "02010100"          # DI3 DI2 DI1 DI0 as the standard writes it
//! name = "Phase A voltage"
//! quantity = "voltage_a"   # kare::sources::meters::readings::Quantity, snake_case; omit when none applies
//! format = "XXX.X"         # the standard's format; fields separated by commas
//! bytes = 2                # data bytes after the DI (must agree with the format)
//! signed = false           # highest bit of the highest byte is the sign
//! unit = "V"
//! checked = "where this entry was checked against the standard"
//! ```
//!
//! Formats: numbers as `XXX.X` (digits, point), date-times `YYMMDDhhmmss` and `YYMMDDhhmm`,
//! several fields as `XX.XXXX,YYMMDDhhmm`, and `load_record` for load-profile blocks (variable
//! length, `bytes = 0`). `record = "power_down"` marks a power-down record (start and end
//! time) and `record = "load_profile"` a load-profile block read, which the poller treats
//! specially.

use super::bcd::{decode_datetime_at, decode_number_at, NumberFormat};
use super::{Di, Error};
use crate::sources::meters::readings::Quantity;
use chrono::NaiveDateTime;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// The built-in table's text (also the documentation of every identifier it knows).
pub const BUILTIN_TOML: &str = include_str!("../../../../../data/dlt645-identifiers.toml");

/// One field of a value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Field {
    /// A BCD number.
    Number {
        /// Digits and decimal point.
        format: NumberFormat,
        /// Whether the top bit is a sign.
        signed: bool,
    },
    /// `YYMMDDhhmmss`, six bytes.
    DateTime,
    /// `YYMMDDhhmm`, five bytes.
    DateTimeMinutes,
}

impl Field {
    /// Bytes on the wire.
    pub fn bytes(self) -> usize {
        match self {
            Field::Number { format, .. } => format.bytes(),
            Field::DateTime => 6,
            Field::DateTimeMinutes => 5,
        }
    }
}

/// Identifiers whose value the poller turns into more than a reading.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// Start and end time of a power-down (`03 11 00 01`…): a `MeterEvent::PowerDown`.
    PowerDown,
    /// A load-profile block read (`06 00 00 0x`): interval readings with the meter's times.
    LoadProfile,
}

/// A decoded field.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Value {
    /// A number, in the identifier's unit.
    Number(f64),
    /// A date-time by the meter's clock; `None` when the meter sent zeros (not recorded).
    Time(Option<NaiveDateTime>),
}

/// What the table says about one identifier.
#[derive(Clone, PartialEq, Debug)]
pub struct Identifier {
    /// The identifier.
    pub di: Di,
    /// What it is, in words.
    pub name: String,
    /// The reading it gives, if one applies (from its first numeric field).
    pub quantity: Option<Quantity>,
    /// The format as written in the table.
    pub format: String,
    /// The fields, in wire order.
    pub fields: Vec<Field>,
    /// Data bytes after the DI (0: variable, for load-profile blocks).
    pub bytes: usize,
    /// The unit of its numbers.
    pub unit: String,
    /// Special handling, if any.
    pub record: Option<Record>,
    /// Where the entry was checked against the standard.
    pub checked: String,
}

impl Identifier {
    /// Decodes the value (the reply's data after the DI, offset removed) into its fields.
    pub fn decode(&self, value: &[u8]) -> Result<Vec<Value>, Error> {
        if self.record == Some(Record::LoadProfile) {
            return Err(Error::Table(format!(
                "{} is a load-profile block: decode it with dlt645::parse_load_records",
                self.di
            )));
        }
        if value.len() != self.bytes {
            return Err(Error::ValueLength {
                di: self.di,
                expected: self.bytes,
                got: value.len(),
            });
        }
        let mut out = Vec::with_capacity(self.fields.len());
        let mut at = 0;
        for field in &self.fields {
            let n = field.bytes();
            // `bytes` agrees with the fields for a parsed table; an entry built by hand might
            // not, and must still not panic.
            let bytes = value.get(at..at + n).ok_or(Error::ValueLength {
                di: self.di,
                expected: at + n,
                got: value.len(),
            })?;
            out.push(match *field {
                Field::Number { format, signed } => {
                    Value::Number(decode_number_at(bytes, format, signed, at)?)
                }
                Field::DateTime | Field::DateTimeMinutes => {
                    Value::Time(decode_datetime_at(bytes, at)?)
                }
            });
            at += n;
        }
        Ok(out)
    }

    /// The reading of a decoded value: its first number, if the identifier has a quantity.
    pub fn reading(&self, values: &[Value]) -> Option<(Quantity, f64)> {
        let q = self.quantity?;
        values.iter().find_map(|v| match v {
            Value::Number(x) => Some((q, *x)),
            Value::Time(_) => None,
        })
    }
}

/// The identifiers known, by DI.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct IdentifierTable {
    by_di: BTreeMap<Di, Identifier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    #[serde(default)]
    identifier: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    di: String,
    name: String,
    #[serde(default)]
    quantity: Option<Quantity>,
    format: String,
    bytes: usize,
    #[serde(default)]
    signed: bool,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    record: Option<Record>,
    #[serde(default)]
    checked: Option<String>,
}

impl IdentifierTable {
    /// The built-in table, parsed on first use.
    pub fn builtin() -> &'static IdentifierTable {
        static TABLE: OnceLock<IdentifierTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            // The embedded file is part of the source and a unit test parses it: a failure
            // here is a build defect, not an input error.
            IdentifierTable::parse(BUILTIN_TOML, "built-in dlt645-identifiers.toml")
                .expect("the built-in identifier table parses (tested)")
        })
    }

    /// A table from TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<IdentifierTable, Error> {
        let raw: RawTable =
            toml::from_str(text).map_err(|e| Error::Table(format!("{origin}: {e}")))?;
        let mut by_di = BTreeMap::new();
        for entry in raw.identifier {
            let id = entry_to_identifier(entry, origin)?;
            let di = id.di;
            if by_di.insert(di, id).is_some() {
                return Err(Error::Table(format!(
                    "{origin}: identifier {di} appears twice"
                )));
            }
        }
        Ok(IdentifierTable { by_di })
    }

    /// This table with the entries of `text` added; an entry for a DI already known replaces
    /// it (a vendor's meter that departs from the standard).
    pub fn with_toml(&self, text: &str, origin: &str) -> Result<IdentifierTable, Error> {
        let extra = IdentifierTable::parse(text, origin)?;
        let mut out = self.clone();
        out.by_di.extend(extra.by_di);
        Ok(out)
    }

    /// This table with the entries of the file at `path` added (see [`Self::with_toml`]).
    pub fn with_file(&self, path: &Path) -> Result<IdentifierTable, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Table(format!("cannot read {}: {e}", path.display())))?;
        self.with_toml(&text, &path.display().to_string())
    }

    /// The entry for `di`.
    pub fn get(&self, di: Di) -> Option<&Identifier> {
        self.by_di.get(&di)
    }

    /// The entry for `di`, or [`Error::UnknownIdentifier`].
    pub fn require(&self, di: Di) -> Result<&Identifier, Error> {
        self.get(di).ok_or(Error::UnknownIdentifier(di))
    }

    /// Every entry, by DI.
    pub fn iter(&self) -> impl Iterator<Item = &Identifier> {
        self.by_di.values()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.by_di.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.by_di.is_empty()
    }
}

fn entry_to_identifier(e: RawEntry, origin: &str) -> Result<Identifier, Error> {
    let di: Di =
        e.di.parse()
            .map_err(|err| Error::Table(format!("{origin}: {err}")))?;
    let what = format!("{origin}: identifier {di} ({})", e.name);
    let fields = if e.format == "load_record" {
        if e.record != Some(Record::LoadProfile) || e.bytes != 0 {
            return Err(Error::Table(format!(
                "{what}: format load_record needs record = \"load_profile\" and bytes = 0"
            )));
        }
        Vec::new()
    } else {
        let mut fields = Vec::new();
        for part in e.format.split(',') {
            let part = part.trim();
            fields.push(match part {
                "YYMMDDhhmmss" => Field::DateTime,
                "YYMMDDhhmm" => Field::DateTimeMinutes,
                number => Field::Number {
                    format: number
                        .parse()
                        .map_err(|err| Error::Table(format!("{what}: {err}")))?,
                    signed: e.signed,
                },
            });
        }
        let total: usize = fields.iter().map(|f| f.bytes()).sum();
        if total != e.bytes {
            return Err(Error::Table(format!(
                "{what}: bytes = {} but format {} takes {total}",
                e.bytes, e.format
            )));
        }
        fields
    };
    match e.record {
        Some(Record::PowerDown) if fields != [Field::DateTime, Field::DateTime] => {
            return Err(Error::Table(format!(
                "{what}: a power-down record is YYMMDDhhmmss,YYMMDDhhmmss"
            )))
        }
        Some(Record::LoadProfile) if e.format != "load_record" => {
            return Err(Error::Table(format!(
                "{what}: a load-profile block has format load_record"
            )))
        }
        _ => {}
    }
    if e.quantity.is_some() && !matches!(fields.first(), Some(Field::Number { .. })) {
        return Err(Error::Table(format!(
            "{what}: a quantity needs a numeric first field"
        )));
    }
    Ok(Identifier {
        di,
        name: e.name,
        quantity: e.quantity,
        format: e.format,
        fields,
        bytes: e.bytes,
        unit: e.unit,
        record: e.record,
        checked: e.checked.unwrap_or_default(),
    })
}
