//! The simulated ADC: levels during and outside events, continuous phase through frequency
//! changes, node units, determinism.

// In a module named `sim` so that `cargo test -p kare sim` selects these tests too.
mod sim {
    use kare::sim::{Background, Drift, Event, EventKind, Phase, Scenario, ScenarioSource};
    use kare_firmware::node::SampleSource;
    use kare_firmware::pqlink::MAX_CHANNELS;
    use std::f64::consts::{PI, SQRT_2, TAU};

    const FS: f64 = 6400.0;

    /// The demo's node and supply without events, noise or harmonics.
    fn clean() -> Scenario {
        Scenario {
            background: Background::default(),
            event: Vec::new(),
            repeat: false,
            period_s: None,
            ..Scenario::demo()
        }
    }

    /// RMS per channel over `cycles` whole cycles of 50 Hz starting at `from_s`, in volts.
    fn rms(src: &mut ScenarioSource, from_s: f64, cycles: usize) -> [f64; 3] {
        while src.time_s() < from_s - 1e-9 {
            src.next_volts();
        }
        let n = cycles * (FS / 50.0) as usize;
        let mut sum = [0.0; 3];
        for _ in 0..n {
            let v = src.next_volts();
            for c in 0..3 {
                sum[c] += v[c] * v[c];
            }
        }
        sum.map(|s| (s / n as f64).sqrt())
    }

    fn close(got: f64, want: f64, tol_pct: f64) -> bool {
        (got - want).abs() <= want.abs() * tol_pct / 100.0
    }

    #[test]
    fn demo_levels_outside_and_during_events() {
        let mut src = ScenarioSource::new(&Scenario::demo()).unwrap();
        // Fundamental, 3rd (2 %), 5th (3 %) and 0.3 % noise add in quadrature.
        let normal = 230.0 * (1.0f64 + 0.02 * 0.02 + 0.03 * 0.03 + 0.003 * 0.003).sqrt();
        let steady = rms(&mut src, 1.0, 50);
        for v in steady {
            assert!(close(v, normal, 0.1), "steady {v} V, want {normal}");
        }
        // Dip on A to 60 % from 5.000 to 5.120 s: four whole cycles well inside it.
        let dip = rms(&mut src, 5.02, 4);
        assert!(close(dip[0], 0.6 * normal, 0.3), "dip A {} V", dip[0]);
        assert!(
            close(dip[1], normal, 0.3) && close(dip[2], normal, 0.3),
            "{dip:?}"
        );
        let after = rms(&mut src, 5.2, 10);
        assert!(after.iter().all(|v| close(*v, normal, 0.2)), "{after:?}");
        // Three-phase swell to 115 % from 12.0 to 12.3 s.
        let swell = rms(&mut src, 12.02, 12);
        assert!(
            swell.iter().all(|v| close(*v, 1.15 * normal, 0.3)),
            "{swell:?}"
        );
        // Interruption from 20 to 21.5 s: only the 0.3 % noise (0.69 V) remains.
        let gone = rms(&mut src, 20.1, 50);
        assert!(gone.iter().all(|v| close(*v, 0.69, 10.0)), "{gone:?}");
        let back = rms(&mut src, 21.6, 20);
        assert!(back.iter().all(|v| close(*v, normal, 0.2)), "{back:?}");
        // The outage from 30 to 55 s, then normal again.
        let out = rms(&mut src, 54.0, 25);
        assert!(out.iter().all(|v| *v < 1.0), "{out:?}");
        let normal_again = rms(&mut src, 56.0, 50);
        assert!(
            normal_again.iter().all(|v| close(*v, normal, 0.1)),
            "{normal_again:?}"
        );
        // The scenario repeats every 70 s: the dip again at 75 s.
        let dip2 = rms(&mut src, 75.02, 4);
        assert!(close(dip2[0], 0.6 * normal, 0.3), "second pass {dip2:?}");
    }

    #[test]
    fn node_units_are_volts_over_the_scale() {
        let sc = clean();
        let mut volts = ScenarioSource::new(&sc).unwrap();
        let mut units = ScenarioSource::new(&sc).unwrap();
        let mut s = [0i32; MAX_CHANNELS];
        for _ in 0..1000 {
            let v = volts.next_volts();
            units.next_sample(&mut s).unwrap();
            for c in 0..3 {
                assert_eq!(s[c], (v[c] / 1e-4).round() as i32);
            }
            assert_eq!(s[3], 0);
        }
        // 230 V RMS peaks at 325.27 V: 3.25 M units.
        let peak = (230.0 * SQRT_2 / 1e-4) as i32;
        let mut max = 0;
        for _ in 0..128 {
            units.next_sample(&mut s).unwrap();
            max = max.max(s[0]);
        }
        assert!((peak - max).abs() < peak / 1000, "{max} vs {peak}");
    }

    /// Largest change between consecutive samples of any phase, and the bound a sine of `peak`
    /// volts at up to `max_hz` cannot exceed (its slope, times one sample).
    fn max_step(src: &mut ScenarioSource, seconds: f64) -> f64 {
        let mut prev = src.next_volts();
        let mut max: f64 = 0.0;
        for _ in 0..(seconds * FS) as usize {
            let v = src.next_volts();
            for c in 0..3 {
                max = max.max((v[c] - prev[c]).abs());
            }
            prev = v;
        }
        max
    }

    /// Frequency measured from rising zero crossings of phase A between `from_s` and `to_s`.
    fn measured_hz(src: &mut ScenarioSource, from_s: f64, to_s: f64) -> f64 {
        while src.time_s() < from_s {
            src.next_volts();
        }
        let mut prev = src.next_volts()[0];
        let mut crossings = Vec::new();
        while src.time_s() < to_s {
            let t = src.time_s();
            let v = src.next_volts()[0];
            if prev < 0.0 && v >= 0.0 {
                // Interpolate between the two samples.
                crossings.push(t - 1.0 / FS + (-prev / (v - prev)) / FS);
            }
            prev = v;
        }
        let n = crossings.len() - 1;
        n as f64 / (crossings[n] - crossings[0])
    }

    #[test]
    fn a_frequency_step_keeps_the_phase_continuous() {
        // At 1.13 s a 2π·f·t waveform would jump by 2π·0.5·1.13 = 203° when f changes by 0.5 Hz.
        let sc = Scenario {
            event: vec![Event {
                to_hz: Some(50.5),
                ..Event::new(EventKind::Frequency, 1.13, 0.57)
            }],
            ..clean()
        };
        let peak = 230.0 * SQRT_2;
        let bound = TAU * 50.5 * peak / FS;
        let step = max_step(&mut ScenarioSource::new(&sc).unwrap(), 3.0);
        assert!(
            step <= bound,
            "a step of {step} V between samples (bound {bound})"
        );
        // The bound is tight: a sine's steepest step is nearly it, so the check is not vacuous.
        assert!(step > 0.95 * TAU * 50.0 * peak / FS);

        let mut src = ScenarioSource::new(&sc).unwrap();
        let during = measured_hz(&mut src, 1.2, 1.68);
        assert!((during - 50.5).abs() < 0.01, "{during} Hz");
        let after = measured_hz(&mut src, 1.75, 2.5);
        assert!((after - 50.0).abs() < 0.01, "{after} Hz");
    }

    #[test]
    fn a_drift_ramps_frequency_smoothly() {
        let sc = Scenario {
            background: Background {
                frequency_hz: Some(49.9),
                ..Background::default()
            },
            drift: vec![
                Drift {
                    at_s: 0.5,
                    to_hz: 50.4,
                    over_s: 1.0,
                },
                Drift {
                    at_s: 2.0,
                    to_hz: 49.8,
                    over_s: 0.0,
                },
            ],
            ..clean()
        };
        let peak = 230.0 * SQRT_2;
        let step = max_step(&mut ScenarioSource::new(&sc).unwrap(), 3.0);
        assert!(step <= TAU * 50.4 * peak / FS, "{step} V");
        let mut src = ScenarioSource::new(&sc).unwrap();
        assert!((measured_hz(&mut src, 0.0, 0.5) - 49.9).abs() < 0.01);
        assert!((measured_hz(&mut src, 0.9, 1.1) - 50.15).abs() < 0.02);
        assert!((measured_hz(&mut src, 1.5, 2.0) - 50.4).abs() < 0.01);
        assert!((measured_hz(&mut src, 2.0, 3.0) - 49.8).abs() < 0.01);
    }

    #[test]
    fn a_phase_jump_shifts_the_named_phases_for_its_duration() {
        // At 1.0 s phase A is at a zero crossing; 90° later it is at its peak.
        let sc = Scenario {
            event: vec![Event {
                degrees: Some(90.0),
                phases: Some(vec![Phase::A]),
                ..Event::new(EventKind::PhaseJump, 1.0, 0.1)
            }],
            ..clean()
        };
        let mut src = ScenarioSource::new(&sc).unwrap();
        let mut plain = ScenarioSource::new(&clean()).unwrap();
        let peak = 230.0 * SQRT_2;
        for k in 0..(1.2 * FS) as usize {
            let t = k as f64 / FS;
            let v = src.next_volts();
            let p = plain.next_volts();
            let theta = TAU * 50.0 * t;
            if (1.0..1.1).contains(&t) {
                assert!(
                    (v[0] - peak * (theta + PI / 2.0).sin()).abs() < 1e-6,
                    "t = {t}"
                );
            } else {
                assert!((v[0] - p[0]).abs() < 1e-6, "t = {t}");
            }
            assert!((v[1] - p[1]).abs() < 1e-9 && (v[2] - p[2]).abs() < 1e-9);
        }
    }

    #[test]
    fn phase_loss_and_interruption_noise() {
        let sc = Scenario {
            background: Background {
                noise_pct: 0.2,
                ..Background::default()
            },
            event: vec![
                Event {
                    phases: Some(vec![Phase::C]),
                    ..Event::new(EventKind::PhaseLoss, 1.0, 1.0)
                },
                Event {
                    level_pct: Some(2.0),
                    noise_pct: Some(1.0),
                    ..Event::new(EventKind::Interruption, 3.0, 1.0)
                },
            ],
            ..clean()
        };
        let mut src = ScenarioSource::new(&sc).unwrap();
        let lost = rms(&mut src, 1.1, 40);
        assert!(
            close(lost[0], 230.0, 0.1) && close(lost[1], 230.0, 0.1),
            "{lost:?}"
        );
        assert!(
            close(lost[2], 0.46, 10.0),
            "lost phase reads the 0.2 % noise: {lost:?}"
        );
        // 2 % residual (4.6 V) and 1 % noise (2.3 V) in quadrature.
        let want = (4.6f64.powi(2) + 2.3f64.powi(2)).sqrt();
        let out = rms(&mut src, 3.1, 40);
        assert!(
            out.iter().all(|v| close(*v, want, 5.0)),
            "{out:?} want {want}"
        );
    }

    #[test]
    fn sixty_hertz_single_channel() {
        let sc = Scenario {
            nominal_hz: 60,
            udin: 120.0,
            channels: vec!["V".into()],
            ..clean()
        };
        let mut src = ScenarioSource::new(&sc).unwrap();
        assert_eq!(src.channels(), 1);
        let f = measured_hz(&mut src, 0.0, 1.0);
        assert!((f - 60.0).abs() < 0.01);
        let v = src.next_volts();
        assert_eq!(&v[1..], &[0.0; MAX_CHANNELS - 1]);
    }

    #[test]
    fn the_same_scenario_gives_the_same_samples_and_the_seed_changes_the_noise() {
        let demo = Scenario::demo();
        let mut a = ScenarioSource::new(&demo).unwrap();
        let mut b = ScenarioSource::new(&demo).unwrap();
        let mut other = ScenarioSource::new(&Scenario {
            background: Background {
                seed: Some(99),
                ..demo.background.clone()
            },
            ..demo.clone()
        })
        .unwrap();
        let (mut sa, mut sb, mut so) = ([0; 4], [0; 4], [0; 4]);
        let mut differ = 0;
        for _ in 0..6400 {
            a.next_sample(&mut sa).unwrap();
            b.next_sample(&mut sb).unwrap();
            other.next_sample(&mut so).unwrap();
            assert_eq!(sa, sb);
            differ += usize::from(sa != so);
        }
        assert!(differ > 6000);
    }

    #[test]
    fn an_invalid_scenario_is_refused_by_the_source() {
        let sc = Scenario {
            udin: -1.0,
            ..clean()
        };
        let e = ScenarioSource::new(&sc).unwrap_err();
        assert_eq!(e.key(), Some("udin"));
    }
}
