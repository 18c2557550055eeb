//! Modbus discovery: which addresses answer on a serial bus (or which unit ids behind a TCP
//! gateway), at which baud rate and parity, and which register profile each device fits.
//!
//! **Probing.** Each address gets one read (the first profile's voltage registers): silence
//! after `tries` attempts means nobody is there; any reply, a Modbus exception included, means
//! a device is (it parsed the frame and checked our CRC). Behind a TCP gateway the exceptions
//! 0x0A and 0x0B are the *gateway* saying the unit did not answer, so they mean "nobody".
//!
//! **Identification.** A device that answers is read again with each profile's phase voltages
//! (line-to-line voltages when a profile has no phase voltages) and frequency. A profile fits
//! when every read succeeds and the values are plausible:
//!
//! - a phase voltage is 0 (an unconnected phase, a single-phase meter's other phases) or 40 to
//!   600 V (the low end is a 48-V DC bus or a badly sagged 120-V supply, the high end a 480-V
//!   phase-neutral system's swell); a line-to-line voltage 0 or 70 to 1040 V (the same times √3);
//! - the frequency is 45 to 65 Hz (50 and 60 Hz systems with a wide margin), or 0 when every
//!   voltage is 0 (a meter with dead voltage inputs shows 0 Hz);
//! - a value that is not a number (a float register holding NaN) never fits.
//!
//! Several profiles can fit (meters that answer every address with zeros, or two vendors with
//! the same map): all are reported as candidates, and none is chosen. A device that answers
//! but fits no profile is reported as an unknown Modbus device (`profile: None`, no
//! candidates).
//!
//! **Time.** A probe waits `timeout` for a reply to *begin*, counted from the end of the
//! request on the wire; a reply that has begun is waited for to its end. After a silent
//! timeout the line has already been quiet longer than the 3.5-character gap, so the next
//! request goes at once. A bus with nobody on it therefore costs, per address and line setting,
//! `tries × (request time + timeout)`, within [`scan_bound`]: `addresses × Σ over bauds and
//! parities of (tries × (timeout + frame time) + 3.5 characters)`, which for one try is the
//! issue's `addresses × bauds × (timeout × tries + turnaround)`.

use super::DiscoverError;
use crate::sources::meters::modbus::client::{open_port, wire_time, Client, RequestError};
use crate::sources::meters::modbus::{
    builtin_profile, builtin_profile_names, inter_frame_gap, plan_reads, Batch, Framing,
    ModbusBusConfig, Parity, Profile, StopBits, Transport,
};
use crate::sources::meters::readings::Quantity;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

/// The baud rates meters ship with or are commonly set to.
pub const DEFAULT_BAUDS: [u32; 4] = [2400, 4800, 9600, 19200];

/// Bytes in a read request (address, function, start, count, CRC).
const REQUEST_BYTES: usize = 8;

/// What to scan on one serial port.
#[derive(Clone, Debug)]
pub struct RtuScan {
    /// Serial port path.
    pub port: String,
    /// Baud rates, tried in this order.
    pub bauds: Vec<u32>,
    /// Parities, tried in this order at each baud (8 data bits; one stop bit with parity, one
    /// without: what meters ship with).
    pub parities: Vec<Parity>,
    /// Addresses (1 to 247 are the Modbus device addresses).
    pub addresses: RangeInclusive<u8>,
    /// How long a probe waits for a reply to begin, after its request has left the wire. A
    /// meter's latency is 10 to 100 ms; 200 ms finds the slow ones.
    pub timeout: Duration,
    /// Attempts per address (1: a dead address costs one timeout; 2 survives one lost frame).
    pub tries: u32,
    /// The devices the crew expects: (address, baud if known). When every one is found the
    /// scan stops; they are also probed first at each line setting.
    pub expect: Vec<(u8, Option<u32>)>,
    /// The profiles to identify devices by (default: every built-in profile).
    pub profiles: Vec<Profile>,
}

impl RtuScan {
    /// A scan of `port` with the defaults: 2400, 4800, 9600 and 19200 baud; the profiles'
    /// parities and none and even; addresses 1 to 247; 200 ms; one try; every built-in
    /// profile. On a bus where nobody answers that is 1 976 probes, about 7.5 minutes
    /// ([`scan_bound`]): give `expect` (the scan stops when they are found), or narrow the
    /// bauds and addresses, to be quicker.
    pub fn new(port: impl Into<String>) -> RtuScan {
        let profiles: Vec<Profile> = builtin_profile_names()
            .into_iter()
            .filter_map(|n| builtin_profile(n).ok())
            .collect();
        let parities = default_parities(&profiles);
        RtuScan {
            port: port.into(),
            bauds: DEFAULT_BAUDS.to_vec(),
            parities,
            addresses: 1..=247,
            timeout: Duration::from_millis(200),
            tries: 1,
            expect: Vec::new(),
            profiles,
        }
    }
}

/// None and even (the Modbus default), then any other parity a profile declares.
pub fn default_parities(profiles: &[Profile]) -> Vec<Parity> {
    let mut out = vec![Parity::None, Parity::Even];
    for p in profiles {
        if !out.contains(&p.parity) {
            out.push(p.parity);
        }
    }
    out
}

/// A device that answered.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundModbus {
    /// The serial port path, or the gateway's host:port.
    pub port: String,
    /// How it was reached: [`Transport::Rtu`] on `port`, or through a TCP gateway.
    pub transport: Transport,
    /// Baud rate (0 through a TCP gateway: the gateway's serial side is its own).
    pub baud: u32,
    /// Parity ([`Parity::None`] through a TCP gateway).
    pub parity: Parity,
    /// Modbus address (unit id through a gateway).
    pub slave: u8,
    /// The profile it fits, when exactly one does.
    pub profile: Option<String>,
    /// Every profile it fits (empty: an unknown Modbus device).
    pub candidates: Vec<String>,
    /// Phase voltages (or line-to-line ones) read through the first candidate, V.
    pub voltages: Option<[f64; 3]>,
}

impl FoundModbus {
    /// Whether it answered but no profile fits.
    pub fn is_unknown(&self) -> bool {
        self.candidates.is_empty()
    }
}

/// Where a scan is, after each probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanProgress {
    /// The address (or unit id) just probed.
    pub address: u8,
    /// Its baud rate (0 through a TCP gateway).
    pub baud: u32,
    /// Its parity.
    pub parity: Parity,
    /// Probes done, and in all (the scan may stop early when every expected device is found).
    pub probed: usize,
    /// Probes in the whole scan.
    pub total: usize,
    /// Devices found so far.
    pub found: usize,
}

/// The longest a scan of a bus with nobody on it takes: for each baud and parity, each address
/// costs its tries (request on the wire, then the timeout) and one inter-frame silence.
pub fn scan_bound(scan: &RtuScan) -> Duration {
    let addresses = scan.addresses.clone().count() as u32;
    let mut per_address = Duration::ZERO;
    for &baud in &scan.bauds {
        for &parity in &scan.parities {
            let t = timing(baud, parity);
            per_address += (scan.timeout + t.request) * scan.tries.max(1) + t.gap;
        }
    }
    per_address * addresses
}

/// One line setting's wire times.
struct Timing {
    /// 3.5 characters.
    gap: Duration,
    /// A read request's time on the wire.
    request: Duration,
}

fn timing(baud: u32, parity: Parity) -> Timing {
    Timing {
        gap: inter_frame_gap(baud, parity, StopBits::One),
        request: wire_time(baud, parity, StopBits::One, REQUEST_BYTES),
    }
}

/// The reads that identify one profile.
struct Identify {
    name: String,
    profile: Profile,
    reads: Vec<Batch>,
    /// Whether the voltages are line-to-line (no phase voltages in the profile).
    line_to_line: bool,
}

impl Identify {
    /// The profile's voltage and frequency registers, as few reads as its map allows; `None`
    /// for a profile without voltages (nothing to recognise it by).
    fn of(profile: &Profile) -> Option<Identify> {
        use Quantity::*;
        let pick = |qs: &[Quantity]| -> Profile {
            let mut p = profile.clone();
            // The profile's own max_gap stays: it says which gaps the meter reads through.
            p.registers.retain(|r| qs.contains(&r.quantity));
            p
        };
        let mut line_to_line = false;
        let mut sub = pick(&[VoltageA, VoltageB, VoltageC, Frequency]);
        if !sub.registers.iter().any(|r| r.quantity != Frequency) {
            sub = pick(&[VoltageAb, VoltageBc, VoltageCa, Frequency]);
            line_to_line = true;
        }
        if !sub.registers.iter().any(|r| r.quantity != Frequency) {
            return None;
        }
        Some(Identify {
            name: profile.name.clone(),
            reads: plan_reads(&sub),
            profile: sub,
            line_to_line,
        })
    }

    /// The voltages, if the values fit this profile.
    fn judge(&self, values: &[(Quantity, f64)]) -> Option<[f64; 3]> {
        use Quantity::*;
        let order = if self.line_to_line {
            [VoltageAb, VoltageBc, VoltageCa]
        } else {
            [VoltageA, VoltageB, VoltageC]
        };
        let (low, high) = if self.line_to_line {
            (70.0, 1040.0)
        } else {
            (40.0, 600.0)
        };
        let mut volts = [0.0; 3];
        for (i, q) in order.iter().enumerate() {
            if let Some(&(_, v)) = values.iter().find(|(qq, _)| qq == q) {
                volts[i] = v;
            }
        }
        let voltages_fit = values
            .iter()
            .filter(|(q, _)| *q != Frequency)
            .all(|&(_, v)| v.is_finite() && (v.abs() < 0.5 || (low..=high).contains(&v)));
        let all_dead = volts.iter().all(|v| v.abs() < 0.5);
        let frequency_fits = values
            .iter()
            .filter(|(q, _)| *q == Frequency)
            .all(|&(_, f)| {
                f.is_finite() && ((45.0..=65.0).contains(&f) || (all_dead && f.abs() < 0.5))
            });
        // Every register must have decoded: a missing value is a read that did not fit.
        let complete = values.len() == self.profile.registers.len();
        (voltages_fit && frequency_fits && complete).then_some(volts)
    }
}

/// What one probe found.
enum Probe {
    /// Silence (or only garbled bytes: a device at another line setting, or noise).
    Nobody,
    /// A reply, normal or exception.
    Somebody,
}

/// Whether an exception is a gateway saying its target did not answer (Modbus application
/// protocol §7: 0x0A gateway path unavailable, 0x0B gateway target failed to respond).
fn is_gateway_silence(code: u8) -> bool {
    matches!(code, 0x0A | 0x0B)
}

/// Reads every batch; the decoded values, or the first error.
async fn read_all(
    client: &mut Client,
    slave: u8,
    id: &Identify,
    tries: u32,
) -> Result<Vec<(Quantity, f64)>, RequestError> {
    let mut values = Vec::new();
    for b in &id.reads {
        let mut last = None;
        for _ in 0..tries.max(1) {
            match client.read(slave, b).await {
                Ok(words) => {
                    values.extend(b.decode(&id.profile, &words));
                    last = None;
                    break;
                }
                Err(e @ (RequestError::Exception { .. } | RequestError::Port(_))) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            return Err(e);
        }
    }
    Ok(values)
}

/// Probes one address: is anybody there?
async fn probe(
    client: &mut Client,
    slave: u8,
    first: &Batch,
    tries: u32,
    gateway: bool,
) -> Result<Probe, std::io::Error> {
    for _ in 0..tries.max(1) {
        match client.read(slave, first).await {
            Ok(_) => return Ok(Probe::Somebody),
            Err(RequestError::Exception { code, .. }) if gateway && is_gateway_silence(code) => {
                return Ok(Probe::Nobody)
            }
            Err(RequestError::Exception { .. }) => return Ok(Probe::Somebody),
            Err(RequestError::Port(e)) => return Err(e),
            Err(RequestError::Timeout(_) | RequestError::BadFrame(_)) => {}
        }
    }
    Ok(Probe::Nobody)
}

/// Which profiles a device that answered fits.
async fn identify(
    client: &mut Client,
    slave: u8,
    ids: &[Identify],
    tries: u32,
) -> Result<(Vec<String>, Option<[f64; 3]>), std::io::Error> {
    let mut candidates = Vec::new();
    let mut voltages = None;
    for id in ids {
        match read_all(client, slave, id, tries).await {
            Ok(values) => {
                if let Some(v) = id.judge(&values) {
                    candidates.push(id.name.clone());
                    voltages.get_or_insert(v);
                }
            }
            Err(RequestError::Port(e)) => return Err(e),
            Err(_) => {}
        }
    }
    Ok((candidates, voltages))
}

/// The identification reads of each profile, and the probe read (the first profile's first).
fn plans(profiles: &[Profile]) -> Result<(Vec<Identify>, Batch), DiscoverError> {
    let ids: Vec<Identify> = profiles.iter().filter_map(Identify::of).collect();
    let first = ids
        .first()
        .and_then(|i| i.reads.first().cloned())
        .ok_or_else(|| {
            DiscoverError::Settings(
                "no profile to identify devices by has voltage registers: give at least one \
                 profile with voltage_a (or voltage_ab)"
                    .into(),
            )
        })?;
    Ok((ids, first))
}

/// The longest identification reply's time on the wire plus the gap: how long a reply that
/// has begun may take to finish.
fn reply_grace(ids: &[Identify], baud: u32, parity: Parity) -> Duration {
    let longest = ids
        .iter()
        .flat_map(|i| &i.reads)
        .map(|b| 5 + 2 * usize::from(b.count))
        .max()
        .unwrap_or(5);
    wire_time(baud, parity, StopBits::One, longest) + inter_frame_gap(baud, parity, StopBits::One)
}

/// Scans a serial port: every baud, parity and address of `scan`, in that order (the bauds of
/// expected devices first, expected addresses first at each line setting); calls `progress` after each probe. Stops early when
/// every expected device has been found. A device found at one parity is not probed again at
/// the same baud with another (it would be the same device).
pub async fn scan_rtu(
    scan: &RtuScan,
    mut progress: impl FnMut(ScanProgress),
) -> Result<Vec<FoundModbus>, DiscoverError> {
    if scan.bauds.is_empty() || scan.parities.is_empty() || scan.addresses.is_empty() {
        return Err(DiscoverError::Settings(
            "nothing to scan: give at least one baud rate, one parity and one address".into(),
        ));
    }
    let (ids, first) = plans(&scan.profiles)?;
    let addresses: Vec<u8> = scan.addresses.clone().collect();
    let total = addresses.len() * scan.bauds.len() * scan.parities.len();
    let mut probed = 0;
    let mut found: Vec<FoundModbus> = Vec::new();
    let all_expected = |found: &[FoundModbus]| {
        !scan.expect.is_empty()
            && scan.expect.iter().all(|&(a, b)| {
                found
                    .iter()
                    .any(|f| f.slave == a && b.is_none_or(|b| b == f.baud))
            })
    };
    // Bauds an expected device is known to use go first: a crew that knows "17 at 4800" is
    // not kept waiting through the other bauds.
    let mut bauds: Vec<u32> = scan
        .expect
        .iter()
        .filter_map(|&(_, b)| b)
        .filter(|b| scan.bauds.contains(b))
        .collect();
    bauds.dedup();
    let rest: Vec<u32> = scan
        .bauds
        .iter()
        .copied()
        .filter(|b| !bauds.contains(b))
        .collect();
    bauds.extend(rest);
    for &baud in &bauds {
        for &parity in &scan.parities {
            let mut line = ModbusBusConfig::new("discover", scan.port.clone(), baud);
            line.parity = parity;
            let port = open_port(&line).map_err(|e| DiscoverError::OpenSerial {
                port: scan.port.clone(),
                baud,
                source: e.into(),
            })?;
            let t = timing(baud, parity);
            let mut client = Client::bare(port, Framing::Rtu, scan.timeout).with_timing(
                t.gap,
                t.request,
                reply_grace(&ids, baud, parity),
            );
            // The expected addresses for this baud first, then the rest in order.
            let mut order: Vec<u8> = scan
                .expect
                .iter()
                .filter(|(a, b)| b.is_none_or(|b| b == baud) && scan.addresses.contains(a))
                .map(|&(a, _)| a)
                .collect();
            order.dedup();
            let rest: Vec<u8> = addresses
                .iter()
                .copied()
                .filter(|a| !order.contains(a))
                .collect();
            order.extend(rest);
            for slave in order {
                let known = found.iter().any(|f| f.slave == slave && f.baud == baud);
                if !known {
                    let there = probe(&mut client, slave, &first, scan.tries, false)
                        .await
                        .map_err(|e| lost(&scan.port, e))?;
                    if let Probe::Somebody = there {
                        let (candidates, voltages) = identify(&mut client, slave, &ids, scan.tries)
                            .await
                            .map_err(|e| lost(&scan.port, e))?;
                        found.push(FoundModbus {
                            port: scan.port.clone(),
                            transport: Transport::Rtu,
                            baud,
                            parity,
                            slave,
                            profile: (candidates.len() == 1).then(|| candidates[0].clone()),
                            candidates,
                            voltages,
                        });
                    }
                }
                probed += 1;
                progress(ScanProgress {
                    address: slave,
                    baud,
                    parity,
                    probed,
                    total,
                    found: found.len(),
                });
                if all_expected(&found) {
                    return Ok(found);
                }
            }
        }
    }
    Ok(found)
}

fn lost(what: &str, source: std::io::Error) -> DiscoverError {
    DiscoverError::Lost {
        what: what.to_string(),
        source,
    }
}

/// Scans the unit ids behind a TCP gateway (or of a Modbus TCP meter): one connection, one
/// probe per unit id, each device identified as on a serial bus. `framing` is
/// [`Framing::Tcp`] for Modbus TCP, [`Framing::Rtu`] for an RTU-over-TCP gateway. `timeout`
/// includes the gateway's own wait for its serial line.
pub async fn scan_tcp(
    address: SocketAddr,
    framing: Framing,
    unit_ids: RangeInclusive<u8>,
    timeout: Duration,
    mut progress: impl FnMut(ScanProgress),
) -> Result<Vec<FoundModbus>, DiscoverError> {
    let profiles: Vec<Profile> = builtin_profile_names()
        .into_iter()
        .filter_map(|n| builtin_profile(n).ok())
        .collect();
    let (ids, first) = plans(&profiles)?;
    let name = address.to_string();
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(address),
    )
    .await
    .unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no answer within 5 s",
        ))
    })
    .map_err(|source| DiscoverError::Connect {
        address: name.clone(),
        source,
    })?;
    // Requests are a few bytes each: send them at once, not after Nagle's delay.
    let _ = stream.set_nodelay(true);
    let mut client = Client::bare(stream, framing, timeout);
    let transport = match framing {
        Framing::Tcp => Transport::Tcp(name.clone()),
        Framing::Rtu => Transport::RtuOverTcp(name.clone()),
    };
    let total = unit_ids.clone().count();
    let mut found = Vec::new();
    // A meter with its own Ethernet port answers as unit 255 (or 0), and many answer to any
    // unit id at all: ask 255 first and, if it answers, an id no gateway would use; both
    // answering is one meter, not a bus of 247.
    let mut skip_255 = false;
    if framing == Framing::Tcp {
        let direct = probe(&mut client, 255, &first, 1, true)
            .await
            .map_err(|e| lost(&name, e))?;
        if let Probe::Somebody = direct {
            let (candidates, voltages) = identify(&mut client, 255, &ids, 1)
                .await
                .map_err(|e| lost(&name, e))?;
            let meter = FoundModbus {
                port: name.clone(),
                transport: transport.clone(),
                baud: 0,
                parity: Parity::None,
                slave: 255,
                profile: (candidates.len() == 1).then(|| candidates[0].clone()),
                candidates,
                voltages,
            };
            let any_id = probe(&mut client, 199, &first, 1, true)
                .await
                .map_err(|e| lost(&name, e))?;
            if let Probe::Somebody = any_id {
                progress(ScanProgress {
                    address: 255,
                    baud: 0,
                    parity: Parity::None,
                    probed: total,
                    total,
                    found: 1,
                });
                return Ok(vec![meter]);
            }
            found.push(meter);
            skip_255 = true;
        }
    }
    for (i, unit) in unit_ids.enumerate() {
        if skip_255 && unit == 255 {
            continue;
        }
        let there = probe(&mut client, unit, &first, 1, true)
            .await
            .map_err(|e| lost(&name, e))?;
        if let Probe::Somebody = there {
            let (candidates, voltages) = identify(&mut client, unit, &ids, 1)
                .await
                .map_err(|e| lost(&name, e))?;
            found.push(FoundModbus {
                port: name.clone(),
                transport: transport.clone(),
                baud: 0,
                parity: Parity::None,
                slave: unit,
                profile: (candidates.len() == 1).then(|| candidates[0].clone()),
                candidates,
                voltages,
            });
        }
        progress(ScanProgress {
            address: unit,
            baud: 0,
            parity: Parity::None,
            probed: i + 1,
            total,
            found: found.len(),
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(profile: &str, values: &[(Quantity, f64)]) -> Option<[f64; 3]> {
        Identify::of(&builtin_profile(profile).unwrap())
            .unwrap()
            .judge(values)
    }

    #[test]
    fn plausible_voltages_and_frequency_fit_and_others_do_not() {
        use Quantity::*;
        let ok = [
            (VoltageA, 230.1),
            (VoltageB, 0.0),
            (VoltageC, 229.0),
            (Frequency, 50.0),
        ];
        assert_eq!(judge("eastron-sdm630", &ok), Some([230.1, 0.0, 229.0]));
        let low = [
            (VoltageA, 12.0),
            (VoltageB, 0.0),
            (VoltageC, 0.0),
            (Frequency, 50.0),
        ];
        assert_eq!(judge("eastron-sdm630", &low), None, "12 V is no supply");
        let hz = [
            (VoltageA, 230.0),
            (VoltageB, 230.0),
            (VoltageC, 230.0),
            (Frequency, 500.0),
        ];
        assert_eq!(
            judge("eastron-sdm630", &hz),
            None,
            "a frequency scaled wrong"
        );
        let dead = [
            (VoltageA, 0.0),
            (VoltageB, 0.0),
            (VoltageC, 0.0),
            (Frequency, 0.0),
        ];
        assert!(
            judge("eastron-sdm630", &dead).is_some(),
            "dead inputs read 0 Hz"
        );
        let nan = [
            (VoltageA, f64::NAN),
            (VoltageB, 0.0),
            (VoltageC, 0.0),
            (Frequency, 50.0),
        ];
        assert_eq!(judge("eastron-sdm630", &nan), None);
        assert_eq!(judge("eastron-sdm630", &ok[..3]), None, "a value missing");
    }

    #[test]
    fn every_shipped_profile_can_be_identified() {
        for name in builtin_profile_names() {
            let id = Identify::of(&builtin_profile(name).unwrap())
                .unwrap_or_else(|| panic!("{name} has no voltages"));
            assert!(!id.reads.is_empty());
        }
    }

    #[test]
    fn the_bound_of_one_try_is_timeout_plus_turnaround_per_address_and_setting() {
        let mut s = RtuScan::new("/dev/null");
        s.bauds = vec![9600];
        s.parities = vec![Parity::None];
        s.timeout = Duration::from_millis(20);
        let per = 0.020 + 3.5 * 10.0 / 9600.0 + 8.0 * 10.0 / 9600.0;
        let bound = scan_bound(&s).as_secs_f64();
        assert!((bound - 247.0 * per).abs() < 1e-6, "{bound}");
    }
}
