//! One register of a meter's map, and how its words become a value and back: integer or float,
//! either word order, scaled, and written as the number the meter meant (230.1, not
//! 230.10000000000002). The map itself, as a TOML file, is [`profile`](super::profile)'s.

use crate::sources::meters::readings::Quantity;

/// Which register table a value lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegisterKind {
    /// Input registers (3xxxx in manuals), read with function 04.
    Input,
    /// Holding registers (4xxxx in manuals), read with function 03.
    Holding,
}

impl RegisterKind {
    /// The name used in profile files.
    pub fn as_str(self) -> &'static str {
        match self {
            RegisterKind::Input => "input",
            RegisterKind::Holding => "holding",
        }
    }
}

/// How the register words encode a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    /// One register, unsigned.
    U16,
    /// One register, two's complement.
    I16,
    /// Two registers, unsigned.
    U32,
    /// Two registers, two's complement.
    I32,
    /// Four registers, unsigned (some energy counters).
    U64,
    /// Two registers, IEEE 754 single precision.
    F32,
}

pub(super) const VALUE_TYPES: &[(&str, ValueType)] = &[
    ("u16", ValueType::U16),
    ("i16", ValueType::I16),
    ("u32", ValueType::U32),
    ("i32", ValueType::I32),
    ("u64", ValueType::U64),
    ("f32", ValueType::F32),
];

impl ValueType {
    /// How many 16-bit registers a value takes.
    pub fn words(self) -> u16 {
        match self {
            ValueType::U16 | ValueType::I16 => 1,
            ValueType::U32 | ValueType::I32 | ValueType::F32 => 2,
            ValueType::U64 => 4,
        }
    }

    /// The name used in profile files.
    pub fn as_str(self) -> &'static str {
        VALUE_TYPES
            .iter()
            .find(|(_, t)| *t == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

/// Order of the 16-bit words of a multi-register value. Bytes within a word are always
/// big-endian (Modbus); vendors disagree only on the word order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WordOrder {
    /// Most significant word first (at the lower address): Eastron, CHINT, Acrel.
    Big,
    /// Least significant word first ("word swapped", "CDAB").
    Little,
}

/// One value in a meter's register map.
#[derive(Clone, Debug, PartialEq)]
pub struct Register {
    /// The name in the profile (often the manual's), for messages.
    pub name: String,
    /// What the value means.
    pub quantity: Quantity,
    /// Input or holding register.
    pub kind: RegisterKind,
    /// 0-based protocol address of the first word.
    pub address: u16,
    /// Encoding.
    pub value_type: ValueType,
    /// Word order of multi-register values.
    pub word_order: WordOrder,
    /// Multiplier from the raw number to `quantity.unit()`.
    pub scale: f64,
}

impl Register {
    /// Registers taken.
    pub fn words(&self) -> u16 {
        self.value_type.words()
    }

    /// One past the last address (u32: a value may end at 65535).
    pub fn end(&self) -> u32 {
        u32::from(self.address) + u32::from(self.words())
    }

    /// The value in `quantity.unit()` from exactly `words()` register words, or `None` when
    /// the words are not a number (a meter reports NaN for a value it does not measure).
    pub fn decode(&self, words: &[u16]) -> Option<f64> {
        if words.len() != usize::from(self.words()) {
            return None;
        }
        let fold = |acc: u64, w: &u16| (acc << 16) | u64::from(*w);
        let bits = match self.word_order {
            WordOrder::Big => words.iter().fold(0, fold),
            WordOrder::Little => words.iter().rev().fold(0, fold),
        };
        let raw = match self.value_type {
            ValueType::U16 => f64::from(bits as u16),
            ValueType::I16 => f64::from(bits as u16 as i16),
            ValueType::U32 => f64::from(bits as u32),
            ValueType::I32 => f64::from(bits as u32 as i32),
            ValueType::U64 => bits as f64,
            ValueType::F32 => f64::from(f32::from_bits(bits as u32)),
        };
        // Written as the number the meter meant, not its binary shadow: an f32 carries about
        // seven significant digits (12.4, not 12.399999618530273), an integer times 0.1 has one
        // decimal (230.1, not 230.10000000000002).
        let v = match self.value_type {
            ValueType::F32 => round_significant(raw * self.scale, 7),
            _ => round_decimals(raw * self.scale, decimals(self.scale)),
        };
        v.is_finite().then_some(v)
    }

    /// The register words a meter would hold for `value` (in `quantity.unit()`): the inverse
    /// of [`Register::decode`], for simulated meters and tests. Integers are rounded and
    /// saturate at the type's range.
    pub fn encode(&self, value: f64) -> Vec<u16> {
        let raw = value / self.scale;
        let bits: u64 = match self.value_type {
            ValueType::U16 => u64::from(raw.round() as u16),
            ValueType::I16 => u64::from(raw.round() as i16 as u16),
            ValueType::U32 => u64::from(raw.round() as u32),
            ValueType::I32 => u64::from(raw.round() as i32 as u32),
            ValueType::U64 => raw.round() as u64,
            ValueType::F32 => u64::from((raw as f32).to_bits()),
        };
        let n = usize::from(self.words());
        let mut words: Vec<u16> = (0..n)
            .map(|i| (bits >> (16 * (n - 1 - i))) as u16)
            .collect();
        if self.word_order == WordOrder::Little {
            words.reverse();
        }
        words
    }
}

/// Decimal places of a scale factor (0.001 → 3, 0.1 → 1, 1 and 10 → 0), at most 9.
fn decimals(scale: f64) -> i32 {
    (0..=9)
        .find(|&d| {
            let x = scale * 10f64.powi(d);
            (x - x.round()).abs() < 1e-9 * x.abs().max(1.0)
        })
        .unwrap_or(9)
}

fn round_decimals(v: f64, d: i32) -> f64 {
    let p = 10f64.powi(d);
    (v * p).round() / p
}

fn round_significant(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let magnitude = v.abs().log10().floor() as i32;
    let d = digits - 1 - magnitude;
    if d >= 0 {
        round_decimals(v, d)
    } else {
        let p = 10f64.powi(-d);
        (v / p).round() * p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_handles_types_word_orders_and_scale() {
        let mut r = Register {
            name: "x".into(),
            quantity: Quantity::VoltageA,
            kind: RegisterKind::Input,
            address: 0,
            value_type: ValueType::F32,
            word_order: WordOrder::Big,
            scale: 1.0,
        };
        // 230.1 as f32 is 0x43661999 (plus rounding): big-endian words.
        let v = r.decode(&[0x4366, 0x199A]).unwrap();
        assert!((v - 230.1).abs() < 1e-4, "{v}");
        r.word_order = WordOrder::Little;
        let v = r.decode(&[0x199A, 0x4366]).unwrap();
        assert!((v - 230.1).abs() < 1e-4, "{v}");
        assert_eq!(r.decode(&[0x0000, 0x7FC0]), None, "NaN is no reading");

        r.value_type = ValueType::I16;
        r.scale = 0.1;
        assert!((r.decode(&[0xFFF6]).unwrap() + 1.0).abs() < 1e-12);
        r.value_type = ValueType::U32;
        r.word_order = WordOrder::Big;
        r.scale = 0.01;
        assert!((r.decode(&[0x0001, 0x86A0]).unwrap() - 1000.0).abs() < 1e-9);
        r.word_order = WordOrder::Little;
        assert!((r.decode(&[0x86A0, 0x0001]).unwrap() - 1000.0).abs() < 1e-9);
        r.value_type = ValueType::I32;
        assert!((r.decode(&[0xFFFF, 0xFFFF]).unwrap() + 0.01).abs() < 1e-12);
        r.value_type = ValueType::U64;
        r.word_order = WordOrder::Big;
        r.scale = 1.0;
        assert_eq!(r.decode(&[0, 0, 1, 2]), Some(65538.0));
        assert_eq!(r.decode(&[0, 0, 1]), None, "wrong length");
    }

    #[test]
    fn encode_inverts_decode() {
        for (ty, order, scale, value) in [
            (ValueType::F32, WordOrder::Big, 0.1, 230.5),
            (ValueType::F32, WordOrder::Little, 1.0, -49.75),
            (ValueType::U16, WordOrder::Big, 0.01, 50.01),
            (ValueType::I16, WordOrder::Big, 0.001, -0.987),
            (ValueType::U32, WordOrder::Little, 0.01, 123456.78),
            (ValueType::I32, WordOrder::Big, 0.001, -12.345),
            (ValueType::U64, WordOrder::Little, 0.001, 987654321.0),
        ] {
            let r = Register {
                name: "x".into(),
                quantity: Quantity::VoltageA,
                kind: RegisterKind::Holding,
                address: 0,
                value_type: ty,
                word_order: order,
                scale,
            };
            let words = r.encode(value);
            assert_eq!(words.len(), usize::from(ty.words()));
            let back = r.decode(&words).unwrap();
            assert!(
                (back - value).abs() <= value.abs() * 1e-6 + 1e-9,
                "{ty:?} {value} {back}"
            );
        }
    }

    #[test]
    fn meter_values_are_written_as_the_meter_meant_them() {
        assert_eq!(round_significant(f64::from(12.4f32), 7).to_string(), "12.4");
        assert_eq!(
            round_significant(f64::from(2709.4f32) * 0.001, 7).to_string(),
            "2.7094"
        );
        assert_eq!(
            round_significant(f64::from(12345.67f32), 7).to_string(),
            "12345.67"
        );
        assert_eq!(round_significant(-0.95f32 as f64, 7).to_string(), "-0.95");
        assert_eq!(round_significant(123456789.0, 7), 123456800.0);
        assert_eq!(decimals(0.1), 1);
        assert_eq!(decimals(0.001), 3);
        assert_eq!(decimals(1.0), 0);
        assert_eq!(decimals(10.0), 0);
        assert_eq!(round_decimals(2301.0 * 0.1, 1).to_string(), "230.1");
    }
}
