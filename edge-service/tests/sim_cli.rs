//! `kare simulate` arguments and their errors (the lead wires `SimulateArgs` into main.rs).

// In a module named `sim` so that `cargo test -p kare sim` selects these tests too.
mod sim {
    use clap::Parser;
    use kare::sim::{run_cli, SimulateArgs};
    use std::io::Write;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    fn args(line: &[&str]) -> SimulateArgs {
        let mut argv = vec!["kare-simulate"];
        argv.extend_from_slice(line);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn defaults_are_the_demo_in_real_time_until_stopped() {
        let a = args(&["--port", "/dev/pts/9"]);
        assert_eq!(a.port, "/dev/pts/9");
        assert_eq!(a.speed, 1.0);
        assert!(a.scenario.is_none() && a.duration.is_none());
        assert!(
            Cli::try_parse_from(["kare-simulate"]).is_err(),
            "--port is required"
        );
    }

    #[test]
    fn errors_say_what_to_check() {
        let e = run_cli(args(&[
            "--port",
            "/dev/kare-no-such-port",
            "--duration",
            "1",
        ]))
        .unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.starts_with("cannot open serial port /dev/kare-no-such-port: ")
                && msg.ends_with("check the path and that no other program holds it"),
            "{msg}"
        );

        let e = run_cli(args(&["--port", "/dev/null", "--speed", "-2"])).unwrap_err();
        assert!(format!("{e:#}").starts_with("--speed must be 0"), "{e:#}");
        let e = run_cli(args(&["--port", "/dev/null", "--duration", "0"])).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("--duration must be a positive"),
            "{e:#}"
        );

        let mut bad = tempfile::NamedTempFile::new().unwrap();
        writeln!(bad, "node_id = 1\nnominal_hz = 50\nudin = -1").unwrap();
        let path = bad.path().display().to_string();
        let e = run_cli(args(&["--port", "/dev/null", "--scenario", &path])).unwrap_err();
        let msg = format!("{e:#}");
        assert_eq!(
            msg,
            format!("scenario {path}: udin must be between 1 and 1000000, got -1")
        );
        assert!(!msg.contains('\n'));

        let e = run_cli(args(&[
            "--port",
            "/dev/null",
            "--scenario",
            "/nonexistent.toml",
        ]))
        .unwrap_err();
        assert!(
            format!("{e:#}").starts_with("cannot read scenario /nonexistent.toml: "),
            "{e:#}"
        );
    }

    #[test]
    fn a_short_unpaced_run_writes_frames_to_the_port() {
        let out = tempfile::NamedTempFile::new().unwrap();
        let path = out.path().display().to_string();
        run_cli(args(&["--port", &path, "--speed", "0", "--duration", "2"])).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let frames: Vec<_> = kare_firmware::pqlink::Decoder::new().feed(&bytes).collect();
        assert!(frames.len() > 190, "{} frames", frames.len());
        assert!(frames.iter().all(|f| f.is_ok()));
    }
}
