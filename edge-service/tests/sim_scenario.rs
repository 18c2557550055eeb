//! Scenario files: the shipped ones parse, and bad values are refused with the key named.

// In a module named `sim` so that `cargo test -p kare sim` selects these tests too.
mod sim {
    use kare::sim::{EventKind, Phase, Scenario, ScenarioError};

    fn shipped(name: &str) -> String {
        let path = format!("{}/../systemd/scenarios/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn the_shipped_demo_file_is_the_built_in_demo() {
        let file = Scenario::from_toml(&shipped("demo.toml")).unwrap();
        assert_eq!(file, Scenario::demo());
    }

    #[test]
    fn the_built_in_demo_is_what_the_brief_describes() {
        let d = Scenario::demo();
        assert_eq!((d.nominal_hz, d.udin, d.channels.len()), (50, 230.0, 3));
        assert_eq!(d.background.harmonics, [(3, 2.0), (5, 3.0)]);
        assert_eq!(d.background.noise_pct, 0.3);
        assert!(d.repeat && d.period_s == Some(70.0) && d.duration_s.is_none());
        let e = &d.event;
        assert_eq!(e.len(), 4);
        assert_eq!(
            (e[0].kind, e[0].at_s, e[0].duration_s),
            (EventKind::Dip, 5.0, 0.12)
        );
        assert_eq!(
            (e[0].level_pct, e[0].phases.as_deref()),
            (Some(60.0), Some(&[Phase::A][..]))
        );
        assert_eq!(
            (e[1].kind, e[1].at_s, e[1].duration_s),
            (EventKind::Swell, 12.0, 0.3)
        );
        assert_eq!((e[1].level_pct, e[1].phases.as_ref()), (Some(115.0), None));
        assert_eq!(
            (e[2].kind, e[2].at_s, e[2].duration_s),
            (EventKind::Interruption, 20.0, 1.5)
        );
        assert_eq!(
            (e[3].kind, e[3].at_s, e[3].duration_s),
            (EventKind::Interruption, 30.0, 25.0)
        );
        assert!(e.iter().all(|e| e.end_s() <= 60.0));
    }

    #[test]
    fn the_every_kind_example_parses() {
        let s = Scenario::from_toml(&shipped("every-kind.toml")).unwrap();
        assert_eq!(s.nominal_hz, 60);
        assert_eq!(s.drift.len(), 2);
        let kinds: Vec<EventKind> = s.event.iter().map(|e| e.kind).collect();
        for k in [
            EventKind::Dip,
            EventKind::Swell,
            EventKind::Interruption,
            EventKind::PhaseLoss,
            EventKind::Frequency,
            EventKind::PhaseJump,
        ] {
            assert!(kinds.contains(&k), "{k} missing");
        }
    }

    const BASE: &str = "node_id = 1\nnominal_hz = 50\n";

    fn event(body: &str) -> String {
        format!("\n[[event]]\nat_s = 1.0\nduration_s = 0.1\n{body}\n")
    }

    fn refused(text: &str) -> ScenarioError {
        match Scenario::from_toml(text) {
            Ok(s) => panic!("accepted: {s:?}\n{text}"),
            Err(e) => e,
        }
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let dip = event("kind = \"dip\"\nlevel_pct = 50");
        let cases: Vec<(String, &str)> = vec![
        (
            format!("{BASE}{dip}{dip}{}", event("kind = \"dip\"\nlevel_pct = 250")),
            "event[2].level_pct must be between 0 and 200, got 250",
        ),
        (
            format!("{BASE}{}", event("kind = \"dip\"\nlevel_pct = 150")),
            "event[0].level_pct must be between 0 and 100 for kind = \"dip\", got 150",
        ),
        (
            format!("{BASE}{}", event("kind = \"swell\"\nlevel_pct = 80")),
            "event[0].level_pct must be between 100 and 200 for kind = \"swell\", got 80",
        ),
        (
            format!("{BASE}{}", event("kind = \"interruption\"\nlevel_pct = 40")),
            "event[0].level_pct must be between 0 and 10 for kind = \"interruption\", got 40",
        ),
        (
            format!("{BASE}{}", event("kind = \"dip\"")),
            "event[0].level_pct is needed for kind = \"dip\"",
        ),
        (
            format!("{BASE}{}", event("kind = \"dip\"\nlevel_pct = 50\ndegrees = 30")),
            "event[0].degrees does not apply to kind = \"dip\"",
        ),
        (
            format!("{BASE}{}", event("kind = \"phase_loss\"")),
            "event[0].phases is needed for kind = \"phase_loss\"",
        ),
        (
            format!("{BASE}{}", event("kind = \"dip\"\nlevel_pct = 50\nphases = []")),
            "event[0].phases must name at least one phase",
        ),
        (
            format!(
                "{BASE}channels = [\"VA\", \"VB\"]\n{}",
                event("kind = \"phase_loss\"\nphases = [\"C\"]")
            ),
            "event[0].phases[0] is phase C, but the node has 2 channel(s)",
        ),
        (
            format!("{BASE}{}", event("kind = \"dip\"\nlevel_pct = 50\nphases = [\"A\", \"A\"]")),
            "event[0].phases[1] repeats phase A",
        ),
        (
            format!("{BASE}{}", event("kind = \"frequency\"\nto_hz = 60")),
            "event[0].to_hz must be between 45 and 55, got 60",
        ),
        (
            format!("{BASE}{}", event("kind = \"phase_jump\"\ndegrees = 270")),
            "event[0].degrees must be between -180 and 180, got 270",
        ),
        (
            format!("{BASE}\n[[event]]\nat_s = -1\nduration_s = 0.1\nkind = \"dip\"\nlevel_pct = 50\n"),
            "event[0].at_s must be between 0 and",
        ),
        (
            format!("{BASE}\n[[event]]\nat_s = 1\nduration_s = 0\nkind = \"dip\"\nlevel_pct = 50\n"),
            "event[0].duration_s must be above 0",
        ),
        ("node_id = 1\nnominal_hz = 55\n".into(), "nominal_hz must be 50 or 60, got 55"),
        (format!("{BASE}sample_rate_hz = 200\n"), "sample_rate_hz must be between 400"),
        (format!("{BASE}udin = nan\n"), "udin must be between 1 and 1000000, got NaN"),
        (format!("{BASE}udin = -230\n"), "udin must be between 1 and 1000000, got -230"),
        (format!("{BASE}channels = []\n"), "channels must name 1 to 3 channels"),
        (
            format!("{BASE}channels = [\"VA\", \"VB\", \"VC\", \"VN\"]\n"),
            "channels must name 1 to 3 channels",
        ),
        (format!("{BASE}channels = [\"PHASE_A_VOLTS\"]\n"), "channels[0] must be 1 to 8 bytes"),
        (format!("{BASE}channels = [\"VA\", \"VA\"]\n"), "channels[1] repeats the name \"VA\""),
        (format!("{BASE}volts_per_unit = 1e-5\n"), "volts_per_unit 0.00001 puts the Udin peak"),
        (format!("{BASE}volts_per_unit = 0\n"), "volts_per_unit must be a positive number"),
        (format!("{BASE}volts_per_unit = 1\n"), "volts_per_unit 1 gives the Udin peak only 325"),
        (format!("{BASE}duration_s = -5\n"), "duration_s must be above 0"),
        (format!("{BASE}repeat = true\n"), "period_s is needed with repeat = true"),
        (format!("{BASE}period_s = 10\n"), "period_s only applies with repeat = true"),
        (
            format!("{BASE}repeat = true\nperiod_s = 10\n{dip}\n[[event]]\nat_s = 9.5\nduration_s = 1\nkind = \"swell\"\nlevel_pct = 120\n"),
            "event[1] ends at 10.5 s, after the end of the pass (period_s = 10)",
        ),
        (
            format!("{BASE}[background]\nfrequency_hz = 40\n"),
            "background.frequency_hz must be between 45 and 55, got 40",
        ),
        (
            format!("{BASE}[background]\nnoise_pct = 20\n"),
            "background.noise_pct must be between 0 and 10, got 20",
        ),
        (
            format!("{BASE}[background]\nharmonics = [[1, 5.0]]\n"),
            "background.harmonics[0] order must be 2 or more, got 1",
        ),
        (
            format!("{BASE}[background]\nharmonics = [[3, 2.0], [63, 0.1]]\n"),
            "background.harmonics[1] order 63 at up to 55 Hz is not below half the sample rate (3200 Hz)",
        ),
        (
            format!("{BASE}[background]\nharmonics = [[3, 2.0], [3, 1.0]]\n"),
            "background.harmonics[1] repeats order 3",
        ),
        (
            format!("{BASE}[background]\nharmonics = [[3, 120.0]]\n"),
            "background.harmonics[0] percentage must be between 0 and 100, got 120",
        ),
        (
            format!("{BASE}\n[[drift]]\nat_s = 1\nto_hz = 50.2\nover_s = 5\n\n[[drift]]\nat_s = 3\nto_hz = 50\nover_s = 1\n"),
            "drift[1].at_s is 3 s, before drift[0] ends at 6 s",
        ),
        (
            format!("{BASE}\n[[drift]]\nat_s = 1\nto_hz = 70\nover_s = 5\n"),
            "drift[0].to_hz must be between 45 and 55, got 70",
        ),
    ];
        for (text, expected) in cases {
            let e = refused(&text).to_string();
            assert!(
                e.starts_with(expected),
                "expected {expected:?}\n     got {e:?}"
            );
            assert!(!e.contains('\n'), "one line: {e:?}");
        }
    }

    #[test]
    fn parse_errors_carry_line_column_and_key() {
        let cases = [
        (
            format!("{BASE}udin = \"230 V\"\n"),
            "line 3, column 8 (udin): invalid type: string \"230 V\", expected f64",
        ),
        (
            format!("{BASE}{}", event("kind = \"sag\"\nlevel_pct = 50")),
            "line 7, column 8 (event[0].kind): unknown variant `sag`",
        ),
        (
            format!("{BASE}{}{}", event("kind = \"dip\"\nlevel_pct = 50"), event("kind = \"dip\"\nlevel = 50")),
            "line 14, column 1 (event[1].level): unknown field `level`, expected one of `at_s`",
        ),
        (
            format!("{BASE}[background]\nharmonics = [[3.5, 2.0]]\n"),
            "line 4, column 15 (background.harmonics): invalid type: floating point `3.5`, expected u32",
        ),
        (
            format!("{BASE}\n[[event]]\nat_s = 1.0\nkind = \"dip\"\nlevel_pct = 50\n"),
            "line 4, column 1 (event[0]): missing field `duration_s`",
        ),
        ("nominal_hz = 50\n".into(), "missing field `node_id`"),
        (format!("{BASE}udin = \n"), "line 3, column 8 (udin): "),
    ];
        for (text, expected) in cases {
            let e = refused(&text).to_string();
            assert!(
                e.starts_with(expected),
                "expected {expected:?}\n     got {e:?}"
            );
            assert!(!e.contains('\n'), "one line: {e:?}");
        }
    }
}
