//! Phase angles from the Urms meter's zero crossings ([`UrmsMeter::phase_angles`]) against
//! synthetic three-phase waveforms whose angles are known exactly: what commissioning relies on
//! to tell ABC from ACB and to find a missing phase.

use kare_firmware::urms::{lock_gate, UrmsConfig, UrmsMeter, MAX_CHANNELS};
use std::f64::consts::PI;

const UDIN: f64 = 230.0;
/// One degree, in the hundredths `phase_angles` reports.
const ONE_DEGREE: i32 = 100;

/// A meter fed a waveform quantised as a 24-bit ADC would, sample by sample.
struct Rig {
    meter: UrmsMeter,
    fs: f64,
    lsb: f64,
    k: u64,
    channels: usize,
}

impl Rig {
    fn new(fs: f64, nominal: f64, channels: usize) -> Self {
        // Full scale = twice the nominal peak, as a sensor front end would be set up.
        let lsb = UDIN * 2f64.sqrt() * 2.0 / (1 << 23) as f64;
        let gate = lock_gate((UDIN * 2f64.sqrt() / lsb) as f32);
        let config = UrmsConfig {
            sample_rate_hz: fs as f32,
            nominal_hz: nominal as f32,
        };
        Rig {
            meter: UrmsMeter::new(config, &vec![gate; channels]),
            fs,
            lsb,
            k: 0,
            channels,
        }
    }

    fn t(&self) -> f64 {
        self.k as f64 / self.fs
    }

    /// Feeds samples until `until` seconds; `each` sees the time and the angles after every one.
    fn run(
        &mut self,
        until: f64,
        volts: impl Fn(f64, usize) -> f64,
        mut each: impl FnMut(f64, [Option<i16>; MAX_CHANNELS]),
    ) {
        let mut frame = vec![0i32; self.channels];
        while self.t() < until {
            let t = self.t();
            for (ch, x) in frame.iter_mut().enumerate() {
                *x = (volts(t, ch) / self.lsb).round() as i32;
            }
            self.meter.push(&frame);
            self.k += 1;
            each(t, self.meter.phase_angles());
        }
    }
}

/// Phase A, B, C at 0, −120°, −240° (ABC, positive sequence); `order` maps channel → phase.
fn angle_of(ch: usize, order: [usize; 3]) -> f64 {
    -(order[ch] as f64) * 2.0 * PI / 3.0
}

const ABC: [usize; 3] = [0, 1, 2];
const ACB: [usize; 3] = [0, 2, 1];

fn sine(t: f64, f: f64, phi: f64) -> f64 {
    UDIN * 2f64.sqrt() * (2.0 * PI * f * t + phi).sin()
}

/// Deterministic noise in [-1, 1).
fn noise(t: f64, ch: usize) -> f64 {
    let mut x = (t * 1e7) as u64 ^ (ch as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % 20_000) as f64 / 10_000.0 - 1.0
}

/// `got` is within `tol` hundredths of a degree of `want`, on the circle.
fn near(got: i16, want: i32, tol: i32) -> bool {
    let d = (i32::from(got) - want).rem_euclid(36_000);
    d.min(36_000 - d) <= tol
}

/// Runs `volts` for `seconds` and checks every reading after `settle` seconds against `want`
/// (hundredths of a degree per channel) within `tol`; returns the worst error seen.
fn check_steady(
    fs: f64,
    nominal: f64,
    seconds: f64,
    settle: f64,
    want: [i32; 3],
    tol: i32,
    volts: impl Fn(f64, usize) -> f64,
) -> i32 {
    let mut rig = Rig::new(fs, nominal, 3);
    let mut worst = 0;
    let mut checked = 0;
    rig.run(seconds, volts, |t, a| {
        if t < settle {
            return;
        }
        checked += 1;
        assert_eq!(a[0], Some(0), "channel 0 reads 0 at {t}: {a:?}");
        for ch in 1..3 {
            let got = a[ch].unwrap_or_else(|| panic!("channel {ch} None at {t} s: {a:?}"));
            let d = (i32::from(got) - want[ch]).rem_euclid(36_000);
            worst = worst.max(d.min(36_000 - d));
            assert!(
                near(got, want[ch], tol),
                "{fs} S/s: channel {ch} reads {got} at {t} s, want {} ± {tol}",
                want[ch]
            );
        }
        assert!(a[3..].iter().all(Option::is_none), "unused channels: {a:?}");
    });
    assert!(checked > 0);
    worst
}

#[test]
fn balanced_abc_reads_b_plus_120_and_c_minus_120_at_50_and_60_hz() {
    for f in [50.0, 60.0] {
        for fs in [6400.0, 4000.0, 1200.0] {
            let worst = check_steady(
                fs,
                f,
                2.0,
                0.5,
                [0, 12_000, -12_000],
                ONE_DEGREE,
                |t, ch| sine(t, f, angle_of(ch, ABC)),
            );
            eprintln!("{f} Hz at {fs} S/s: worst error {worst} c°");
        }
    }
}

#[test]
fn acb_reads_b_minus_120_and_c_plus_120() {
    for f in [50.0, 60.0] {
        check_steady(
            6400.0,
            f,
            2.0,
            0.5,
            [0, -12_000, 12_000],
            ONE_DEGREE,
            |t, ch| sine(t, f, angle_of(ch, ACB)),
        );
    }
}

#[test]
fn any_angle_reads_as_its_lag_in_the_half_open_range() {
    // A lag of exactly 180° reads +18 000, never −18 000; small lags and leads keep their sign.
    for (lag_deg, want) in [(180.0, 18_000), (30.0, 3_000), (-45.0, -4_500), (0.0, 0)] {
        let mut rig = Rig::new(6400.0, 50.0, 2);
        let mut last = None;
        rig.run(
            1.0,
            |t, ch| sine(t, 50.0, -(ch as f64) * lag_deg * PI / 180.0),
            |_, a| last = a[1],
        );
        let got = last.expect("channel 1 has an angle");
        assert!(near(got, want, 10), "{lag_deg}°: {got}");
        assert!((-17_999..=18_000).contains(&got), "{lag_deg}°: {got}");
    }
}

#[test]
fn off_nominal_frequency_keeps_the_angles_within_a_degree() {
    for (nominal, f) in [(50.0, 47.0), (50.0, 52.0), (60.0, 57.0), (60.0, 63.0)] {
        let worst = check_steady(
            6400.0,
            nominal,
            3.0,
            1.5,
            [0, 12_000, -12_000],
            ONE_DEGREE,
            |t, ch| sine(t, f, angle_of(ch, ABC)),
        );
        eprintln!("{f} Hz on a {nominal} Hz system: worst error {worst} c°");
    }
}

#[test]
fn harmonics_noise_and_dc_offset_move_the_angles_less_than_a_degree() {
    // A polluted but plausible supply: 5 % 3rd, 6 % 5th, 5 % 7th, 3.5 % 11th, 2 % 13th
    // (IEC 61000-2-4 class 2 levels), 0.5 % noise and a 1 % DC offset on every channel.
    let harmonics = [
        (3.0, 0.05),
        (5.0, 0.06),
        (7.0, 0.05),
        (11.0, 0.035),
        (13.0, 0.02),
    ];
    for (f, order, want) in [
        (50.0, ABC, [0, 12_000, -12_000]),
        (60.0, ACB, [0, -12_000, 12_000]),
    ] {
        let worst = check_steady(6400.0, f, 2.0, 0.5, want, ONE_DEGREE, |t, ch| {
            let phi = 2.0 * PI * f * t + angle_of(ch, order);
            let mut w = phi.sin();
            for (h, rel) in harmonics {
                w += rel * (h * phi).sin();
            }
            UDIN * 2f64.sqrt() * (w + 0.01) + UDIN * 0.005 * noise(t, ch)
        });
        eprintln!("{f} Hz polluted: worst error {worst} c°");
    }
}

#[test]
fn unequal_amplitudes_do_not_move_the_angles() {
    // One phase at 20 % (a deep single-phase dip) still has its angle.
    check_steady(
        6400.0,
        50.0,
        2.0,
        0.5,
        [0, 12_000, -12_000],
        ONE_DEGREE,
        |t, ch| sine(t, 50.0, angle_of(ch, ABC)) * if ch == 1 { 0.2 } else { 1.0 },
    );
}

/// Channel `dead` reads only noise (0.3 % of Udin) from `from` to `to` seconds; checks it turns
/// `None` within two cycles, stays so, and comes back with the right angle.
fn dead_channel(f: f64, dead: usize, from: f64, to: f64) {
    let period = 1.0 / f;
    let mut rig = Rig::new(6400.0, f, 3);
    let mut none_at = None;
    let mut back_at = None;
    let mut good_again_at: Option<f64> = None;
    let want = [0, 12_000, -12_000];
    rig.run(
        to + 1.0,
        |t, ch| {
            let live = if ch == dead && (from..to).contains(&t) {
                0.0
            } else {
                sine(t, f, angle_of(ch, ABC))
            };
            live + UDIN * 0.003 * noise(t, ch)
        },
        |t, a| {
            if (0.5..from).contains(&t) {
                assert!(a[..3].iter().all(Option::is_some), "{t}: {a:?}");
            }
            if t >= from && t < to {
                let gone = if dead == 0 {
                    a.iter().all(Option::is_none)
                } else {
                    a[dead].is_none()
                };
                match none_at {
                    None if gone => none_at = Some(t),
                    Some(_) => assert!(gone, "dead channel {dead} read {a:?} again at {t} s"),
                    None => {}
                }
                // The live channels keep their angles (unless channel 0, the origin, is dead).
                if dead != 0 && t > from + 2.0 * period {
                    for ch in (0..3).filter(|c| *c != dead) {
                        assert!(near(a[ch].unwrap(), want[ch], ONE_DEGREE), "{t}: {a:?}");
                    }
                }
            }
            if t >= to {
                let present = a[..3].iter().all(Option::is_some);
                if back_at.is_none() && present {
                    back_at = Some(t);
                }
                let good = present && (0..3).all(|ch| near(a[ch].unwrap(), want[ch], ONE_DEGREE));
                match good_again_at {
                    None if good => good_again_at = Some(t),
                    // Once settled, it stays right.
                    Some(g) if t > g + 2.0 * period => {
                        assert!(good, "channel {dead} back, then {a:?} at {t} s")
                    }
                    _ => {}
                }
            }
        },
    );
    let none_at = none_at.unwrap_or_else(|| panic!("channel {dead} never read None"));
    let lag = (none_at - from) / period;
    let back = (back_at.expect("the channel came back") - to) / period;
    let good = (good_again_at.expect("the angle came right again") - to) / period;
    eprintln!(
        "{f} Hz, channel {dead} dead at {from} s: None after {lag:.2} cycles; \
         back after {back:.2} cycles, within 1° after {good:.2}"
    );
    assert!(lag <= 2.0, "None only {lag} cycles after the channel died");
    assert!(
        back <= 2.0,
        "angle back only {back} cycles after the channel returned"
    );
    assert!(
        good <= 4.0,
        "angle right only {good} cycles after the channel returned"
    );
}

#[test]
fn a_dead_channel_reads_none_within_two_cycles_and_comes_back() {
    // At several points on the wave: the last lobe before death may be whole or cut short.
    for offset in [0.0, 0.003, 0.0071, 0.0125, 0.0166] {
        dead_channel(50.0, 2, 1.0 + offset, 2.0 + offset);
        dead_channel(60.0, 1, 1.0 + offset, 2.0 + offset);
    }
}

#[test]
fn a_dead_channel_0_leaves_no_reference_so_every_angle_is_none() {
    for offset in [0.0, 0.0047, 0.011] {
        dead_channel(50.0, 0, 1.0 + offset, 1.5 + offset);
    }
}

#[test]
fn a_missing_phase_never_has_an_angle() {
    // Channel C is not connected at all: only noise from the start.
    let mut rig = Rig::new(6400.0, 50.0, 3);
    rig.run(
        2.0,
        |t, ch| {
            let v = if ch == 2 {
                0.0
            } else {
                sine(t, 50.0, angle_of(ch, ABC))
            };
            v + UDIN * 0.003 * noise(t, ch)
        },
        |t, a| {
            assert_eq!(a[2], None, "{t}");
            if t > 0.5 {
                assert_eq!(a[0], Some(0));
                assert!(near(a[1].unwrap(), 12_000, ONE_DEGREE), "{t}: {a:?}");
            }
        },
    );
}

#[test]
fn no_supply_at_all_means_no_angles() {
    let mut rig = Rig::new(6400.0, 50.0, 3);
    rig.run(
        1.0,
        |t, ch| UDIN * 0.003 * noise(t, ch),
        |t, a| assert!(a.iter().all(Option::is_none), "{t}: {a:?}"),
    );
}
