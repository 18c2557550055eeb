//! Polyphase dip, swell and interruption detection on Urms(1/2) values (IEC 61000-4-30 §5.4).
//!
//! Each kind of event is judged by its own rule, independently of the others:
//!
//! | kind | begins | ends |
//! |---|---|---|
//! | dip | any channel below the dip threshold | every channel at or above threshold + hysteresis |
//! | swell | any channel above the swell threshold | every channel at or below threshold − hysteresis |
//! | interruption | every channel below the interruption threshold | any channel at or above threshold + hysteresis |
//!
//! So an interruption always lies inside a dip (its stamps are kept inside the dip's), and both
//! are reported; reports that count outages count the interruption once.
//!
//! ## Time stamps
//!
//! A Urms(1/2) value covers a whole cycle, so a sudden change is seen over a cycle, and where in
//! that cycle a threshold is crossed depends on the depth: a dip to 0 % crosses 90 % when a fifth
//! of the window holds it, a dip to 85 % when two thirds do, an interruption only when the whole
//! window does. Stamping every edge at the start of the crossing window (as many instruments do)
//! puts a deep dip's start up to a cycle early and reads an N-cycle interruption as N − 1; with
//! half-cycle steps on top, both miss IEC 62586-2's one cycle. kare therefore stamps as follows
//! (the conformance suite, `docs/conformance.md`, checks it against rectangular test signals):
//!
//! 1. **Between windows.** The mean square of a window sliding across a step changes linearly
//!    with its position, so the position at which the value crossed the threshold is interpolated
//!    in Urms² between the channel's previous value and the one that crossed.
//! 2. **Start.** Dips and swells: the centre of the window at that crossing (between none and all
//!    of it held the change, so the stamp is within half a cycle of a sudden change whatever its
//!    depth). Interruptions: the start of that window, which lies wholly inside the loss.
//! 3. **End.** On the same basis, less the window's smear: a rectangular change lasting `D` is
//!    seen from threshold to threshold for `D + (1 − x_s − x_e)` cycles, where `x_s` and `x_e` are
//!    the fractions of a window holding the event when the start and end thresholds are crossed.
//!    Both follow from the thresholds and the event's extreme (the supply before and after taken
//!    at Udin), so the duration reported is that of the change, not of the window's view of it.
//!
//! Measured on the grid of rectangular dips, swells and interruptions (0–150 %, 1.5 cycles to 3 s,
//! 0–135°, one and three phases, 50/60 Hz ± 1 %, 6400 and 3750 Sps): start within ±0.53 cycle,
//! duration within ±0.54 cycle, residual within ±0.19 % of Udin (`docs/conformance.md`).
//!
//! Limits: the smear correction assumes one step to the extreme from a supply at Udin, so a
//! multi-stage event (89 % → 0 % → 91 %) reads up to about 1.5 cycles short, and one from a
//! supply well off Udin is off by a fraction of a cycle; when several channels cross in the same
//! window, the first judged (lowest-numbered) channel sets the start.

use crate::urms::Pos;
pub use crate::urms::MAX_CHANNELS;

/// What kind of voltage event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Voltage dip (sag): Urms(1/2) below the dip threshold on at least one channel.
    Dip,
    /// Voltage swell: Urms(1/2) above the swell threshold on at least one channel.
    Swell,
    /// Interruption: Urms(1/2) below the interruption threshold on every channel.
    Interruption,
}

impl EventKind {
    /// Lower-case name as used in reports and the `kare replay` contract.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Dip => "dip",
            EventKind::Swell => "swell",
            EventKind::Interruption => "interruption",
        }
    }
}

/// The default dip threshold, % of Udin (IEC 61000-4-30 / EN 50160: 90 %).
pub const DEFAULT_DIP_PCT: f32 = 90.0;
/// The default swell threshold, % of Udin (110 %).
pub const DEFAULT_SWELL_PCT: f32 = 110.0;
/// The default interruption threshold, % of Udin (EN 50160 uses 5 %, IEEE 1159 10 %; kare 10 %).
pub const DEFAULT_INTERRUPTION_PCT: f32 = 10.0;
/// The default hysteresis, % of Udin (IEC 61000-4-30 suggests 2 %).
pub const DEFAULT_HYSTERESIS_PCT: f32 = 2.0;

/// Declared voltage and thresholds. Percentages are of Udin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Declared input voltage Udin, in the unit of the observed values.
    pub udin: f32,
    /// Dip threshold, % of Udin (typically 90).
    pub dip_pct: f32,
    /// Swell threshold, % of Udin (typically 110).
    pub swell_pct: f32,
    /// Interruption threshold, % of Udin (typically 5 or 10).
    pub interruption_pct: f32,
    /// Hysteresis, % of Udin (typically 2).
    pub hysteresis_pct: f32,
}

impl Thresholds {
    /// The usual settings: dip 90 %, swell 110 %, interruption 10 %, hysteresis 2 %.
    pub fn typical(udin: f32) -> Self {
        Thresholds {
            udin,
            dip_pct: DEFAULT_DIP_PCT,
            swell_pct: DEFAULT_SWELL_PCT,
            interruption_pct: DEFAULT_INTERRUPTION_PCT,
            hysteresis_pct: DEFAULT_HYSTERESIS_PCT,
        }
    }

    /// Checks the settings make sense; returns a description of the first problem found.
    pub fn validate(&self) -> Result<(), &'static str> {
        let finite = [
            self.udin,
            self.dip_pct,
            self.swell_pct,
            self.interruption_pct,
            self.hysteresis_pct,
        ]
        .iter()
        .all(|v| v.is_finite());
        if !finite {
            return Err("every threshold and Udin must be a finite number");
        }
        if self.udin <= 0.0 {
            return Err("Udin must be greater than zero");
        }
        if self.hysteresis_pct < 0.0 {
            return Err("hysteresis must not be negative");
        }
        if !(self.interruption_pct > 0.0 && self.interruption_pct < self.dip_pct) {
            return Err("the interruption threshold must be above 0 % and below the dip threshold");
        }
        if self.dip_pct >= 100.0 {
            return Err("the dip threshold must be below 100 %");
        }
        if self.swell_pct <= 100.0 {
            return Err("the swell threshold must be above 100 %");
        }
        // A dip ends at its threshold + hysteresis, a swell at its threshold − hysteresis: with
        // a hysteresis as wide as the margin to 100 %, a supply back at exactly Udin would never
        // end either. Half the margin leaves room for a supply that settles a little off Udin.
        let margin = (100.0 - self.dip_pct).min(self.swell_pct - 100.0);
        if self.hysteresis_pct > margin / 2.0 {
            return Err("the hysteresis must be at most half the smaller margin to 100 % (100 − dip threshold, swell threshold − 100), or a dip or swell may never end; the typical 2 % suits 90/110 %");
        }
        Ok(())
    }

    fn level(&self, pct: f32) -> f32 {
        self.udin * pct / 100.0
    }
}

/// One Urms(1/2) value of one channel, in the unit of [`Thresholds::udin`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Observation {
    /// Channel index, `0..channels`.
    pub channel: u8,
    /// Start of the value's one-cycle window.
    pub start: Pos,
    /// End of the window.
    pub end: Pos,
    /// The Urms(1/2) value.
    pub value: f32,
}

/// A characterised event: finished, or still in progress when `end` is `None`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    /// Detector-local sequence number, starting at 1.
    pub id: u32,
    /// Dip, swell or interruption.
    pub kind: EventKind,
    /// When the event began (see the module notes on time stamps; never changes once `Started`).
    pub start: Pos,
    /// When it ended (module notes); `None` while in progress.
    pub end: Option<Pos>,
    /// Residual (dip, interruption: lowest value on any channel) or maximum (swell).
    pub extreme: f32,
    /// Channel on which `extreme` was seen.
    pub worst_channel: u8,
    /// Lowest (dip, interruption) or highest (swell) value per channel during the event;
    /// `NaN` for a channel that reported nothing during it.
    pub channel_extremes: [f32; MAX_CHANNELS],
}

impl Event {
    /// Length of the event in 1/256 samples, up to `end` or, while open, up to `until`.
    pub fn length(&self, until: Pos) -> Pos {
        self.end.unwrap_or(until).saturating_sub(self.start)
    }

    fn record(&mut self, obs: &Observation) {
        let ch = obs.channel as usize;
        let more_extreme = |a: f32, b: f32| match self.kind {
            EventKind::Swell => a > b,
            EventKind::Dip | EventKind::Interruption => a < b,
        };
        if more_extreme(obs.value, self.extreme) {
            self.extreme = obs.value;
            self.worst_channel = obs.channel;
        }
        let slot = &mut self.channel_extremes[ch];
        if slot.is_nan() || more_extreme(obs.value, *slot) {
            *slot = obs.value;
        }
    }
}

/// What the detector has to tell after an observation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transition {
    /// An event has begun. Sent at once so that a ticket can be raised within a half cycle;
    /// `event` holds what is known so far (`end` is `None`).
    Started(Event),
    /// An event has ended, fully characterised.
    Ended(Event),
}

/// Up to one transition per kind of event can follow one observation.
pub type Transitions = heapless::Vec<Transition, 3>;

/// One kind's state machine.
#[derive(Clone, Debug)]
struct Machine {
    kind: EventKind,
    /// Per channel: is this channel past the threshold (dip: below, swell: above, interruption: below)?
    flagged: [bool; MAX_CHANNELS],
    /// Per channel: has it reported at least once? (interruptions need every channel)
    seen: [bool; MAX_CHANNELS],
    active: Option<Event>,
}

impl Machine {
    fn new(kind: EventKind) -> Self {
        Machine {
            kind,
            flagged: [false; MAX_CHANNELS],
            seen: [false; MAX_CHANNELS],
            active: None,
        }
    }

    /// Starts an event at `at` on `obs`; `earlier` are the other channels' values of the same
    /// window, judged before `obs` (an interruption starts on the last channel to fall, and the
    /// lowest value of its first window may well be on another).
    fn start(&mut self, id: u32, obs: &Observation, at: Pos, earlier: &[Observation]) -> Event {
        let mut ev = Event {
            id,
            kind: self.kind,
            start: at,
            end: None,
            extreme: obs.value,
            worst_channel: obs.channel,
            channel_extremes: [f32::NAN; MAX_CHANNELS],
        };
        ev.record(obs);
        for o in earlier {
            ev.record(o);
        }
        self.active = Some(ev);
        ev
    }
}

/// The polyphase detector: feed it every channel's Urms(1/2) values in time order.
#[derive(Clone, Debug)]
pub struct Detector {
    thresholds: Thresholds,
    channels: u8,
    dip: Machine,
    swell: Machine,
    interruption: Machine,
    next_id: u32,
    /// Per channel: the window start and value of its previous observation (NaN: none yet).
    prev: [(Pos, f32); MAX_CHANNELS],
    /// End of the last interruption, which the dip around it must not end before.
    interruption_end: Option<Pos>,
}

impl Detector {
    /// A detector for `channels` channels (1..=[`MAX_CHANNELS`]; more are clamped).
    pub fn new(thresholds: Thresholds, channels: usize) -> Self {
        Detector {
            thresholds,
            channels: channels.clamp(1, MAX_CHANNELS) as u8,
            dip: Machine::new(EventKind::Dip),
            swell: Machine::new(EventKind::Swell),
            interruption: Machine::new(EventKind::Interruption),
            next_id: 1,
            prev: [(0, f32::NAN); MAX_CHANNELS],
            interruption_end: None,
        }
    }

    /// The thresholds in force.
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Number of channels judged together.
    pub fn channels(&self) -> usize {
        self.channels as usize
    }

    /// Judges one value. Values must come in order of their window's end across all channels.
    /// Observations for channels beyond [`Self::channels`] are ignored.
    pub fn observe(&mut self, obs: &Observation) -> Transitions {
        let mut out = Transitions::new();
        let ch = obs.channel as usize;
        if ch >= self.channels as usize || !obs.value.is_finite() {
            return out;
        }
        let t = self.thresholds;
        let n = self.channels as usize;
        let v = obs.value;

        // Dip: any channel below starts it, all channels recovered past the hysteresis ends it.
        let (dip_level, dip_release) = (t.dip_pct, t.dip_pct + t.hysteresis_pct);
        let below = if self.dip.flagged[ch] {
            v < t.level(dip_release)
        } else {
            v < t.level(dip_level)
        };
        self.dip.flagged[ch] = below;
        let any_dip = self.dip.flagged[..n].iter().any(|f| *f);
        let crossed = if below { dip_level } else { dip_release };
        if let Some(tr) = self.step_any(EventKind::Dip, obs, any_dip, crossed) {
            let _ = out.push(tr);
        }

        // Swell: mirror image of the dip.
        let (swell_level, swell_release) = (t.swell_pct, t.swell_pct - t.hysteresis_pct);
        let above = if self.swell.flagged[ch] {
            v > t.level(swell_release)
        } else {
            v > t.level(swell_level)
        };
        self.swell.flagged[ch] = above;
        let any_swell = self.swell.flagged[..n].iter().any(|f| *f);
        let crossed = if above { swell_level } else { swell_release };
        if let Some(tr) = self.step_any(EventKind::Swell, obs, any_swell, crossed) {
            let _ = out.push(tr);
        }

        // Interruption: every channel below starts it; any channel past the hysteresis ends it.
        // It lies inside its dip (design.md): the dip is never stamped to end before it.
        self.interruption.seen[ch] = true;
        if let Some(tr) = self.step_interruption(obs) {
            if let Transition::Ended(i) = tr {
                self.interruption_end = i.end;
                for t in out.iter_mut() {
                    if let Transition::Ended(d) = t {
                        if d.kind == EventKind::Dip {
                            d.end = d.end.max(i.end);
                        }
                    }
                }
            }
            let _ = out.push(tr);
        }
        self.prev[ch] = (obs.start, v);
        out
    }

    /// The window position at which this channel's value crossed `pct` % of Udin, had the
    /// window slid continuously: the mean square of a window moving across a step changes
    /// linearly with its position, so the crossing is interpolated in Urms² between the channel's
    /// previous value and `obs`. The same windows, read finer than their half-cycle spacing.
    /// `None` when there is no neighbouring previous value (the start of the data, or windows
    /// left out before this one).
    fn crossing(&self, obs: &Observation, pct: f32) -> Option<Pos> {
        let (prev_start, prev) = self.prev[obs.channel as usize];
        // Only between neighbouring windows (half a cycle apart): never across windows left out
        // as flagged, or a gap.
        let neighbour = prev_start < obs.start
            && obs.start - prev_start <= obs.end.saturating_sub(obs.start) * 3 / 4;
        if !prev.is_finite() || !neighbour {
            return None;
        }
        let level = self.thresholds.level(pct);
        let (a, b, t) = (prev * prev, obs.value * obs.value, level * level);
        let f = if a == b {
            1.0
        } else {
            ((a - t) / (a - b)).clamp(0.0, 1.0)
        };
        Some(prev_start + ((obs.start - prev_start) as f32 * f) as Pos)
    }

    /// An event's start: the centre of the window at its (interpolated) threshold crossing, as
    /// a fraction between none and all of that window holds the change, whatever its depth;
    /// so the stamp lies within half a cycle of a sudden change. An interruption begins only
    /// when a whole window lies inside the loss, so its start is that window's start. With no
    /// value before it (the start of the data), the event was there when the window began.
    fn start_stamp(&self, kind: EventKind, obs: &Observation, pct: f32) -> Pos {
        self.crossing(obs, pct)
            .map_or(obs.start, |at| at.saturating_add(basis(kind, obs)))
    }

    /// An event's end, given its start: the threshold-to-threshold time less the one-cycle
    /// window's smear. A window crosses the start threshold when a fraction `x_s` of it holds
    /// the event, and the end threshold when a fraction `x_e` still does, so a rectangular change
    /// lasting `D` is seen for `D + (1 − x_s − x_e)` cycles; the fractions follow from the
    /// thresholds and the event's extreme (taking the supply before and after at Udin).
    fn end_stamp(&self, obs: &Observation, pct: f32, ev: &Event) -> Pos {
        let t = self.thresholds;
        let (begin, end) = match ev.kind {
            EventKind::Dip => (t.dip_pct, t.dip_pct + t.hysteresis_pct),
            EventKind::Swell => (t.swell_pct, t.swell_pct - t.hysteresis_pct),
            EventKind::Interruption => (t.interruption_pct, t.interruption_pct + t.hysteresis_pct),
        };
        // The start was crossed on the worst channel's change (or one like it); the end on this
        // channel's.
        let own = ev.channel_extremes[obs.channel as usize];
        let own = if own.is_finite() { own } else { ev.extreme };
        let share = |pct: f32, extreme: f32| {
            let (l, q) = (pct / 100.0, extreme / t.udin);
            let x = (1.0 - l * l) / (1.0 - q * q);
            if x.is_finite() {
                x.clamp(0.0, 1.0)
            } else {
                1.0
            }
        };
        let smear = 1.0 - share(begin, ev.extreme) - share(end, own);
        let len = obs.end.saturating_sub(obs.start) as f32;
        let crossed = self.crossing(obs, pct).unwrap_or(obs.start);
        let at = crossed.saturating_add(basis(ev.kind, obs));
        // Only the correction is a float (a few cycles at most): the clock position itself is
        // far beyond f32's 24 bits after a few days of running.
        let shift = (smear * len) as i64;
        let at = if shift >= 0 {
            at.saturating_sub(shift as Pos)
        } else {
            at.saturating_add(shift.unsigned_abs())
        };
        at.max(ev.start)
    }

    /// Dip and swell: the event lasts while any channel is flagged; `crossed` is the threshold
    /// this channel's value was judged against.
    fn step_any(
        &mut self,
        kind: EventKind,
        obs: &Observation,
        any: bool,
        crossed: f32,
    ) -> Option<Transition> {
        let id = self.next_id;
        let active = match kind {
            EventKind::Dip => self.dip.active,
            _ => self.swell.active,
        };
        let tr = match (active, any) {
            (None, true) => {
                let at = self.start_stamp(kind, obs, crossed);
                self.next_id += 1;
                let earlier = self.earlier_in_window(obs);
                Transition::Started(self.machine(kind).start(id, obs, at, &earlier))
            }
            (Some(mut ev), true) => {
                ev.record(obs);
                self.machine(kind).active = Some(ev);
                return None;
            }
            (Some(mut ev), false) => {
                ev.record(obs);
                let mut end = self.end_stamp(obs, crossed, &ev);
                if kind == EventKind::Dip {
                    if let Some(i) = self.interruption_end.filter(|i| *i > ev.start) {
                        end = end.max(i);
                    }
                }
                ev.end = Some(end);
                self.machine(kind).active = None;
                Transition::Ended(ev)
            }
            (None, false) => return None,
        };
        Some(tr)
    }

    /// The other channels' values of `obs`'s window, already judged.
    fn earlier_in_window(&self, obs: &Observation) -> heapless::Vec<Observation, MAX_CHANNELS> {
        let mut out = heapless::Vec::new();
        for (ch, (start, value)) in self.prev.iter().enumerate().take(self.channels as usize) {
            if ch != obs.channel as usize && *start == obs.start && value.is_finite() {
                let _ = out.push(Observation {
                    channel: ch as u8,
                    start: obs.start,
                    end: obs.end,
                    value: *value,
                });
            }
        }
        out
    }

    fn machine(&mut self, kind: EventKind) -> &mut Machine {
        match kind {
            EventKind::Dip => &mut self.dip,
            EventKind::Swell => &mut self.swell,
            EventKind::Interruption => &mut self.interruption,
        }
    }

    fn step_interruption(&mut self, obs: &Observation) -> Option<Transition> {
        let t = self.thresholds;
        let (level, release) = (t.interruption_pct, t.interruption_pct + t.hysteresis_pct);
        let n = self.channels as usize;
        let ch = obs.channel as usize;
        match self.interruption.active {
            None => {
                let m = &mut self.interruption;
                m.flagged[ch] = obs.value < t.level(level);
                let all = m.seen[..n].iter().all(|s| *s) && m.flagged[..n].iter().all(|f| *f);
                if !all {
                    return None;
                }
                // Never before the dip it lies in (started on this or an earlier window).
                let dip_start = self.dip.active.map_or(0, |d| d.start);
                let at = self
                    .start_stamp(EventKind::Interruption, obs, level)
                    .max(dip_start);
                let earlier = self.earlier_in_window(obs);
                let ev = self.interruption.start(self.next_id, obs, at, &earlier);
                self.next_id += 1;
                Some(Transition::Started(ev))
            }
            Some(mut ev) => {
                ev.record(obs);
                if obs.value < t.level(release) {
                    self.interruption.active = Some(ev);
                    return None;
                }
                ev.end = Some(self.end_stamp(obs, release, &ev));
                let m = &mut self.interruption;
                m.active = None;
                // The channel that ended it is above the threshold; others keep their state.
                m.flagged[ch] = false;
                Some(Transition::Ended(ev))
            }
        }
    }

    /// Events still in progress, in the order dip, swell, interruption (for the end of a recording).
    pub fn open_events(&self) -> impl Iterator<Item = Event> + '_ {
        [&self.dip, &self.swell, &self.interruption]
            .into_iter()
            .filter_map(|m| m.active)
    }
}

/// Where in the crossing window an event's edges are stamped (see [`Detector::start_stamp`]).
fn basis(kind: EventKind, obs: &Observation) -> Pos {
    match kind {
        EventKind::Interruption => 0,
        EventKind::Dip | EventKind::Swell => obs.end.saturating_sub(obs.start) / 2,
    }
}

#[cfg(test)]
mod tests {
    use super::Thresholds;

    #[test]
    fn a_hysteresis_wider_than_half_the_margin_is_refused() {
        let ok = Thresholds::typical(230.0);
        assert_eq!(ok.validate(), Ok(()));
        // 50 %: a dip would end only at 140 % of Udin, a swell at 60 %: never.
        let wide = Thresholds {
            hysteresis_pct: 50.0,
            ..ok
        };
        assert!(wide.validate().unwrap_err().contains("hysteresis"));
        // The margin that counts is the smaller one: 95/110 leaves 5 %, so 2.5 % at most.
        let near = Thresholds {
            dip_pct: 95.0,
            hysteresis_pct: 2.5,
            ..ok
        };
        assert_eq!(near.validate(), Ok(()));
        let over = Thresholds {
            hysteresis_pct: 2.6,
            ..near
        };
        assert!(over.validate().is_err());
    }

    #[test]
    fn an_edge_is_interpolated_between_neighbouring_windows_only() {
        use super::{Detector, EventKind, Observation, Transition};
        let obs = |start: u64, value: f32| Observation {
            channel: 0,
            start,
            end: start + 2000,
            value,
        };
        let started = |d: &mut Detector, o: Observation| {
            d.observe(&o).into_iter().find_map(|t| match t {
                Transition::Started(e) if e.kind == EventKind::Dip => Some(e.start),
                _ => None,
            })
        };
        // Neighbours (half a window apart): 230 V then 0 V. Urms² falls linearly between them,
        // crossing 90 % (207 V) at 19 % of the way: 190 units on, plus half a window (centre).
        let mut d = Detector::new(super::Thresholds::typical(230.0), 1);
        let _ = d.observe(&obs(0, 230.0));
        assert_eq!(started(&mut d, obs(1000, 0.0)), Some(190 + 1000));
        // Windows left out between them (flagged, or a gap): no interpolation across.
        let mut d = Detector::new(super::Thresholds::typical(230.0), 1);
        let _ = d.observe(&obs(0, 230.0));
        assert_eq!(started(&mut d, obs(9000, 0.0)), Some(9000));
    }

    #[test]
    fn a_window_ending_before_it_starts_is_judged_without_panic() {
        // A corrupt frame could carry such a window; the detector must not underflow.
        use super::{Detector, Observation};
        let mut d = Detector::new(super::Thresholds::typical(230.0), 1);
        for (start, end, value) in [(5000, 1000, 230.0), (6000, 10, 0.0), (7000, 0, 230.0)] {
            let _ = d.observe(&Observation {
                channel: 0,
                start,
                end,
                value,
            });
        }
    }

    /// A three-cycle interruption on one channel, windows every half cycle of `half` positions,
    /// on a clock that has run to `base`: (started, ended) events.
    fn interruption_at(base: u64, half: u64) -> (super::Event, super::Event) {
        use super::{Detector, EventKind, Observation, Transition};
        let mut d = Detector::new(super::Thresholds::typical(230.0), 1);
        let (mut started, mut ended) = (None, None);
        for k in 0..40u64 {
            // The loss covers windows 10..=14 wholly (windows 9 and 15 half).
            let value = match k {
                10..=14 => 0.0,
                9 | 15 => 230.0 * 0.5f32.sqrt(),
                _ => 230.0,
            };
            let o = Observation {
                channel: 0,
                start: base + k * half,
                end: base + k * half + 2 * half,
                value,
            };
            for t in d.observe(&o) {
                match t {
                    Transition::Started(e) if e.kind == EventKind::Interruption => {
                        started = Some(e)
                    }
                    Transition::Ended(e) if e.kind == EventKind::Interruption => ended = Some(e),
                    _ => {}
                }
            }
        }
        (started.unwrap(), ended.unwrap())
    }

    #[test]
    fn durations_do_not_depend_on_how_long_the_clock_has_run() {
        // 3750 Sps, 50 Hz: 37.5 samples per half cycle. After 30 days the clock is ~2.5e12
        // positions, far beyond f32's 24 bits: the duration must still be the same.
        let half = 9600;
        let (s0, e0) = interruption_at(0, half);
        let base = 30 * 86_400 * 3750 * 256;
        let (s1, e1) = interruption_at(base, half);
        let d0 = e0.end.unwrap() - e0.start;
        let d1 = e1.end.unwrap() - e1.start;
        assert!(d0 > 5 * half, "{d0}");
        assert!(d0.abs_diff(d1) <= 1, "{d0} at 0, {d1} after 30 days");
        assert_eq!(s1.start - base, s0.start);
    }

    #[test]
    fn an_event_ends_with_the_start_it_started_with() {
        let (started, ended) = interruption_at(0, 9600);
        assert_eq!(started.start, ended.start);
        assert_eq!(started.id, ended.id);
    }
}
