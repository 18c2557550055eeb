//! The DL/T 645 poller against scripted meters on an in-memory stream, for what the PyPI
//! simulator cannot do (load profiles over follow-up frames, a power-down record that changes),
//! and against a serial port that does not exist.

// Test names carry the protocol (`cargo test -p kare dlt645` runs them all).
mod dlt645 {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    use kare::sources::meters::dlt645::codec::{
        self as dlt645, bcd, function, Address, Control, Di, Frame, FrameBuffer, LoadProfileRead,
    };
    use kare::sources::meters::dlt645::{run, serve, Dlt645BusConfig, Dlt645Device, Parity, Poll};
    use kare::sources::meters::readings::{MeterEvent, MeterMessage, Quantity};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;
    use tokio::time::Instant;
    use tokio_util::sync::CancellationToken;

    const WAIT: Duration = Duration::from_secs(20);

    fn meter() -> Address {
        "123456789012".parse().unwrap()
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    /// A scripted meter: answers each request frame with what `answer` returns (nothing = silence).
    fn fake_meter(
        mut side: DuplexStream,
        answer: impl FnMut(&Frame) -> Option<Frame> + Send + 'static,
    ) {
        let answer = Arc::new(Mutex::new(answer));
        tokio::spawn(async move {
            let mut rx = FrameBuffer::new();
            let mut buf = [0u8; 512];
            loop {
                let n = match side.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                rx.push(&buf[..n]);
                while let Some(found) = rx.next_frame() {
                    let Ok(request) = found else { continue };
                    let reply = (answer.lock().unwrap())(&request);
                    if let Some(reply) = reply {
                        let bytes = reply.encode_with_wake_up().unwrap();
                        if side.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }

    fn config(devices: Vec<Dlt645Device>) -> Dlt645BusConfig {
        let mut cfg = Dlt645BusConfig::new("bus", "memory");
        cfg.timeout = Duration::from_millis(200);
        cfg.retries = 1;
        cfg.inter_frame_ms = 1;
        cfg.offline_after = 2;
        cfg.max_backoff = Duration::from_millis(200);
        cfg.devices = devices;
        cfg
    }

    fn device(di: &[u32], every_ms: u64) -> Dlt645Device {
        Dlt645Device {
            name: "m".into(),
            address: Some(meter()),
            polls: di
                .iter()
                .map(|&d| Poll {
                    di: Di(d),
                    every: Duration::from_millis(every_ms),
                })
                .collect(),
            broadcast_time_set: false,
        }
    }

    async fn collect_until(
        rx: &mut mpsc::Receiver<MeterMessage>,
        all: &mut Vec<MeterMessage>,
        what: &str,
        done: impl Fn(&[MeterMessage]) -> bool,
    ) {
        let deadline = Instant::now() + WAIT;
        while !done(all) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(m)) => all.push(m),
                Ok(None) => panic!("poller stopped before {what}"),
                Err(_) => panic!("timed out waiting for {what}: {all:#?}"),
            }
        }
    }

    /// A load-profile record with classes 1 and 6 only.
    fn record(time: NaiveDateTime, volts: f64, demand: f64) -> Vec<u8> {
        let n = |v: f64, f: &str, s: bool| bcd::encode_number(v, f.parse().unwrap(), s).unwrap();
        let mut body = bcd::encode_datetime(time, false).unwrap();
        for _ in 0..3 {
            body.extend(n(volts, "XXX.X", false));
        }
        for _ in 0..3 {
            body.extend(n(1.0, "XXX.XXX", true));
        }
        body.extend(n(50.0, "XX.XX", false));
        body.extend([0xAA; 5]);
        body.extend(n(demand, "XX.XXXX", true));
        body.extend(n(0.0, "XX.XXXX", true));
        body.push(0xAA);
        let mut r = vec![0xA0, 0xA0, body.len() as u8];
        r.extend(body);
        r.push(r.iter().fold(0u8, |s, b| s.wrapping_add(*b)));
        r.push(0xE5);
        r
    }

    #[tokio::test]
    async fn load_profile_over_follow_up_frames() {
        let (ours, theirs) = tokio::io::duplex(4096);
        let asked: Arc<Mutex<Vec<NaiveDateTime>>> = Arc::default();
        let asked_by_meter = asked.clone();
        // Two records per reply, sent as a B1 frame and a 92 frame (read with 12).
        let mut pending: Vec<u8> = Vec::new();
        fake_meter(theirs, move |req| {
            let di = Di::from_wire(req.data[..4].try_into().ok()?);
            assert_eq!(di, dlt645::load_profile::DI_SINCE);
            match req.control.function() {
                function::READ_DATA => {
                    assert_eq!(req.data[4], 0x04, "four blocks asked");
                    let from = bcd::decode_datetime(&req.data[5..10]).unwrap().unwrap();
                    asked_by_meter.lock().unwrap().push(from);
                    let mut value = record(from, 230.0, 1.5);
                    value.extend(record(from + chrono::Duration::minutes(15), 231.0, 2.5));
                    pending = value.split_off(40);
                    let mut data = di.to_wire().to_vec();
                    data.extend(value);
                    Some(Frame {
                        address: meter(),
                        control: Control::reply(function::READ_DATA, true),
                        data,
                    })
                }
                function::READ_FOLLOW_UP => {
                    assert_eq!(req.data[4], 1, "first follow-up frame");
                    let mut data = di.to_wire().to_vec();
                    data.append(&mut pending);
                    data.push(1);
                    Some(Frame {
                        address: meter(),
                        control: Control::reply(function::READ_FOLLOW_UP, false),
                        data,
                    })
                }
                _ => None,
            }
        });
        let (tx, mut rx) = mpsc::channel(16);
        let _stop = CancellationToken::new();
        let shutdown = _stop.clone();
        tokio::spawn(serve(
            config(vec![device(&[0x0600_0001], 150)]),
            ours,
            tx,
            shutdown,
        ));
        let mut all = Vec::new();
        collect_until(&mut rx, &mut all, "two load-profile reads", |all| {
            all.iter()
                .filter(|m| matches!(m, MeterMessage::Interval(_)))
                .count()
                >= 2
        })
        .await;
        // Records are history: they come as interval data, never as a poll's present values
        // (the coarse outage detector and the status page take those).
        assert!(!all.iter().any(|m| matches!(m, MeterMessage::Readings(_))));
        let MeterMessage::Interval(first) = all
            .iter()
            .find(|m| matches!(m, MeterMessage::Interval(_)))
            .unwrap()
        else {
            unreachable!()
        };
        let asked = asked.lock().unwrap().clone();
        let t0 = asked[0];
        // Records carry their own times, converted from the meter's +08:00.
        let utc = |t: NaiveDateTime| Utc.from_utc_datetime(&(t - chrono::Duration::hours(8)));
        let demand: Vec<_> = first
            .iter()
            .filter(|r| r.quantity == Quantity::DemandKw)
            .map(|r| (r.at, r.value))
            .collect();
        assert_eq!(
            demand,
            [
                (utc(t0), 1.5),
                (utc(t0 + chrono::Duration::minutes(15)), 2.5)
            ]
        );
        assert!(first
            .iter()
            .any(|r| r.quantity == Quantity::VoltageB && r.value == 231.0));
        // The next read starts after the last record received.
        assert_eq!(asked[1], t0 + chrono::Duration::minutes(16));
        // The first read asked for about the last hour (4 blocks of the 150 ms period here: now).
        let now_cst = (Utc::now() + chrono::Duration::hours(8)).naive_utc();
        assert!(
            (now_cst - t0).num_seconds().abs() < 120,
            "{t0} vs {now_cst}"
        );
    }

    #[tokio::test]
    async fn power_down_record_reported_once_and_again_when_it_changes() {
        let (ours, theirs) = tokio::io::duplex(4096);
        let start = at(2025, 6, 1, 12, 0, 0);
        let script = Arc::new(Mutex::new(vec![
            (start, None),
            (start, None),
            (start, Some(at(2025, 6, 1, 12, 30, 0))),
            (start, Some(at(2025, 6, 1, 12, 30, 0))),
            (at(2025, 6, 2, 8, 0, 0), Some(at(2025, 6, 2, 8, 0, 5))),
        ]));
        let reads = script.clone();
        fake_meter(theirs, move |req| {
            let mut s = reads.lock().unwrap();
            let (a, b) = if s.len() > 1 { s.remove(0) } else { s[0] };
            let mut data = req.data[..4].to_vec();
            data.extend(bcd::encode_datetime(a, true).unwrap());
            match b {
                Some(b) => data.extend(bcd::encode_datetime(b, true).unwrap()),
                None => data.extend([0; 6]),
            }
            Some(Frame {
                address: meter(),
                control: Control::reply(function::READ_DATA, false),
                data,
            })
        });
        let (tx, mut rx) = mpsc::channel(16);
        let _stop = CancellationToken::new();
        let shutdown = _stop.clone();
        tokio::spawn(serve(
            config(vec![device(&[0x0311_0001], 20)]),
            ours,
            tx,
            shutdown,
        ));
        let mut all = Vec::new();
        let power_downs =
            |all: &[MeterMessage]| -> Vec<(chrono::DateTime<Utc>, Option<chrono::DateTime<Utc>>)> {
                all.iter()
                    .filter_map(|m| match m {
                        MeterMessage::Event(MeterEvent::PowerDown { start, end, .. }) => {
                            Some((*start, *end))
                        }
                        _ => None,
                    })
                    .collect()
            };
        collect_until(&mut rx, &mut all, "three power-down events", |all| {
            power_downs(all).len() >= 3
        })
        .await;
        // Let the last record be read a few more times: no new event.
        collect_until(&mut rx, &mut all, "more cycles", |all| {
            all.iter()
                .filter(|m| matches!(m, MeterMessage::Stats(..)))
                .count()
                >= 12
        })
        .await;
        let u = |y, mo, d, h, mi, s| Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
        assert_eq!(
            power_downs(&all),
            [
                (u(2025, 6, 1, 4, 0, 0), None),
                (u(2025, 6, 1, 4, 0, 0), Some(u(2025, 6, 1, 4, 30, 0))),
                (u(2025, 6, 2, 0, 0, 0), Some(u(2025, 6, 2, 0, 0, 5))),
            ]
        );
    }

    #[tokio::test]
    async fn a_missing_port_takes_every_meter_offline_without_losing_an_event() {
        let mut cfg = Dlt645BusConfig::new("bus", "/dev/kare-no-such-port");
        cfg.parity = Parity::None;
        cfg.devices = (0..5)
            .map(|i| {
                let mut d = device(&[0x0201_0100], 1000);
                d.name = format!("m{i}");
                d.address = Some(format!("00000000000{i}").parse().unwrap());
                d
            })
            .collect();
        // Room for one message: the rest must queue in the poller until read.
        let (tx, mut rx) = mpsc::channel(1);
        let stop = CancellationToken::new();
        let shutdown = stop.clone();
        let task = tokio::spawn(run(cfg, tx, shutdown));
        let mut all = Vec::new();
        collect_until(&mut rx, &mut all, "five offline events", |all| {
            all.len() >= 5
        })
        .await;
        for (i, m) in all.iter().enumerate() {
            match m {
                MeterMessage::Event(MeterEvent::Offline { device, reason, .. }) => {
                    assert_eq!(&**device, format!("m{i}"));
                    assert!(reason.contains("/dev/kare-no-such-port"), "{reason}");
                }
                other => panic!("{other:?}"),
            }
        }
        stop.cancel();
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn discovery_is_refused_when_the_meter_is_not_alone() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut a = device(&[0x0201_0100], 100);
        a.address = None;
        a.name = "nameless".into();
        let b = device(&[0x0201_0100], 100);
        let (tx, mut rx) = mpsc::channel(4);
        let _stop = CancellationToken::new();
        let shutdown = _stop.clone();
        tokio::spawn(serve(config(vec![a, b]), ours, tx, shutdown));
        let mut all = Vec::new();
        collect_until(&mut rx, &mut all, "the nameless device offline", |all| {
            !all.is_empty()
        })
        .await;
        match &all[0] {
            MeterMessage::Event(MeterEvent::Offline { device, reason, .. }) => {
                assert_eq!(&**device, "nameless");
                assert!(reason.contains("alone on the bus"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // The request frame that would have been sent is still a valid one (sanity).
        assert!(LoadProfileRead::Latest { blocks: 1 }
            .request(meter())
            .is_ok());
    }
}
