//! Step "Sensor node": listen to each configured node for a while (10 s by default) and judge
//! what it says: who it is (Hello), whether its windows are locked to the supply, each phase's
//! voltage against the declared Udin, the frequency against nominal, the phase sequence (from
//! the angles the node reports, pqlink `Phases`), and whether the link is clean.
//!
//! [`capture`] is the I/O (a serial port, read for a fixed time); [`judge`] is pure, so every
//! wiring fault is a unit test.

use super::check::{Check, Status, Step};
use crate::sources::pqlink::config::NodeEntry;
use crate::web::i18n::Lang;
use kare_firmware::pqlink::{DecoderStats, Frame, Heartbeat, Hello, MAX_CHANNELS};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// What a node said during the capture.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeCapture {
    /// Bytes received.
    pub bytes: u64,
    /// The last Hello.
    pub hello: Option<Hello>,
    /// HalfCycle frames received.
    pub half_cycles: u64,
    /// HalfCycle sequence numbers skipped (frames the node measured but the edge never got).
    pub seq_gaps: u64,
    /// Windows with any channel unlocked, after the first locked one.
    pub unlocked: u64,
    /// Unlocked windows before the first locked one (a node still acquiring the supply).
    pub unlocked_at_start: u64,
    /// Per channel: sum of Urms(1/2) in node units over the locked windows.
    pub urms_sum: [f64; MAX_CHANNELS],
    /// Per channel: the lowest and highest Urms(1/2), node units.
    pub urms_min: [f64; MAX_CHANNELS],
    /// See [`Self::urms_min`].
    pub urms_max: [f64; MAX_CHANNELS],
    /// Locked windows summed in `urms_sum`.
    pub locked: u64,
    /// Sum of the tracked frequency over the locked windows, Hz.
    pub freq_sum: f64,
    /// The decoder's counters at the end.
    pub decoder: DecoderStats,
    /// Decoding errors before the first whole frame (the capture began mid-frame): not counted
    /// against the link.
    pub cut_at_start: u64,
    /// First and last heartbeat.
    pub heartbeats: (Option<Heartbeat>, Option<Heartbeat>),
    /// The latest phase angles the node reported, degrees each channel lags channel 0 (`None`:
    /// no fundamental on that channel); `None` when the node sent none (firmware before pqlink 2).
    pub phases: Option<[Option<f64>; MAX_CHANNELS]>,
    last_seq: Option<u32>,
}

impl NodeCapture {
    /// Takes one decoded frame.
    pub fn take(&mut self, frame: Frame) {
        match frame {
            Frame::Hello(h) => {
                // A node that rebooted mid-capture starts its sequence afresh: not a gap.
                if self.hello.is_some() {
                    self.last_seq = None;
                }
                self.hello = Some(h);
            }
            Frame::HalfCycle(hc) => {
                self.half_cycles += 1;
                if let Some(last) = self.last_seq {
                    self.seq_gaps += u64::from(hc.seq.wrapping_sub(last).wrapping_sub(1));
                }
                self.last_seq = Some(hc.seq);
                let unlocked = hc.channels.iter().any(|c| {
                    c.flags
                        .contains(kare_firmware::pqlink::ChannelFlags::UNLOCKED)
                });
                if unlocked {
                    // A node that has just booted (or been plugged in) is still learning the
                    // supply: windows before its first locked one are not a loss of lock.
                    if self.locked > 0 {
                        self.unlocked += 1;
                    } else {
                        self.unlocked_at_start += 1;
                    }
                    return;
                }
                for (i, c) in hc.channels.iter().enumerate().take(MAX_CHANNELS) {
                    let u = f64::from(c.urms);
                    if self.locked == 0 || u < self.urms_min[i] {
                        self.urms_min[i] = u;
                    }
                    if self.locked == 0 || u > self.urms_max[i] {
                        self.urms_max[i] = u;
                    }
                    self.urms_sum[i] += u;
                }
                self.locked += 1;
                self.freq_sum += f64::from(hc.freq_mhz) / 1000.0;
            }
            Frame::Heartbeat(hb) => {
                if self.heartbeats.0.is_none() {
                    self.heartbeats.0 = Some(hb.clone());
                }
                self.heartbeats.1 = Some(hb);
            }
            Frame::Phases(p) => {
                let a = p.angles();
                self.phases = Some(std::array::from_fn(|i| {
                    a[i].map(|cdeg| f64::from(cdeg) / 100.0)
                }));
            }
            Frame::Capture(_) => {}
        }
    }

    /// Mean voltage per channel over the locked windows, volts (needs the Hello's scale).
    pub fn mean_volts(&self) -> Option<Vec<f64>> {
        let h = self.hello.as_ref()?;
        if self.locked == 0 {
            return None;
        }
        Some(
            h.channels
                .iter()
                .enumerate()
                .map(|(i, c)| self.urms_sum[i] / self.locked as f64 * f64::from(c.volts_per_unit))
                .collect(),
        )
    }

    /// Mean tracked frequency over the locked windows.
    pub fn mean_frequency(&self) -> Option<f64> {
        (self.locked > 0).then(|| self.freq_sum / self.locked as f64)
    }
}

/// The longest a capture waits for a Hello: a node sends one every 10 s.
pub const HELLO_WAIT: Duration = Duration::from_secs(11);

/// Listens on `port` at `baud` for `listen` (longer, up to `hello_wait` from the start, until a
/// Hello came; [`HELLO_WAIT`] covers a node's 10-s Hello), calling `progress` with the fraction elapsed.
pub async fn capture(
    port: &str,
    baud: u32,
    listen: Duration,
    hello_wait: Duration,
    mut progress: impl FnMut(f64),
) -> Result<NodeCapture, String> {
    use tokio_serial::{SerialPort, SerialPortBuilderExt};
    let mut serial = tokio_serial::new(port, baud)
        .open_native_async()
        .map_err(|e| e.to_string())?;
    // What waited in the driver's buffer before we listened is not this capture's: frames from
    // before (and the gap while nobody read) would count as link errors.
    let _ = serial.clear(tokio_serial::ClearBuffer::Input);
    let mut decoder = kare_firmware::pqlink::Decoder::new();
    let mut cap = NodeCapture::default();
    let start = tokio::time::Instant::now();
    let end = start + listen;
    let mut buf = [0u8; 1024];
    let mut seen_frame = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    // A node says Hello every 10 s: a capture shorter than that goes on until one comes.
    let hello_by = end.max(start + hello_wait);
    loop {
        let until = if cap.hello.is_some() { end } else { hello_by };
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break,
            _ = tick.tick() => progress((start.elapsed().as_secs_f64() / listen.as_secs_f64().max(1e-9)).min(0.99)),
            r = serial.read(&mut buf) => match r {
                Ok(0) => break,
                Ok(n) => {
                    cap.bytes += n as u64;
                    let results: Vec<_> = decoder.feed(&buf[..n]).collect();
                    for result in results {
                        match result {
                            Ok(frame) => {
                                seen_frame = true;
                                cap.take(frame);
                            }
                            // The capture starts mid-stream: what comes before the first whole
                            // frame is a cut frame, not damage on the link.
                            Err(_) if !seen_frame => cap.cut_at_start += 1,
                            Err(_) => {}
                        }
                    }
                }
                Err(e) => return Err(e.to_string()),
            },
        }
    }
    progress(1.0);
    cap.decoder = *decoder.stats();
    Ok(cap)
}

/// The phase order three angles show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sequence {
    /// A, B, C: B lags A by 120°, C by 240°.
    Abc,
    /// A, C, B: two phases swapped.
    Acb,
    /// A channel has no fundamental.
    Missing(usize),
    /// Angles that fit neither (two inputs on one phase, a phase reversed).
    Unclear,
}

/// How far off 120° an angle may be and still name the sequence.
pub const SEQUENCE_TOLERANCE_DEG: f64 = 30.0;

/// The sequence of a three-phase node from its angles (degrees each channel lags channel 0).
pub fn sequence(angles: &[Option<f64>]) -> Sequence {
    for (i, a) in angles.iter().enumerate().take(3) {
        if a.is_none() {
            return Sequence::Missing(i);
        }
    }
    let near = |a: Option<f64>, want: f64| {
        a.is_some_and(|a| {
            let d = (a - want + 540.0).rem_euclid(360.0) - 180.0;
            d.abs() <= SEQUENCE_TOLERANCE_DEG
        })
    };
    let (b, c) = (
        angles.get(1).copied().flatten(),
        angles.get(2).copied().flatten(),
    );
    if near(b, 120.0) && near(c, -120.0) {
        Sequence::Abc
    } else if near(b, -120.0) && near(c, 120.0) {
        Sequence::Acb
    } else {
        Sequence::Unclear
    }
}

/// How far from Udin a phase may read (±10 %, as the issue and EN 50160 have it).
pub const VOLTAGE_TOLERANCE_PCT: f64 = 10.0;
/// How far from nominal the frequency may be (EN 50160: ±1 % for 99.5 % of a year).
pub const FREQUENCY_TOLERANCE_PCT: f64 = 1.0;

fn channel_name(h: Option<&Hello>, i: usize) -> String {
    h.and_then(|h| h.channels.get(i))
        .map(|c| c.name.as_str().to_string())
        .unwrap_or_else(|| format!("#{i}"))
}

/// Judges a capture against the node's configuration.
pub fn judge(lang: Lang, node: &NodeEntry, cap: &NodeCapture) -> Vec<Check> {
    let s = node.name.as_str();
    let mut out = Vec::new();
    let port = node.port.as_str();
    if cap.bytes == 0 {
        out.push(
            Check::new(
                Step::Node,
                "node.link",
                s,
                Status::Fail,
                lang.ta("cm-node-silent", &[("port", port)]),
            )
            .fix(lang.t("cm-node-silent-fix")),
        );
        return out;
    }
    let Some(h) = cap.hello.as_ref() else {
        let id = if cap.decoder.unsupported_version > 0 && cap.decoder.frames == 0 {
            "cm-node-newer"
        } else if cap.decoder.frames == 0 {
            "cm-node-garbled"
        } else {
            "cm-node-no-hello"
        };
        out.push(
            Check::new(
                Step::Node,
                "node.hello",
                s,
                Status::Fail,
                lang.ta(
                    id,
                    &[
                        ("port", port),
                        ("baud", &node.baud.to_string()),
                        ("bytes", &cap.bytes.to_string()),
                    ],
                ),
            )
            .fix(lang.t(if id == "cm-node-newer" {
                "cm-node-link-newer-fix"
            } else {
                "cm-node-garbled-fix"
            }))
            .number("bytes", cap.bytes as f64, None),
        );
        return out;
    };
    let fw = format!(
        "{}.{}.{}",
        h.firmware.major, h.firmware.minor, h.firmware.patch
    );
    let names: Vec<&str> = h.channels.iter().map(|c| c.name.as_str()).collect();
    out.push(
        Check::new(
            Step::Node,
            "node.hello",
            s,
            Status::Pass,
            lang.ta(
                "cm-node-hello",
                &[
                    ("id", &format!("{:08x}", h.node_id)),
                    ("firmware", &fw),
                    ("channels", &names.join(", ")),
                    ("rate", &h.sample_rate_hz.to_string()),
                    ("nominal", &h.nominal_hz.to_string()),
                ],
            ),
        )
        .text("node_id", format!("{:08x}", h.node_id))
        .text("firmware", fw)
        .text("channels", names.join(","))
        .number("sample_rate_hz", f64::from(h.sample_rate_hz), Some("S/s"))
        .number("nominal_hz", f64::from(h.nominal_hz), Some("Hz"))
        .number("protocol_version", f64::from(h.protocol_version), None),
    );

    // Lock: every window should be bounded by real zero crossings on a healthy supply.
    let total = cap.locked + cap.unlocked + cap.unlocked_at_start;
    let lock_status = if total == 0 || cap.locked == 0 {
        Status::Fail
    } else if cap.unlocked > 0 {
        Status::Warn
    } else {
        Status::Pass
    };
    let mut lock = Check::new(
        Step::Node,
        "node.lock",
        s,
        lock_status,
        lang.ta(
            if lock_status == Status::Pass {
                "cm-node-locked"
            } else {
                "cm-node-unlocked"
            },
            &[
                ("locked", &cap.locked.to_string()),
                ("total", &total.to_string()),
            ],
        ),
    )
    .number("locked_windows", cap.locked as f64, None)
    .number("windows", total as f64, None)
    .number("acquiring_windows", cap.unlocked_at_start as f64, None);
    if lock_status != Status::Pass {
        lock.fix = Some(lang.t("cm-node-unlocked-fix"));
    }
    out.push(lock);

    // Voltage per phase against Udin.
    let udin = f64::from(node.udin);
    if let Some(volts) = cap.mean_volts() {
        for (i, v) in volts.iter().enumerate() {
            let ch = channel_name(Some(h), i);
            out.push(voltage_check(lang, s, &ch, *v, udin));
        }
    }

    // Frequency against nominal.
    if let Some(f) = cap.mean_frequency() {
        let nominal = f64::from(h.nominal_hz);
        let off = (f - nominal) / nominal * 100.0;
        let args = [
            ("freq", format!("{f:.3}")),
            ("nominal", format!("{nominal:.0}")),
            ("off", format!("{off:+.2}")),
        ];
        let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let ok = off.abs() <= FREQUENCY_TOLERANCE_PCT;
        let mut c = Check::new(
            Step::Node,
            "node.frequency",
            s,
            if ok { Status::Pass } else { Status::Fail },
            lang.ta(
                if ok {
                    "cm-node-frequency"
                } else {
                    "cm-node-frequency-off"
                },
                &args,
            ),
        )
        .number("frequency_hz", f, Some("Hz"));
        if !ok {
            c.fix = Some(lang.t("cm-node-frequency-fix"));
        }
        out.push(c);
    }

    out.push(sequence_check(lang, s, h, cap.phases.as_ref()));
    out.push(link_check(lang, s, cap));
    out
}

fn voltage_check(lang: Lang, node: &str, ch: &str, v: f64, udin: f64) -> Check {
    let ratio = v / udin;
    let args = [
        ("channel", ch.to_string()),
        ("volts", format!("{v:.1}")),
        ("udin", format!("{udin:.1}")),
        ("pct", format!("{:.1}", ratio * 100.0)),
    ];
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let within = (ratio - 1.0).abs() * 100.0 <= VOLTAGE_TOLERANCE_PCT;
    let sqrt3 = 3f64.sqrt();
    let (status, summary, fix) = if within {
        (Status::Pass, "cm-node-voltage", None)
    } else if ratio < 0.1 {
        (
            Status::Fail,
            "cm-node-voltage-missing",
            Some("cm-node-voltage-missing-fix"),
        )
    } else if (ratio / sqrt3 - 1.0).abs() < 0.05 {
        (
            Status::Fail,
            "cm-node-voltage-sqrt3-high",
            Some("cm-node-voltage-sqrt3-high-fix"),
        )
    } else if (ratio * sqrt3 - 1.0).abs() < 0.05 {
        (
            Status::Fail,
            "cm-node-voltage-sqrt3-low",
            Some("cm-node-voltage-sqrt3-low-fix"),
        )
    } else {
        (
            Status::Fail,
            "cm-node-voltage-off",
            Some("cm-node-voltage-off-fix"),
        )
    };
    let mut c = Check::new(
        Step::Node,
        &format!("node.voltage.{}", ch.to_lowercase()),
        node,
        status,
        lang.ta(summary, &args),
    )
    .number("volts", v, Some("V"))
    .number("percent_of_udin", ratio * 100.0, Some("%"));
    c.fix = fix.map(|f| lang.ta(f, &args));
    c
}

fn sequence_check(
    lang: Lang,
    node: &str,
    h: &Hello,
    phases: Option<&[Option<f64>; MAX_CHANNELS]>,
) -> Check {
    let id = "node.phase-sequence";
    if h.channels.len() < 3 {
        return Check::new(
            Step::Node,
            id,
            node,
            Status::Pass,
            lang.ta(
                "cm-node-sequence-single",
                &[("channels", &h.channels.len().to_string())],
            ),
        );
    }
    let Some(angles) = phases else {
        return Check::new(
            Step::Node,
            id,
            node,
            Status::Warn,
            lang.t("cm-node-sequence-unknown"),
        )
        .fix(lang.t("cm-node-sequence-unknown-fix"));
    };
    let mut c = match sequence(&angles[..3]) {
        Sequence::Abc => Check::new(
            Step::Node,
            id,
            node,
            Status::Pass,
            lang.t("cm-node-sequence-abc"),
        ),
        Sequence::Acb => Check::new(
            Step::Node,
            id,
            node,
            Status::Fail,
            lang.t("cm-node-sequence-acb"),
        )
        .fix(lang.t("cm-node-sequence-acb-fix")),
        Sequence::Missing(i) => {
            let ch = channel_name(Some(h), i);
            Check::new(
                Step::Node,
                id,
                node,
                Status::Fail,
                lang.ta("cm-node-sequence-missing", &[("channel", &ch)]),
            )
            .fix(lang.ta("cm-node-voltage-missing-fix", &[("channel", &ch)]))
        }
        Sequence::Unclear => Check::new(
            Step::Node,
            id,
            node,
            Status::Fail,
            lang.t("cm-node-sequence-unclear"),
        )
        .fix(lang.t("cm-node-sequence-unclear-fix")),
    };
    for (i, a) in angles.iter().enumerate().take(h.channels.len()) {
        if let Some(a) = a {
            c = c.number(
                &format!("angle_{}", channel_name(Some(h), i).to_lowercase()),
                *a,
                Some("°"),
            );
        }
    }
    c
}

fn link_check(lang: Lang, node: &str, cap: &NodeCapture) -> Check {
    let d = &cap.decoder;
    let damaged = u64::from(d.crc_errors)
        + u64::from(d.cobs_errors)
        + u64::from(d.truncated)
        + u64::from(d.oversize)
        + u64::from(d.malformed);
    let damaged = damaged.saturating_sub(cap.cut_at_start);
    let too_new = u64::from(d.unsupported_version);
    let (dropped, adc) = match &cap.heartbeats {
        (Some(a), Some(b)) => (
            u64::from(b.half_cycles_dropped.wrapping_sub(a.half_cycles_dropped)),
            u64::from(b.adc_errors.wrapping_sub(a.adc_errors)),
        ),
        _ => (0, 0),
    };
    let clean = damaged == 0 && too_new == 0 && cap.seq_gaps == 0 && dropped == 0 && adc == 0;
    let args = [
        ("frames", d.frames.to_string()),
        ("damaged", damaged.to_string()),
        ("gaps", cap.seq_gaps.to_string()),
        ("dropped", dropped.to_string()),
        ("adc", adc.to_string()),
        ("newer", too_new.to_string()),
    ];
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut c = Check::new(
        Step::Node,
        "node.link",
        node,
        if clean { Status::Pass } else { Status::Fail },
        lang.ta(
            if clean {
                "cm-node-link-clean"
            } else {
                "cm-node-link-errors"
            },
            &args,
        ),
    )
    .number("frames", f64::from(d.frames), None)
    .number("damaged_frames", damaged as f64, None)
    .number("sequence_gaps", cap.seq_gaps as f64, None)
    .number("node_dropped", dropped as f64, None)
    .number("adc_errors", adc as f64, None)
    .number("newer_protocol_frames", too_new as f64, None);
    if !clean {
        c.fix = Some(lang.t(if too_new > 0 {
            "cm-node-link-newer-fix"
        } else {
            "cm-node-link-errors-fix"
        }));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abc_acb_and_a_missing_phase_are_told_apart() {
        assert_eq!(
            sequence(&[Some(0.0), Some(119.0), Some(-121.0)]),
            Sequence::Abc
        );
        assert_eq!(
            sequence(&[Some(0.0), Some(-120.0), Some(120.0)]),
            Sequence::Acb
        );
        assert_eq!(
            sequence(&[Some(0.0), None, Some(-120.0)]),
            Sequence::Missing(1)
        );
        // Two inputs on the same phase.
        assert_eq!(
            sequence(&[Some(0.0), Some(1.0), Some(-120.0)]),
            Sequence::Unclear
        );
        // Angles near ±180 wrap.
        assert_eq!(
            sequence(&[Some(0.0), Some(-239.0), Some(239.5)]),
            Sequence::Abc
        );
    }

    #[test]
    fn a_phase_reading_root_three_times_udin_is_named_as_a_line_to_line_or_pt_fault() {
        let c = voltage_check(Lang::En, "n", "VA", 398.4, 230.0);
        assert_eq!(c.status, Status::Fail);
        assert!(c.summary.contains("√3"), "{}", c.summary);
        assert!(c.fix.unwrap().contains("PT"));
    }

    #[test]
    fn a_dead_phase_is_named_missing_and_a_near_phase_passes() {
        assert_eq!(
            voltage_check(Lang::En, "n", "VB", 3.0, 230.0).id,
            "node.voltage.vb"
        );
        let dead = voltage_check(Lang::En, "n", "VB", 3.0, 230.0);
        assert!(dead.summary.contains("VB"), "{}", dead.summary);
        assert_eq!(
            voltage_check(Lang::En, "n", "VB", 241.0, 230.0).status,
            Status::Pass
        );
    }
}
