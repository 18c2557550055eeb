//! A scenario's checks: every value in its range, every event inside the run and possible for
//! the node it describes, each message naming the key at fault.

use super::*;

impl Scenario {
    /// Checks every value; the first problem found is returned, naming its key.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if self.nominal_hz != 50 && self.nominal_hz != 60 {
            return Err(ScenarioError::invalid(
                "nominal_hz",
                format!("must be 50 or 60, got {}", self.nominal_hz),
            ));
        }
        let nominal = f64::from(self.nominal_hz);
        let min_rate = 8 * u32::from(self.nominal_hz);
        if !(min_rate..=MAX_SAMPLE_RATE_HZ).contains(&self.sample_rate_hz) {
            return Err(ScenarioError::invalid(
                "sample_rate_hz",
                format!(
                    "must be between {min_rate} (8 samples per cycle) and {MAX_SAMPLE_RATE_HZ}, got {}",
                    self.sample_rate_hz
                ),
            ));
        }
        let rate = f64::from(self.sample_rate_hz);
        range("udin", self.udin, 1.0, 1e6)?;
        if self.channels.is_empty() || self.channels.len() > 3 {
            return Err(ScenarioError::invalid(
                "channels",
                format!(
                    "must name 1 to 3 channels (phases A, B, C in order), got {}",
                    self.channels.len()
                ),
            ));
        }
        for (i, name) in self.channels.iter().enumerate() {
            if name.is_empty() || name.len() > CHANNEL_NAME_LEN {
                return Err(ScenarioError::invalid(
                    format!("channels[{i}]"),
                    format!("must be 1 to {CHANNEL_NAME_LEN} bytes long, got {name:?}"),
                ));
            }
            if self.channels[..i].contains(name) {
                return Err(ScenarioError::invalid(
                    format!("channels[{i}]"),
                    format!("repeats the name {name:?}"),
                ));
            }
        }
        let vpu = self.volts_per_unit;
        if !(vpu.is_finite() && vpu > 0.0) {
            return Err(ScenarioError::invalid(
                "volts_per_unit",
                format!("must be a positive number, got {vpu}"),
            ));
        }
        let peak_units = self.udin * std::f64::consts::SQRT_2 / vpu;
        if peak_units > f64::from(MAX_SAMPLE) {
            return Err(ScenarioError::invalid(
                "volts_per_unit",
                format!(
                    "{vpu} puts the Udin peak at {peak_units:.0} units, beyond the 24-bit ADC's full \
                     scale {MAX_SAMPLE}: use at least {:.3e}",
                    self.udin * std::f64::consts::SQRT_2 / f64::from(MAX_SAMPLE)
                ),
            ));
        }
        if peak_units < MIN_PEAK_UNITS {
            return Err(ScenarioError::invalid(
                "volts_per_unit",
                format!(
                    "{vpu} gives the Udin peak only {peak_units:.0} node units: use at most {:.3e}",
                    self.udin * std::f64::consts::SQRT_2 / MIN_PEAK_UNITS
                ),
            ));
        }
        if let Some(d) = self.duration_s {
            positive("duration_s", d, 1e9)?;
        }
        match (self.repeat, self.period_s) {
            (true, None) => {
                return Err(ScenarioError::invalid(
                    "period_s",
                    "is needed with repeat = true (the length of one pass, seconds)",
                ))
            }
            (false, Some(_)) => {
                return Err(ScenarioError::invalid(
                    "period_s",
                    "only applies with repeat = true",
                ))
            }
            (true, Some(p)) => {
                positive("period_s", p, 1e9)?;
            }
            (false, None) => {}
        }

        // Multiplied before dividing so that 50 Hz gives exactly 45 and 55 in messages.
        let lo = nominal * (100.0 - FREQUENCY_RANGE_PCT) / 100.0;
        let hi = nominal * (100.0 + FREQUENCY_RANGE_PCT) / 100.0;
        if let Some(f) = self.background.frequency_hz {
            range("background.frequency_hz", f, lo, hi)?;
        }
        range("background.noise_pct", self.background.noise_pct, 0.0, 10.0)?;
        for (i, (order, pct)) in self.background.harmonics.iter().enumerate() {
            let key = format!("background.harmonics[{i}]");
            if *order < 2 {
                return Err(ScenarioError::invalid(
                    key,
                    format!("order must be 2 or more, got {order}"),
                ));
            }
            // The highest fundamental allowed must still put the harmonic below Nyquist,
            // or it would alias onto a lower frequency.
            if f64::from(*order) * hi >= rate / 2.0 {
                return Err(ScenarioError::invalid(
                    key,
                    format!(
                        "order {order} at up to {hi} Hz is not below half the sample rate ({} Hz)",
                        rate / 2.0
                    ),
                ));
            }
            range(&format!("{key} percentage"), *pct, 0.0, 100.0)?;
            if self.background.harmonics[..i]
                .iter()
                .any(|(o, _)| o == order)
            {
                return Err(ScenarioError::invalid(
                    key,
                    format!("repeats order {order}"),
                ));
            }
        }

        let mut drift_end = 0.0;
        for (i, d) in self.drift.iter().enumerate() {
            range(&format!("drift[{i}].at_s"), d.at_s, 0.0, 1e9)?;
            range(&format!("drift[{i}].over_s"), d.over_s, 0.0, 1e9)?;
            range(&format!("drift[{i}].to_hz"), d.to_hz, lo, hi)?;
            if i > 0 && d.at_s < drift_end {
                return Err(ScenarioError::invalid(
                    format!("drift[{i}].at_s"),
                    format!(
                        "is {} s, before drift[{}] ends at {drift_end} s (drifts go in time order and do not overlap)",
                        d.at_s,
                        i - 1
                    ),
                ));
            }
            drift_end = d.at_s + d.over_s;
            self.within_period(&format!("drift[{i}]"), drift_end)?;
        }

        for (i, e) in self.event.iter().enumerate() {
            self.validate_event(i, e, lo, hi)?;
        }
        Ok(())
    }

    pub(super) fn within_period(&self, what: &str, end: f64) -> Result<(), ScenarioError> {
        match self.period_s {
            Some(p) if self.repeat && end > p => Err(ScenarioError::invalid(
                what.to_string(),
                format!("ends at {end} s, after the end of the pass (period_s = {p})"),
            )),
            _ => Ok(()),
        }
    }

    pub(super) fn validate_event(
        &self,
        i: usize,
        e: &Event,
        lo: f64,
        hi: f64,
    ) -> Result<(), ScenarioError> {
        let key = |field: &str| format!("event[{i}].{field}");
        range(&key("at_s"), e.at_s, 0.0, 1e9)?;
        positive(&key("duration_s"), e.duration_s, 1e9)?;
        self.within_period(&format!("event[{i}]"), e.end_s())?;

        use EventKind::*;
        let kind = e.kind;
        // Which optional fields the kind takes, and which it cannot do without.
        let (level, phases, noise, to_hz, degrees) = match kind {
            Dip | Swell => (Need::Required, Need::Optional, Need::No, Need::No, Need::No),
            Interruption => (Need::Optional, Need::No, Need::Optional, Need::No, Need::No),
            PhaseLoss => (Need::No, Need::Required, Need::No, Need::No, Need::No),
            Frequency => (Need::No, Need::No, Need::No, Need::Required, Need::No),
            PhaseJump => (Need::No, Need::Optional, Need::No, Need::No, Need::Required),
        };
        let present = [
            ("level_pct", e.level_pct.is_some(), level),
            ("phases", e.phases.is_some(), phases),
            ("noise_pct", e.noise_pct.is_some(), noise),
            ("to_hz", e.to_hz.is_some(), to_hz),
            ("degrees", e.degrees.is_some(), degrees),
        ];
        for (field, is_set, need) in present {
            match (is_set, need) {
                (true, Need::No) => {
                    return Err(ScenarioError::invalid(
                        key(field),
                        format!("does not apply to kind = \"{kind}\""),
                    ))
                }
                (false, Need::Required) => {
                    return Err(ScenarioError::invalid(
                        key(field),
                        format!("is needed for kind = \"{kind}\""),
                    ))
                }
                _ => {}
            }
        }

        if let Some(level) = e.level_pct {
            range(&key("level_pct"), level, 0.0, 200.0)?;
            let (lo, hi, why) = match kind {
                Dip => (
                    0.0,
                    100.0,
                    "a dip lowers the voltage (use kind = \"swell\" to raise it)",
                ),
                Swell => (
                    100.0,
                    200.0,
                    "a swell raises the voltage (use kind = \"dip\" to lower it)",
                ),
                _ => (
                    0.0,
                    10.0,
                    "an interruption leaves at most 10 % (use kind = \"dip\" for more)",
                ),
            };
            if !(lo..=hi).contains(&level) {
                return Err(ScenarioError::invalid(
                    key("level_pct"),
                    format!(
                        "must be between {lo} and {hi} for kind = \"{kind}\", got {level}: {why}"
                    ),
                ));
            }
        }
        if let Some(phases) = &e.phases {
            if phases.is_empty() {
                return Err(ScenarioError::invalid(
                    key("phases"),
                    "must name at least one phase (\"A\", \"B\" or \"C\")",
                ));
            }
            for (j, p) in phases.iter().enumerate() {
                if p.index() >= self.channels.len() {
                    return Err(ScenarioError::invalid(
                        format!("event[{i}].phases[{j}]"),
                        format!(
                            "is phase {p:?}, but the node has {} channel(s)",
                            self.channels.len()
                        ),
                    ));
                }
                if phases[..j].contains(p) {
                    return Err(ScenarioError::invalid(
                        format!("event[{i}].phases[{j}]"),
                        format!("repeats phase {p:?}"),
                    ));
                }
            }
        }
        if let Some(noise) = e.noise_pct {
            range(&key("noise_pct"), noise, 0.0, 10.0)?;
        }
        if let Some(f) = e.to_hz {
            range(&key("to_hz"), f, lo, hi)?;
        }
        if let Some(d) = e.degrees {
            range(&key("degrees"), d, -180.0, 180.0)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Need {
    No,
    Optional,
    Required,
}

/// `value` must be finite and within `lo..=hi`.
pub(super) fn range(key: &str, value: f64, lo: f64, hi: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        return Ok(());
    }
    Err(ScenarioError::invalid(
        key,
        format!("must be between {lo} and {hi}, got {value}"),
    ))
}

/// `value` must be finite, above 0 and at most `hi`.
pub(super) fn positive(key: &str, value: f64, hi: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && value > 0.0 && value <= hi {
        return Ok(());
    }
    Err(ScenarioError::invalid(
        key,
        format!("must be above 0 and at most {hi}, got {value}"),
    ))
}
