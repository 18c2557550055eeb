//! Device profiles: what a meter model keeps in which Modbus register, as data.
//!
//! Every vendor has its own register map (float32 or scaled integers, either word order), so a
//! meter model is described by a TOML file rather than by code (`profiles/modbus/README.md`
//! says how to write one). The maps of the meters kare ships are compiled in and selected by
//! name ([`builtin_profile`]); any other file is read with [`load_profile`]. Both go through
//! the same validation, whose messages name the file, the register and the field:
//!
//! ```text
//! dtsu666.toml: register "Ua": type "f23" is not one of u16, i16, u32, i32, u64, f32
//! ```

use crate::sources::meters::readings::Quantity;
use serde::de::IntoDeserializer;
use serde::Deserialize;
use std::path::Path;

use super::register::VALUE_TYPES;
pub use super::register::{Register, RegisterKind, ValueType, WordOrder};
use thiserror::Error;

/// The most registers one Modbus read may ask for (function 03/04, spec limit 125).
pub const MAX_REGISTERS_PER_READ: u16 = 125;

/// Default for [`Profile::max_gap`]: reading a few unused registers costs two bytes each on
/// the wire, a separate request costs about 13 bytes and two 3.5-character silences, so short
/// gaps are worth reading through.
pub const DEFAULT_MAX_GAP: u16 = 8;

/// The profiles compiled into the binary: (name, file text). The name is the file's stem.
const BUILTIN: &[(&str, &str)] = &[
    (
        "eastron-sdm630",
        include_str!("../../../../profiles/modbus/eastron-sdm630.toml"),
    ),
    (
        "chint-dtsu666",
        include_str!("../../../../profiles/modbus/chint-dtsu666.toml"),
    ),
    (
        "acrel-adl400",
        include_str!("../../../../profiles/modbus/acrel-adl400.toml"),
    ),
];

/// Serial parity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parity {
    /// 8N1 / 8N2.
    None,
    /// 8E1: the Modbus default.
    Even,
    /// 8O1.
    Odd,
}

impl Parity {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Parity::None => "none",
            Parity::Even => "even",
            Parity::Odd => "odd",
        }
    }

    /// Parses `none`, `even` or `odd`.
    pub fn parse(s: &str) -> Option<Parity> {
        match s {
            "none" => Some(Parity::None),
            "even" => Some(Parity::Even),
            "odd" => Some(Parity::Odd),
            _ => None,
        }
    }
}

impl From<tokio_serial::Parity> for Parity {
    fn from(p: tokio_serial::Parity) -> Parity {
        match p {
            tokio_serial::Parity::None => Parity::None,
            tokio_serial::Parity::Even => Parity::Even,
            tokio_serial::Parity::Odd => Parity::Odd,
        }
    }
}

/// A meter model's register map and serial defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Built-in name or the file's stem, e.g. `eastron-sdm630`.
    pub name: String,
    /// Maker.
    pub manufacturer: String,
    /// Model.
    pub model: String,
    /// Where the map comes from: the vendor document's title and version.
    pub source: String,
    /// The meter's factory baud rate (the bus configuration decides).
    pub baud: u32,
    /// The meter's factory parity (the bus configuration decides).
    pub parity: Parity,
    /// Largest run of unused registers the poller reads through to merge two reads into one.
    /// 0 for a meter that refuses reads of registers it does not define.
    pub max_gap: u16,
    /// The values, in file order.
    pub registers: Vec<Register>,
}

/// Why a profile was refused. Each message names the file, and the register and field when
/// one is at fault.
#[derive(Debug, Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, a missing key, or a value of the wrong TOML type.
    #[error("{file}: line {line}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line of the fault.
        line: usize,
        /// The parser's message.
        message: String,
    },
    /// A profile-level field is wrong.
    #[error("{file}: {field}: {message}")]
    Field {
        /// The file.
        file: String,
        /// The key.
        field: String,
        /// What is wrong and what would be right.
        message: String,
    },
    /// A register's field is wrong, or registers overlap.
    #[error("{file}: register \"{register}\": {message}")]
    Register {
        /// The file.
        file: String,
        /// The register's `name`.
        register: String,
        /// The field and what is wrong with it.
        message: String,
    },
    /// No built-in profile has that name.
    #[error("no built-in Modbus profile \"{name}\" (built in: {known}); give a profile file's path instead")]
    UnknownBuiltin {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    manufacturer: String,
    model: String,
    source: String,
    baud: Option<i64>,
    parity: Option<String>,
    word_order: Option<String>,
    max_gap: Option<i64>,
    #[serde(default)]
    register: Vec<RawRegister>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegister {
    name: String,
    quantity: String,
    kind: String,
    address: i64,
    #[serde(rename = "type")]
    value_type: String,
    word_order: Option<String>,
    scale: Option<f64>,
    unit: Option<String>,
}

/// Reads and validates a profile file. The profile's name is the file's stem.
pub fn load_profile(path: &Path) -> Result<Profile, ProfileError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
        file: file.clone(),
        source,
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.clone());
    parse_profile(&name, &file, &text)
}

/// A built-in profile by name, e.g. `"eastron-sdm630"`.
pub fn builtin_profile(name: &str) -> Result<Profile, ProfileError> {
    let (n, text) =
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ProfileError::UnknownBuiltin {
                name: name.to_string(),
                known: builtin_profile_names().join(", "),
            })?;
    parse_profile(n, &format!("{n}.toml"), text)
}

/// The names of the built-in profiles.
pub fn builtin_profile_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

/// A built-in name, or else a path to a profile file (anything with a `/` or ending `.toml`).
pub fn find_profile(name_or_path: &str) -> Result<Profile, ProfileError> {
    if name_or_path.contains('/') || name_or_path.ends_with(".toml") {
        load_profile(Path::new(name_or_path))
    } else {
        builtin_profile(name_or_path)
    }
}

/// Parses and validates profile text; `file` names it in messages.
pub fn parse_profile(name: &str, file: &str, text: &str) -> Result<Profile, ProfileError> {
    let raw: RawProfile = toml::from_str(text).map_err(|e| ProfileError::Syntax {
        file: file.to_string(),
        line: e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1),
        message: e.message().to_string(),
    })?;
    let field = |field: &str, message: String| ProfileError::Field {
        file: file.to_string(),
        field: field.to_string(),
        message,
    };
    for (key, value) in [
        ("manufacturer", &raw.manufacturer),
        ("model", &raw.model),
        ("source", &raw.source),
    ] {
        if value.trim().is_empty() {
            return Err(field(key, "must not be empty".into()));
        }
    }
    let baud = match raw.baud {
        None => 9600,
        Some(b) if (300..=115_200).contains(&b) => b as u32,
        Some(b) => {
            return Err(field(
                "baud",
                format!("{b} is not a serial baud rate (300 to 115200)"),
            ))
        }
    };
    let parity = match raw.parity.as_deref() {
        None => Parity::Even,
        Some(p) => Parity::parse(p)
            .ok_or_else(|| field("parity", format!("\"{p}\" is not one of none, even, odd")))?,
    };
    let word_order = match raw.word_order.as_deref() {
        None => WordOrder::Big,
        Some(w) => parse_word_order(w).map_err(|m| field("word_order", m))?,
    };
    let max_gap = match raw.max_gap {
        None => DEFAULT_MAX_GAP,
        Some(g) if (0..i64::from(MAX_REGISTERS_PER_READ)).contains(&g) => g as u16,
        Some(g) => {
            return Err(field(
                "max_gap",
                format!("{g} is not between 0 and {}", MAX_REGISTERS_PER_READ - 1),
            ))
        }
    };
    if raw.register.is_empty() {
        return Err(field(
            "register",
            "the profile has no [[register]] entries".into(),
        ));
    }

    let mut registers: Vec<Register> = Vec::with_capacity(raw.register.len());
    for r in raw.register {
        let bad = |message: String| ProfileError::Register {
            file: file.to_string(),
            register: r.name.clone(),
            message,
        };
        if r.name.trim().is_empty() {
            return Err(bad("name: must not be empty".into()));
        }
        if registers.iter().any(|o| o.name == r.name) {
            return Err(bad(
                "name: used by another register; names must be unique".into()
            ));
        }
        let quantity = parse_quantity(&r.quantity)
            .map_err(|m| bad(format!("quantity \"{}\": {m}", r.quantity)))?;
        if let Some(o) = registers.iter().find(|o| o.quantity == quantity) {
            return Err(bad(format!(
                "quantity \"{}\" is already read from register \"{}\"",
                r.quantity, o.name
            )));
        }
        let kind = match r.kind.as_str() {
            "input" => RegisterKind::Input,
            "holding" => RegisterKind::Holding,
            k => return Err(bad(format!("kind \"{k}\" is not one of input, holding"))),
        };
        let value_type = VALUE_TYPES
            .iter()
            .find(|(n, _)| *n == r.value_type)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = VALUE_TYPES.iter().map(|(n, _)| *n).collect();
                bad(format!(
                    "type \"{}\" is not one of {}",
                    r.value_type,
                    names.join(", ")
                ))
            })?;
        let word_order = match r.word_order.as_deref() {
            None => word_order,
            Some(w) => parse_word_order(w).map_err(|m| bad(format!("word_order: {m}")))?,
        };
        if !(0..=65535).contains(&r.address) {
            return Err(bad(format!(
                "address {} is not a protocol address (0 to 65535)",
                r.address
            )));
        }
        let address = r.address as u16;
        if u32::from(address) + u32::from(value_type.words()) > 65536 {
            return Err(bad(format!(
                "address {address}: a {} runs past register 65535",
                value_type.as_str()
            )));
        }
        let scale = r.scale.unwrap_or(1.0);
        if scale == 0.0 || !scale.is_finite() {
            return Err(bad(format!(
                "scale {scale} must be a finite, non-zero multiplier"
            )));
        }
        if let Some(unit) = &r.unit {
            if unit != quantity.unit() {
                return Err(bad(format!(
                    "unit \"{unit}\" is not {}'s unit \"{}\"; `unit` is the unit after `scale`, \
                     so convert with scale (e.g. W to kW: scale = 0.001)",
                    r.quantity,
                    quantity.unit()
                )));
            }
        }
        registers.push(Register {
            name: r.name,
            quantity,
            kind,
            address,
            value_type,
            word_order,
            scale,
        });
    }

    // Overlaps: within one table, sorted by address, each register must end before the next
    // begins. (A register reused under two meanings is a typo in a map, never intended.)
    let mut order: Vec<&Register> = registers.iter().collect();
    order.sort_by_key(|r| (r.kind, r.address));
    for pair in order.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.kind == b.kind && u32::from(b.address) < a.end() {
            return Err(ProfileError::Register {
                file: file.to_string(),
                register: b.name.clone(),
                message: format!(
                    "address {} overlaps register \"{}\" ({} {}..{})",
                    b.address,
                    a.name,
                    a.kind.as_str(),
                    a.address,
                    a.end() - 1
                ),
            });
        }
    }

    Ok(Profile {
        name: name.to_string(),
        manufacturer: raw.manufacturer,
        model: raw.model,
        source: raw.source,
        baud,
        parity,
        max_gap,
        registers,
    })
}

fn parse_word_order(s: &str) -> Result<WordOrder, String> {
    match s {
        "big" => Ok(WordOrder::Big),
        "little" => Ok(WordOrder::Little),
        w => Err(format!("\"{w}\" is not one of big, little")),
    }
}

fn parse_quantity(s: &str) -> Result<Quantity, String> {
    // serde's own message lists every accepted name.
    Quantity::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(s))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "manufacturer = \"Acme\"\nmodel = \"M1\"\nsource = \"Acme M1 manual v1\"\n";

    fn parse(registers: &str) -> Result<Profile, ProfileError> {
        parse_profile("m1", "m1.toml", &format!("{HEAD}{registers}"))
    }

    fn reg(name: &str, quantity: &str, address: u32, ty: &str, extra: &str) -> String {
        format!(
            "[[register]]\nname = \"{name}\"\nquantity = \"{quantity}\"\nkind = \"holding\"\naddress = {address}\ntype = \"{ty}\"\n{extra}\n"
        )
    }

    #[test]
    fn every_builtin_profile_loads() {
        for name in builtin_profile_names() {
            let p = builtin_profile(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.name, name);
            assert!(
                p.registers.len() >= 8,
                "{name}: {} registers",
                p.registers.len()
            );
            assert!(
                p.registers.iter().any(|r| r.quantity == Quantity::VoltageA),
                "{name}"
            );
        }
        assert!(matches!(
            builtin_profile("nope"),
            Err(ProfileError::UnknownBuiltin { .. })
        ));
    }

    #[test]
    fn a_wrong_type_names_file_register_and_field() {
        let e = parse(&reg("Ua", "voltage_a", 0x2006, "f23", ""))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "m1.toml: register \"Ua\": type \"f23\" is not one of u16, i16, u32, i32, u64, f32"
        );
    }

    #[test]
    fn an_unknown_quantity_lists_the_known_ones() {
        let e = parse(&reg("U", "voltage_x", 0, "u16", ""))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m1.toml: register \"U\": quantity \"voltage_x\""),
            "{e}"
        );
        assert!(e.contains("voltage_a") && e.contains("thd_u_a"), "{e}");
    }

    #[test]
    fn zero_scale_and_overlaps_and_duplicates_are_refused() {
        let e = parse(&reg("U", "voltage_a", 0, "u16", "scale = 0.0"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("register \"U\": scale 0"), "{e}");

        let two = reg("U", "voltage_a", 0, "f32", "") + &reg("I", "current_a", 1, "u16", "");
        let e = parse(&two).unwrap_err().to_string();
        assert!(
            e.contains("register \"I\": address 1 overlaps register \"U\" (holding 0..1)"),
            "{e}"
        );

        // Same address in the other table is not an overlap.
        let other = reg("U", "voltage_a", 0, "f32", "")
            + &reg("I", "current_a", 0, "u16", "").replace("holding", "input");
        parse(&other).unwrap();

        let dup = reg("U", "voltage_a", 0, "u16", "") + &reg("U", "current_a", 4, "u16", "");
        assert!(parse(&dup).unwrap_err().to_string().contains("unique"));
        let dup_q = reg("U", "voltage_a", 0, "u16", "") + &reg("V", "voltage_a", 4, "u16", "");
        assert!(parse(&dup_q)
            .unwrap_err()
            .to_string()
            .contains("already read from register \"U\""));
    }

    #[test]
    fn the_unit_must_be_the_quantitys_after_scale() {
        let e = parse(&reg("P", "active_power_total", 0, "f32", "unit = \"W\""))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unit \"W\" is not active_power_total's unit \"kW\""),
            "{e}"
        );
        parse(&reg(
            "P",
            "active_power_total",
            0,
            "f32",
            "unit = \"kW\"\nscale = 0.001",
        ))
        .unwrap();
    }

    #[test]
    fn syntax_and_unknown_keys_name_the_line() {
        let e = parse(&reg("U", "voltage_a", 0, "u16", "adress = 3"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("m1.toml: line 10:"), "{e}");
        assert!(e.contains("adress"), "{e}");
        let e = parse("[[register]]\nname = \"U\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field"), "{e}");
        let e = parse(&reg("U", "voltage_a", 70000, "u16", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("address 70000"), "{e}");
        parse(&reg("U", "voltage_a", 65534, "f32", "")).unwrap();
        let e = parse(&reg("U", "voltage_a", 65535, "f32", ""))
            .unwrap_err()
            .to_string();
        assert!(e.contains("runs past"), "{e}");
        let e = parse_profile(
            "x",
            "x.toml",
            "manufacturer = \"\"\nmodel = \"m\"\nsource = \"s\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "x.toml: manufacturer: must not be empty");
    }
}
