//! Classification of a characterised event against the curves and tables engineers use:
//! ITIC (CBEMA), SEMI F47-0706, the EN 50160 / IEC 61000-2-8 dip and swell tables, and
//! the IEEE 1159 duration categories.
//!
//! An event is treated as a rectangle: its extreme value held for its whole duration. Where a
//! curve's limit depends on duration, the limit at the event's duration applies.

use crate::detector::EventKind;

/// Where an event lies against the ITIC (CBEMA) curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Itic {
    /// Within the no-interruption region: IT equipment should ride through.
    Inside,
    /// Under the lower edge (no-damage region): equipment likely dropped out.
    Below,
    /// Over the upper edge (prohibited region): equipment may be damaged.
    Above,
}

impl Itic {
    /// Name as used in the `kare replay` contract.
    pub fn as_str(self) -> &'static str {
        match self {
            Itic::Inside => "inside",
            Itic::Below => "below",
            Itic::Above => "above",
        }
    }
}

/// ITIC lower edge in % of nominal for an event lasting `duration_s`:
/// 0 % up to 20 ms, 70 % to 0.5 s, 80 % to 10 s, 90 % after.
pub fn itic_lower_pct(duration_s: f32) -> f32 {
    if duration_s <= 0.02 {
        0.0
    } else if duration_s <= 0.5 {
        70.0
    } else if duration_s <= 10.0 {
        80.0
    } else {
        90.0
    }
}

/// ITIC upper edge in % of nominal: 200 % up to 1 ms, 140 % to 3 ms, 120 % to 0.5 s, 110 % after.
pub fn itic_upper_pct(duration_s: f32) -> f32 {
    if duration_s <= 0.001 {
        200.0
    } else if duration_s <= 0.003 {
        140.0
    } else if duration_s <= 0.5 {
        120.0
    } else {
        110.0
    }
}

/// ITIC verdict for an event of `kind` whose extreme is `extreme_pct` % of nominal.
pub fn itic(kind: EventKind, duration_s: f32, extreme_pct: f32) -> Itic {
    match kind {
        EventKind::Dip | EventKind::Interruption => {
            if extreme_pct < itic_lower_pct(duration_s) {
                Itic::Below
            } else {
                Itic::Inside
            }
        }
        EventKind::Swell => {
            if extreme_pct > itic_upper_pct(duration_s) {
                Itic::Above
            } else {
                Itic::Inside
            }
        }
    }
}

/// Where a dip or interruption lies against the SEMI F47-0706 ride-through curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SemiF47 {
    /// Semiconductor tools are required to ride through it (or F47 sets no requirement).
    Inside,
    /// More severe than the curve: a compliant tool may still have stopped.
    Below,
}

impl SemiF47 {
    /// Name as used in the `kare replay` contract.
    pub fn as_str(self) -> &'static str {
        match self {
            SemiF47::Inside => "inside",
            SemiF47::Below => "below",
        }
    }
}

/// SEMI F47 limit in % of nominal at `duration_s`: 50 % for 50–200 ms, 70 % to 0.5 s, 80 % to 1 s.
/// `None` where F47 sets no requirement: below 50 ms and beyond 1 s (drawing the 80 % line on to
/// 10 s is a common habit, but it is not F47).
pub fn semi_f47_limit_pct(duration_s: f32) -> Option<f32> {
    if duration_s < 0.05 {
        None
    } else if duration_s <= 0.2 {
        Some(50.0)
    } else if duration_s <= 0.5 {
        Some(70.0)
    } else if duration_s <= 1.0 {
        Some(80.0)
    } else {
        None
    }
}

/// SEMI F47 verdict; `None` for swells, which F47 does not cover.
pub fn semi_f47(kind: EventKind, duration_s: f32, extreme_pct: f32) -> Option<SemiF47> {
    match kind {
        EventKind::Swell => None,
        EventKind::Dip | EventKind::Interruption => Some(match semi_f47_limit_pct(duration_s) {
            Some(limit) if extreme_pct < limit => SemiF47::Below,
            _ => SemiF47::Inside,
        }),
    }
}

/// A cell of the EN 50160 / IEC 61000-2-8 dip or swell table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct En50160Cell {
    /// Row label, e.g. `"90>u>=80"`.
    pub row: &'static str,
    /// Column label, e.g. `"10-200ms"`.
    pub column: &'static str,
    /// Row index from the top of the table.
    pub row_index: u8,
    /// Column index from the left of the table.
    pub column_index: u8,
}

/// Rows of the dip table, by residual voltage in % of Udin.
pub const DIP_ROWS: [&str; 5] = ["90>u>=80", "80>u>=70", "70>u>=40", "40>u>=5", "5>u"];
/// Columns of the dip table, by duration.
pub const DIP_COLUMNS: [&str; 5] = ["10-200ms", "200-500ms", "0.5-1s", "1-5s", "5-60s"];
/// Rows of the swell table, by maximum voltage in % of Udin.
pub const SWELL_ROWS: [&str; 2] = ["u>=120", "120>u>110"];
/// Columns of the swell table, by duration.
pub const SWELL_COLUMNS: [&str; 3] = ["10-500ms", "0.5-5s", "5-60s"];

/// The dip-table cell for a dip (or interruption) with `residual_pct` lasting `duration_s`.
/// `None` outside the table: shorter than 10 ms, longer than 60 s, or residual at or above 90 %.
pub fn en50160_dip_cell(duration_s: f32, residual_pct: f32) -> Option<En50160Cell> {
    let row = if residual_pct >= 90.0 || residual_pct.is_nan() {
        return None;
    } else if residual_pct >= 80.0 {
        0
    } else if residual_pct >= 70.0 {
        1
    } else if residual_pct >= 40.0 {
        2
    } else if residual_pct >= 5.0 {
        3
    } else {
        4
    };
    let column = if !(0.01..=60.0).contains(&duration_s) {
        return None;
    } else if duration_s <= 0.2 {
        0
    } else if duration_s <= 0.5 {
        1
    } else if duration_s <= 1.0 {
        2
    } else if duration_s <= 5.0 {
        3
    } else {
        4
    };
    Some(En50160Cell {
        row: DIP_ROWS[row],
        column: DIP_COLUMNS[column],
        row_index: row as u8,
        column_index: column as u8,
    })
}

/// The swell-table cell for a swell with maximum `max_pct` lasting `duration_s`.
/// `None` outside the table: shorter than 10 ms, longer than 60 s, or at or below 110 %.
pub fn en50160_swell_cell(duration_s: f32, max_pct: f32) -> Option<En50160Cell> {
    let row = if max_pct >= 120.0 {
        0
    } else if max_pct > 110.0 {
        1
    } else {
        return None;
    };
    let column = if !(0.01..=60.0).contains(&duration_s) {
        return None;
    } else if duration_s <= 0.5 {
        0
    } else if duration_s <= 5.0 {
        1
    } else {
        2
    };
    Some(En50160Cell {
        row: SWELL_ROWS[row],
        column: SWELL_COLUMNS[column],
        row_index: row as u8,
        column_index: column as u8,
    })
}

/// The table cell for any event kind.
pub fn en50160_cell(kind: EventKind, duration_s: f32, extreme_pct: f32) -> Option<En50160Cell> {
    match kind {
        EventKind::Dip | EventKind::Interruption => en50160_dip_cell(duration_s, extreme_pct),
        EventKind::Swell => en50160_swell_cell(duration_s, extreme_pct),
    }
}

/// IEEE 1159 duration category of a short-duration RMS variation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ieee1159 {
    /// 0.5 to 30 cycles (sags and swells; interruptions have no instantaneous category).
    Instantaneous,
    /// 30 cycles to 3 s (interruptions: 0.5 cycles to 3 s).
    Momentary,
    /// 3 s to 1 min.
    Temporary,
    /// Longer than 1 min: a sustained interruption, undervoltage or overvoltage.
    Sustained,
}

impl Ieee1159 {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Ieee1159::Instantaneous => "instantaneous",
            Ieee1159::Momentary => "momentary",
            Ieee1159::Temporary => "temporary",
            Ieee1159::Sustained => "sustained",
        }
    }
}

/// IEEE 1159 category of an event of `kind` lasting `duration_s` on a `nominal_hz` system.
pub fn ieee1159(kind: EventKind, duration_s: f32, nominal_hz: f32) -> Ieee1159 {
    let cycles = duration_s * nominal_hz;
    if duration_s > 60.0 {
        Ieee1159::Sustained
    } else if duration_s > 3.0 {
        Ieee1159::Temporary
    } else if cycles > 30.0 || kind == EventKind::Interruption {
        Ieee1159::Momentary
    } else {
        Ieee1159::Instantaneous
    }
}
