//! Which reads a poll of one device makes: a profile's registers merged into as few requests as
//! the protocol allows. Pure: no I/O.
//!
//! On a 9600-baud bus each request costs its own 8 bytes, the reply's 5 bytes of framing and two
//! 3.5-character silences (about 21 character times, 22 ms) before any data moves, while an unused
//! register read through costs 2 characters. So registers of one table are merged when the gap
//! between them is at most the profile's `max_gap` and the read stays within 125 registers.

use super::profile::{Profile, RegisterKind, MAX_REGISTERS_PER_READ};
use crate::sources::meters::readings::Quantity;

/// One read request: `count` registers of one table from `start`, covering some of a
/// profile's registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Input (function 04) or holding (function 03).
    pub kind: RegisterKind,
    /// First address read.
    pub start: u16,
    /// Registers read (1..=125).
    pub count: u16,
    /// Indices into `Profile::registers` of the values this read carries.
    pub registers: Vec<usize>,
}

impl Batch {
    /// Decodes a reply's words into values, skipping registers whose words are not a number.
    /// `words` must be the `count` words read from `start`.
    pub fn decode(&self, profile: &Profile, words: &[u16]) -> Vec<(Quantity, f64)> {
        self.registers
            .iter()
            .filter_map(|&i| {
                let r = &profile.registers[i];
                let from = usize::from(r.address - self.start);
                let w = words.get(from..from + usize::from(r.words()))?;
                Some((r.quantity, r.decode(w)?))
            })
            .collect()
    }

    /// Bytes this read puts on the wire: the request (8) and a normal reply (5 + 2 per
    /// register).
    pub fn wire_bytes(&self) -> usize {
        8 + 5 + 2 * usize::from(self.count)
    }
}

/// The reads that fetch every register of `profile`, in address order per table (input first).
pub fn plan_reads(profile: &Profile) -> Vec<Batch> {
    let mut order: Vec<usize> = (0..profile.registers.len()).collect();
    order.sort_by_key(|&i| (profile.registers[i].kind, profile.registers[i].address));
    let mut batches: Vec<Batch> = Vec::new();
    for i in order {
        let r = &profile.registers[i];
        if let Some(b) = batches.last_mut() {
            let end = u32::from(b.start) + u32::from(b.count);
            let gap = u32::from(r.address).saturating_sub(end);
            let merged = r.end().max(end) - u32::from(b.start);
            if b.kind == r.kind
                && gap <= u32::from(profile.max_gap)
                && merged <= u32::from(MAX_REGISTERS_PER_READ)
            {
                b.count = merged as u16;
                b.registers.push(i);
                continue;
            }
        }
        batches.push(Batch {
            kind: r.kind,
            start: r.address,
            count: r.words(),
            registers: vec![i],
        });
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::meters::modbus::profile::{
        builtin_profile, Parity, Register, ValueType, WordOrder,
    };

    fn profile(max_gap: u16, regs: &[(RegisterKind, u16, ValueType)]) -> Profile {
        let quantities = [
            Quantity::VoltageA,
            Quantity::VoltageB,
            Quantity::VoltageC,
            Quantity::CurrentA,
            Quantity::CurrentB,
            Quantity::CurrentC,
        ];
        Profile {
            name: "t".into(),
            manufacturer: "t".into(),
            model: "t".into(),
            source: "t".into(),
            baud: 9600,
            parity: Parity::None,
            max_gap,
            registers: regs
                .iter()
                .enumerate()
                .map(|(i, &(kind, address, value_type))| Register {
                    name: format!("r{i}"),
                    quantity: quantities[i],
                    kind,
                    address,
                    value_type,
                    word_order: WordOrder::Big,
                    scale: 1.0,
                })
                .collect(),
        }
    }

    use RegisterKind::{Holding, Input};
    use ValueType::{F32, U16};

    #[test]
    fn contiguous_registers_of_one_table_make_one_read() {
        let p = profile(0, &[(Input, 4, F32), (Input, 0, F32), (Input, 2, F32)]);
        let b = plan_reads(&p);
        assert_eq!(b.len(), 1);
        assert_eq!((b[0].start, b[0].count), (0, 6));
        assert_eq!(b[0].registers, vec![1, 2, 0]);
    }

    #[test]
    fn gaps_up_to_max_gap_are_read_through_and_tables_never_mix() {
        let regs = [
            (Input, 0, F32),
            (Input, 10, F32), // gap 8
            (Input, 30, F32), // gap 18
            (Holding, 32, U16),
        ];
        let b = plan_reads(&profile(8, &regs));
        let spans: Vec<_> = b.iter().map(|b| (b.kind, b.start, b.count)).collect();
        assert_eq!(
            spans,
            vec![(Input, 0, 12), (Input, 30, 2), (Holding, 32, 1)]
        );
        let b = plan_reads(&profile(7, &regs));
        assert_eq!(b.len(), 4, "a gap of 8 is over a max_gap of 7");
    }

    #[test]
    fn a_read_never_exceeds_125_registers() {
        let regs = [(Input, 0, F32), (Input, 100, F32), (Input, 124, F32)];
        let b = plan_reads(&profile(124, &regs));
        let spans: Vec<_> = b.iter().map(|b| (b.start, b.count)).collect();
        assert_eq!(spans, vec![(0, 102), (124, 2)]);
        let regs = [(Input, 0, F32), (Input, 123, F32)];
        assert_eq!(plan_reads(&profile(124, &regs))[0].count, 125);
    }

    #[test]
    fn decode_picks_each_register_out_of_the_reply() {
        let p = profile(8, &[(Holding, 0, U16), (Holding, 3, F32)]);
        let b = &plan_reads(&p)[0];
        let words = [2301, 0xDEAD, 0xBEEF, 0x4248, 0x0000];
        let v = b.decode(&p, &words);
        assert_eq!(
            v,
            vec![(Quantity::VoltageA, 2301.0), (Quantity::VoltageB, 50.0)]
        );
    }

    #[test]
    fn shipped_profiles_poll_in_few_reads() {
        for (name, reads) in [
            ("eastron-sdm630", 2),
            ("chint-dtsu666", 2),
            ("acrel-adl400", 3),
        ] {
            let p = builtin_profile(name).unwrap();
            let b = plan_reads(&p);
            assert_eq!(b.len(), reads, "{name}: {b:?}");
            let covered: usize = b.iter().map(|b| b.registers.len()).sum();
            assert_eq!(covered, p.registers.len());
        }
    }
}
