//! Meter buses in the running service: what a bus reports becomes events, coarse outage
//! detection and tickets, exactly as from a sensor node.

use chrono::{DateTime, Duration, Utc};
use kare::actions::site::Site;
use kare::pipeline::event_log::EventBody;
use kare::pipeline::service::{Service, ServiceConfig};
use kare::sources::meters::readings::{MeterEvent, MeterMessage, MeterReading, Quantity};
use kare_firmware::detector::Thresholds;

fn poll(at: DateTime<Utc>, volts: f64, kw: f64) -> MeterMessage {
    let mut v: Vec<MeterReading> = [Quantity::VoltageA, Quantity::VoltageB, Quantity::VoltageC]
        .iter()
        .map(|q| MeterReading {
            source: "rs485-1".into(),
            device: "incomer".into(),
            at,
            quantity: *q,
            value: volts,
        })
        .collect();
    v.push(MeterReading {
        source: "rs485-1".into(),
        device: "incomer".into(),
        at,
        quantity: Quantity::DemandKw,
        value: kw,
    });
    MeterMessage::Readings(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meter_bus_alone_raises_the_outage_ticket_and_reports_its_own_records() {
    let t0 = Utc::now() - Duration::seconds(120);
    let script: Vec<MeterMessage> = vec![
        poll(t0, 231.0, 350.0),
        poll(t0 + Duration::seconds(5), 230.0, 420.0),
        poll(t0 + Duration::seconds(10), 0.0, 0.0),
        poll(t0 + Duration::seconds(15), 0.0, 0.0),
        poll(t0 + Duration::seconds(20), 229.0, 100.0),
        MeterMessage::Event(MeterEvent::PowerDown {
            source: "rs485-1".into(),
            device: "incomer".into(),
            start: t0 + Duration::seconds(9),
            end: Some(t0 + Duration::seconds(19)),
        }),
        MeterMessage::Event(MeterEvent::Offline {
            source: "rs485-1".into(),
            device: "feeder-2".into(),
            since: t0,
            reason: "no reply after 3 tries".into(),
        }),
    ];
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let bus: kare::pipeline::service::MeterBusTask = Box::new(move |tx, _shutdown| {
        Box::pin(async move {
            for m in script {
                tx.send(m).await.unwrap();
            }
            let _ = done_tx.send(());
        })
    });
    let service = Service::start(ServiceConfig {
        meter_buses: vec![bus],
        coarse: vec![("rs485-1".into(), Thresholds::typical(230.0))],
        ..ServiceConfig::new(Site::demo())
    });
    let mut updates = service.updates.subscribe();
    done_rx.await.unwrap();
    // Wait (with a deadline) until the consumer has logged the offline meter, the last message.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !service
        .log
        .all()
        .iter()
        .any(|e| e.source == "rs485-1/feeder-2")
    {
        tokio::time::timeout_at(deadline, updates.recv())
            .await
            .expect("the service logs the meter messages")
            .unwrap();
    }
    let log = service.log.all();
    let coarse: Vec<_> = log
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::Coarse(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(coarse.len(), 1, "{log:#?}");
    assert_eq!((coarse[0].end.unwrap() - coarse[0].start).num_seconds(), 10);
    assert_eq!(coarse[0].resolution_s, 5.0);
    let json = log
        .iter()
        .find(|e| matches!(e.body, EventBody::Coarse(_)))
        .unwrap()
        .to_json();
    assert_eq!(json["kind"], "outage_coarse");
    assert_eq!(json["coarse"], true);
    assert!(log
        .iter()
        .any(|e| matches!(e.body, EventBody::MeterPowerDown { end: Some(_), .. })));
    assert!(log
        .iter()
        .any(|e| e.source == "rs485-1/feeder-2" && matches!(e.body, EventBody::SensorLost { .. })));

    let tickets = service.tickets.all();
    let repair: Vec<_> = tickets
        .iter()
        .filter(|t| t.op.kind == kare::actions::rules::TicketKind::Repair)
        .collect();
    assert_eq!(repair.len(), 1);
    assert_eq!(
        repair[0].op.state,
        kare::actions::rules::TicketState::Closed
    );
    assert!(repair[0].op.detail.to_json()["seen_by"]["rs485-1/incomer"]
        .as_str()
        .unwrap()
        .contains("coarse"));
    let st = service
        .meters
        .lock()
        .unwrap()
        .get("rs485-1")
        .cloned()
        .unwrap();
    let dev = &st.devices["incomer"];
    assert_eq!(dev.values[&Quantity::VoltageA].0, 229.0);
    drop(updates);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ups_raises_the_outage_ticket_and_asks_for_a_clean_shutdown_on_low_battery() {
    use kare::sources::ups::UpsSignal;
    let t0 = Utc::now();
    let script = vec![
        (UpsSignal::MainsLost, t0),
        (UpsSignal::BatteryLow, t0 + Duration::seconds(600)),
    ];
    let ups: kare::pipeline::service::UpsTask = Box::new(move |tx, _shutdown| {
        Box::pin(async move {
            for s in script {
                tx.send(s).await.unwrap();
            }
        })
    });
    let service = Service::start(ServiceConfig {
        ups: Some(ups),
        ..ServiceConfig::new(Site::demo())
    });
    // The service says when to shut down: after the tickets about it are recorded.
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        service.battery_low.notified(),
    )
    .await
    .expect("battery low asks for a shutdown");
    let tickets = service.tickets.all();
    let repair: Vec<_> = tickets
        .iter()
        .filter(|t| t.op.kind == kare::actions::rules::TicketKind::Repair)
        .collect();
    assert_eq!(repair.len(), 1, "{tickets:#?}");
    assert!(
        repair[0].op.title.contains("appliance on battery"),
        "{}",
        repair[0].op.title
    );
    assert!(repair[0].op.detail.to_json()["note"]
        .as_str()
        .unwrap()
        .contains("battery low"));
    assert!(
        repair[0].revision >= 2,
        "opened, then updated with the battery warning"
    );
    service.stop().await;
}
