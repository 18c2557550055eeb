//! `[rules]`: the settings of every rule, with the defaults a utility would start from and the
//! range of each (checked at start, documented in `systemd/kare.toml`).

use serde::{Deserialize, Serialize};

/// Rule settings, with the defaults a utility would start from (`[rules]` in the configuration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleSettings {
    /// An outage up to this long is momentary, longer is sustained (IEEE 1366: 300 s; some
    /// jurisdictions 180 or 60).
    pub momentary_max_s: f64,
    /// A failure within this long after restoration reopens the same repair ticket.
    pub flap_window_s: f64,
    /// A dip with residual below this (% of Udin) is deep.
    pub deep_dip_pct: f64,
    /// This many deep dips …
    pub deep_dip_count: usize,
    /// … within this many hours raise an engineering ticket.
    pub deep_dip_window_h: f64,
    /// An engineering ticket closes after this many hours without a deep dip.
    pub engineering_quiet_h: f64,
    /// A sensor or meter silent this long (and no outage) raises a maintenance ticket.
    pub lost_after_s: f64,
    /// Peak demand over this many hours sizes the generator.
    pub demand_window_h: f64,
    /// Power factor assumed to turn kW into kVA for the generator.
    pub power_factor: f64,
    /// Margin on the peak, e.g. 1.2 for 20 %.
    pub generator_margin: f64,
}

impl Default for RuleSettings {
    fn default() -> Self {
        RuleSettings {
            momentary_max_s: 300.0,
            flap_window_s: 600.0,
            deep_dip_pct: 70.0,
            deep_dip_count: 3,
            deep_dip_window_h: 24.0,
            engineering_quiet_h: 72.0,
            lost_after_s: 60.0,
            demand_window_h: 168.0,
            power_factor: 0.9,
            generator_margin: 1.2,
        }
    }
}

impl RuleSettings {
    /// Checks every value; keys are relative to `[rules]`. Ranges (documented in
    /// `systemd/kare.toml`): momentary_max_s 1 to 3600 s; flap_window_s 0 to 86 400 s;
    /// deep_dip_pct 1 to 99 %; deep_dip_count 1 to 1000; deep_dip_window_h and
    /// engineering_quiet_h more than 0, at most 8760 h; lost_after_s 1 to 86 400 s;
    /// demand_window_h 1 to 8760 h; power_factor 0.1 to 1; generator_margin 1 to 3. Beyond
    /// them a window no longer fits in a date (3e9 hours panicked the rules at the first
    /// reading) or a ticket says nonsense (a margin of −1 asked for a −9 kVA generator).
    pub fn validate(&self) -> Result<(), crate::config::ConfigProblem> {
        use crate::config::check::{above, within};
        within(
            "momentary_max_s",
            self.momentary_max_s,
            1.0,
            3600.0,
            "seconds",
            "300",
        )?;
        within(
            "flap_window_s",
            self.flap_window_s,
            0.0,
            86_400.0,
            "seconds",
            "600",
        )?;
        within(
            "deep_dip_pct",
            self.deep_dip_pct,
            1.0,
            99.0,
            "% of Udin (a residual voltage)",
            "70.0",
        )?;
        within(
            "deep_dip_count",
            self.deep_dip_count as f64,
            1.0,
            1000.0,
            "dips",
            "3",
        )?;
        above(
            "deep_dip_window_h",
            self.deep_dip_window_h,
            0.0,
            8760.0,
            "hours",
            "24.0",
        )?;
        above(
            "engineering_quiet_h",
            self.engineering_quiet_h,
            0.0,
            8760.0,
            "hours",
            "72.0",
        )?;
        within(
            "lost_after_s",
            self.lost_after_s,
            1.0,
            86_400.0,
            "seconds",
            "60",
        )?;
        within(
            "demand_window_h",
            self.demand_window_h,
            1.0,
            8760.0,
            "hours",
            "168",
        )?;
        within(
            "power_factor",
            self.power_factor,
            0.1,
            1.0,
            "(kW per kVA)",
            "0.9",
        )?;
        within(
            "generator_margin",
            self.generator_margin,
            1.0,
            3.0,
            "times the peak",
            "1.2",
        )?;
        Ok(())
    }
}
