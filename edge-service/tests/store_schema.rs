//! The store on a real SQLite file: migrations, tickets and their outbox rows, events,
//! batching, retention and a full disk.

use chrono::{DateTime, Duration as CDuration, TimeZone, Utc};
use kare::store::schema::{self, MIGRATIONS};
use kare::store::*;
use rusqlite::Connection;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

fn cfg(dir: &tempfile::TempDir) -> StoreConfig {
    StoreConfig {
        synchronous: Synchronous::Normal,
        ..StoreConfig::at(dir.path().join("kare.db"))
    }
}

fn deliver(endpoints: &[&str]) -> Vec<DeliverTo> {
    endpoints
        .iter()
        .map(|e| DeliverTo {
            channel: Channel::Webhook,
            endpoint: e.to_string(),
            payload_json: json!({"id": 0, "key": "", "revision": 0, "title": "t"}),
        })
        .collect()
}

fn ticket(key: &str, state: TicketState, endpoints: &[&str]) -> TicketWrite {
    TicketWrite {
        key: key.into(),
        kind: "repair".into(),
        state,
        priority: "P1".into(),
        site_id: "SITE-1".into(),
        customer_id: "C-1".into(),
        title: format!("ticket {key}"),
        // Floats that do not print short, and a time finer than the store keeps: an identical
        // re-save must still be recognised as one.
        body_json: json!({"id": 0, "key": "", "revision": 0, "note": key,
                          "f": 0.1 + 0.2, "g": 1.0 / 3.0, "h": 1e-7 * 3.0}),
        event_id: None,
        opened_at: Some(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                + CDuration::nanoseconds(123_456_789),
        ),
        closed_at: None,
        duration_s: None,
        deliver_to: deliver(endpoints),
    }
}

fn event(key: &str, start: DateTime<Utc>, open: bool) -> StoredEvent {
    StoredEvent {
        source: "feeder-1".into(),
        source_key: key.into(),
        site_id: Some("SITE-1".into()),
        kind: "dip".into(),
        start,
        end: (!open).then(|| start + CDuration::milliseconds(80)),
        duration_s: (!open).then_some(0.08),
        extreme_pct: Some(71.4),
        worst_channel: Some("L1".into()),
        open,
        json: json!({"kind": "dip", "open": open}),
        profile_json: None,
        waveform: None,
    }
}

#[test]
fn store_fresh_and_migrated_files_have_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = cfg(&dir);
    let s = Store::open(&fresh).unwrap();
    let want = schema::dump(s.connection()).unwrap();
    assert_eq!(
        schema::version(s.connection()).unwrap(),
        MIGRATIONS.len() as i64
    );
    assert!(want.iter().any(|(t, n, _)| t == "table" && n == "outbox"));
    drop(s);

    // A file left at every earlier version (as an older kare would have left it) ends equal.
    for k in 0..MIGRATIONS.len() as i64 {
        let c = StoreConfig::at(dir.path().join(format!("v{k}.db")));
        {
            let mut conn = Connection::open(&c.path).unwrap();
            conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL;")
                .unwrap();
            schema::migrate_to(&mut conn, k).unwrap();
            assert_eq!(schema::version(&conn).unwrap(), k);
        }
        let s = Store::open(&c).unwrap();
        assert_eq!(
            schema::dump(s.connection()).unwrap(),
            want,
            "from version {k}"
        );
        assert_eq!(
            schema::version(s.connection()).unwrap(),
            MIGRATIONS.len() as i64
        );
    }

    // Opening again is a no-op, and what was stored survives it.
    let mut s = Store::open(&fresh).unwrap();
    let t = s
        .save_ticket(&ticket("k", TicketState::Open, &["a"]))
        .unwrap();
    drop(s);
    let s = Store::open(&fresh).unwrap();
    assert_eq!(schema::dump(s.connection()).unwrap(), want);
    assert_eq!(s.ticket(t.id).unwrap().unwrap().key, "k");
}

#[test]
fn store_refuses_a_file_from_a_newer_kare() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(&dir);
    drop(Store::open(&c).unwrap());
    let conn = Connection::open(&c.path).unwrap();
    conn.execute_batch(&format!("PRAGMA user_version = {}", MIGRATIONS.len() + 1))
        .unwrap();
    drop(conn);
    let e = Store::open(&c).unwrap_err();
    assert!(matches!(e, StoreError::TooNew { .. }), "{e:?}");
    assert!(e.to_string().contains("newer kare"), "{e}");
}

#[test]
fn store_ticket_revisions_queue_one_outbox_row_per_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    let w = ticket("SITE-1-outage-1", TicketState::Open, &["desk", "mail"]);
    let a = s.save_ticket(&w).unwrap();
    assert_eq!((a.revision, a.changed, a.outbox_ids.len()), (1, true, 2));

    // The store stamps what only it knows into the body and every payload.
    let t = s.ticket_by_key("SITE-1-outage-1").unwrap().unwrap();
    assert_eq!(t.body_json["id"], json!(a.id));
    assert_eq!(t.body_json["revision"], json!(1));
    let rows = s.outbox_for_ticket(a.id).unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        assert_eq!(r.idempotency_key, "SITE-1-outage-1:1");
        assert_eq!(r.payload_json["key"], json!("SITE-1-outage-1"));
        assert_eq!(r.payload_json["revision"], json!(1));
        assert_eq!(r.state, OutboxState::Pending);
    }

    // An identical save (e.g. the rules replaying after a restart) changes nothing.
    let again = s.save_ticket(&w).unwrap();
    assert_eq!((again.id, again.revision, again.changed), (a.id, 1, false));
    assert!(again.outbox_ids.is_empty());
    // Nor does one that differs only by when it was made (the desk stamps `updated_at`).
    let mut later = w.clone();
    later.body_json["updated_at"] = json!("2031-01-01T00:00:00Z");
    let again = s.save_ticket(&later).unwrap();
    assert_eq!((again.revision, again.changed), (1, false));

    // Closing is a change: revision 2, closing time set, two more rows.
    let mut closed = w.clone();
    closed.state = TicketState::Closed;
    closed.duration_s = Some(12.5);
    let b = s.save_ticket(&closed).unwrap();
    assert_eq!((b.id, b.revision, b.outbox_ids.len()), (a.id, 2, 2));
    let t = s.ticket(a.id).unwrap().unwrap();
    assert_eq!(t.state, TicketState::Closed);
    assert!(t.closed_at.is_some());
    assert_eq!(t.duration_s, Some(12.5));
    // Re-saving the closed ticket without a closing time keeps the one it has.
    assert!(!s.save_ticket(&closed).unwrap().changed);

    // Only the earliest pending revision per endpoint is offered.
    let due = s.outbox_due(Utc::now(), 100).unwrap();
    assert_eq!(due.len(), 2);
    assert!(due.iter().all(|r| r.revision == 1));
    let desk1 = due.iter().find(|r| r.endpoint == "desk").unwrap().id;
    s.record_attempt(&Attempt {
        outbox_id: desk1,
        at: Utc::now(),
        detail: "HTTP 200 OK".into(),
        latency: Duration::from_millis(12),
        outcome: AttemptOutcome::Delivered,
    })
    .unwrap();
    let due = s.outbox_due(Utc::now(), 100).unwrap();
    let got: HashSet<(String, i64)> = due
        .iter()
        .map(|r| (r.endpoint.clone(), r.revision))
        .collect();
    assert_eq!(
        got,
        HashSet::from([("desk".to_string(), 2), ("mail".to_string(), 1)])
    );
    let row = s.outbox_row(desk1).unwrap().unwrap();
    assert_eq!(row.state, OutboxState::Delivered);
    assert_eq!(row.attempts, 1);
    assert_eq!(s.attempts(desk1).unwrap().len(), 1);

    // Bad writes are refused, and nothing of them is stored.
    let mut dup = ticket("dup", TicketState::Open, &["x", "x"]);
    assert!(matches!(s.save_ticket(&dup), Err(StoreError::Invalid(_))));
    dup.deliver_to.clear();
    dup.key.clear();
    assert!(matches!(s.save_ticket(&dup), Err(StoreError::Invalid(_))));
    assert!(s.ticket_by_key("dup").unwrap().is_none());
}

#[test]
fn store_a_ticket_keeps_the_event_that_opened_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let first = s.upsert_event(&event("interruption@t0", t0, true)).unwrap();
    let later = s
        .upsert_event(&event("interruption@t1", t0 + CDuration::minutes(3), true))
        .unwrap();
    let mut w = ticket("SITE-1-outage-2", TicketState::Open, &["desk"]);
    w.event_id = Some(first);
    let a = s.save_ticket(&w).unwrap();
    // A revision caused by another event (the supply failing again) keeps the first link...
    w.title = "Supply lost (failed 2 times)".into();
    w.event_id = Some(later);
    s.save_ticket(&w).unwrap();
    // ...and so does one with no event behind it (a generator limit reached, a tick).
    w.state = TicketState::Closed;
    w.event_id = None;
    s.save_ticket(&w).unwrap();
    let t = s.ticket(a.id).unwrap().unwrap();
    assert_eq!((t.revision, t.event_id), (3, Some(first)));
    // A save that differs only by naming an event where the ticket already has one is no change.
    w.event_id = Some(later);
    assert!(!s.save_ticket(&w).unwrap().changed);
}

#[test]
fn store_events_upsert_by_source_key_and_keep_their_profile() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let id = s.upsert_event(&event("dip@t0", t0, true)).unwrap();
    s.attach_profile(id, &json!({"records": [1, 2, 3]}))
        .unwrap();
    // The end comes without the profile: the profile stays.
    assert_eq!(s.upsert_event(&event("dip@t0", t0, false)).unwrap(), id);
    let e = s.event(id).unwrap().unwrap();
    assert!(!e.open);
    assert_eq!(e.duration_s, Some(0.08));
    assert_eq!(e.profile_json, Some(json!({"records": [1, 2, 3]})));
    s.attach_waveform(id, b"COMTRADE").unwrap();
    assert_eq!(s.event_waveform(id).unwrap().unwrap(), b"COMTRADE");
    assert!(s.event(id).unwrap().unwrap().has_waveform);

    let id2 = s
        .upsert_event(&event("dip@t1", t0 + CDuration::hours(1), true))
        .unwrap();
    assert_ne!(id, id2);
    let in_range = s.events(t0, t0 + CDuration::minutes(30)).unwrap();
    assert_eq!(in_range.iter().map(|e| e.id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(s.events(t0, t0 + CDuration::days(1)).unwrap().len(), 2);
    assert!(matches!(
        s.attach_profile(9999, &json!(null)),
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_handle_batches_a_storm_into_few_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(&dir);
    c.synchronous = Synchronous::Full;
    let store = StoreHandle::open(&c).unwrap();
    const N: usize = 400;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .save_ticket(ticket(&format!("storm-{i}"), TicketState::Open, &["desk"]))
                .await
        });
    }
    let mut ids = HashSet::new();
    while let Some(r) = tasks.join_next().await {
        let saved = r.unwrap().unwrap();
        assert!(ids.insert(saved.id));
    }
    assert_eq!(ids.len(), N);
    let st = store.stats();
    assert_eq!(st.commands, N as u64);
    assert!(
        st.transactions * 10 <= N as u64,
        "{N} writes took {} transactions",
        st.transactions
    );

    // Acknowledged means committed: another connection sees it at once.
    let saved = store
        .save_ticket(ticket("seen", TicketState::Open, &["desk"]))
        .await
        .unwrap();
    let other = Connection::open(&c.path).unwrap();
    let n: i64 = other
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE ticket_id = ?1",
            [saved.id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(store.stats().transactions, st.transactions + 1);
    assert_eq!(store.open_tickets().await.unwrap().len(), N + 1);

    // A failing command does not take its batch with it.
    let (bad, good) = tokio::join!(
        store.save_ticket(ticket("", TicketState::Open, &[])),
        store.save_ticket(ticket("fine", TicketState::Open, &["desk"]))
    );
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
    assert!(good.is_ok());
    assert!(store.ticket_by_key("fine").await.unwrap().is_some());

    store.close().await;
    assert!(matches!(
        store
            .save_ticket(ticket("late", TicketState::Open, &[]))
            .await,
        Err(StoreError::Closed)
    ));
}

/// Records an attempt with the given outcome at `at`.
fn settle(s: &mut Store, outbox_id: i64, at: DateTime<Utc>, outcome: AttemptOutcome) {
    s.record_attempt(&Attempt {
        outbox_id,
        at,
        detail: format!("{outcome:?}"),
        latency: Duration::from_millis(5),
        outcome,
    })
    .unwrap();
}

#[test]
fn store_retention_never_removes_open_tickets_or_undelivered_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    let now = Utc::now();
    let old = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
    let later = now + CDuration::days(8);

    let closed = |key: &str, at: DateTime<Utc>| TicketWrite {
        closed_at: Some(at),
        opened_at: Some(old),
        ..ticket(key, TicketState::Closed, &["desk"])
    };
    // Open ticket, delivered long ago: the ticket stays; its delivered row may go.
    let open = s
        .save_ticket(&ticket("open", TicketState::Open, &["desk"]))
        .unwrap();
    settle(&mut s, open.outbox_ids[0], old, AttemptOutcome::Delivered);
    // Closed long ago, delivered: all of it goes.
    let gone = s.save_ticket(&closed("gone", old)).unwrap();
    settle(&mut s, gone.outbox_ids[0], old, AttemptOutcome::Delivered);
    // Closed long ago but still pending, or dead: kept with its rows.
    let pending = s.save_ticket(&closed("pending", old)).unwrap();
    let dead = s.save_ticket(&closed("dead", old)).unwrap();
    settle(&mut s, dead.outbox_ids[0], old, AttemptOutcome::Dead);
    // Closed recently (as seen from the prune's "now"): kept.
    let recent = s.save_ticket(&closed("recent", later)).unwrap();
    settle(
        &mut s,
        recent.outbox_ids[0],
        later,
        AttemptOutcome::Delivered,
    );
    // Events: an old closed one goes, an open one and one a kept ticket refers to stay.
    let ev_old = s.upsert_event(&event("old", old, false)).unwrap();
    let ev_open = s.upsert_event(&event("open", old, true)).unwrap();
    let ev_ref = s.upsert_event(&event("ref", old, false)).unwrap();
    s.save_ticket(&TicketWrite {
        event_id: Some(ev_ref),
        ..closed("pending-with-event", old)
    })
    .unwrap();

    let r = s
        .prune_as_of(
            now + CDuration::days(10),
            Duration::from_secs(5 * 86_400),
            u64::MAX,
        )
        .unwrap();
    // Delivered rows of "open" and "gone"; ticket "gone"; event "old".
    assert_eq!((r.tickets, r.outbox, r.events), (1, 2, 1), "{r:?}");
    assert_eq!(r.attempts, 2);
    assert!(!r.still_over_limit);

    assert!(s.ticket(open.id).unwrap().is_some());
    assert!(s.outbox_row(open.outbox_ids[0]).unwrap().is_none());
    assert!(s.ticket(gone.id).unwrap().is_none());
    assert!(s.outbox_row(pending.outbox_ids[0]).unwrap().is_some());
    assert_eq!(s.dead_letters().unwrap().len(), 1);
    assert!(s.ticket(dead.id).unwrap().is_some());
    assert!(s.ticket(recent.id).unwrap().is_some());
    assert!(s.outbox_row(recent.outbox_ids[0]).unwrap().is_some());
    assert!(s.event(ev_old).unwrap().is_none());
    assert!(s.event(ev_open).unwrap().is_some());
    assert!(s.event(ev_ref).unwrap().is_some());

    // Down to nothing by size: still only what may go goes.
    let r = s
        .prune_as_of(now + CDuration::days(10), Duration::MAX, 1)
        .unwrap();
    assert!(r.still_over_limit, "{r:?}");
    assert!(s.ticket(open.id).unwrap().is_some());
    assert!(s.outbox_row(pending.outbox_ids[0]).unwrap().is_some());
    assert!(s.outbox_row(dead.outbox_ids[0]).unwrap().is_some());
    assert!(s.event(ev_open).unwrap().is_some());
    assert!(
        s.ticket(recent.id).unwrap().is_none(),
        "closed and delivered: may go"
    );
    assert_eq!(s.integrity_check().unwrap(), Ok(()));
}

#[test]
fn store_retention_by_size_removes_the_oldest_first_and_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(&dir);
    let mut s = Store::open(&c).unwrap();
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        let mut e = event(&format!("e{i}"), t0 + CDuration::minutes(i), false);
        e.waveform = Some(vec![i as u8; 64 * 1024]);
        ids.push(s.upsert_event(&e).unwrap());
    }
    s.checkpoint().unwrap();
    let file_before = std::fs::metadata(&c.path).unwrap().len();
    let used = s.used_bytes().unwrap();
    assert!(used > 2_500_000, "{used}");

    let limit = 1_000_000;
    let r = s.prune_as_of(Utc::now(), Duration::MAX, limit).unwrap();
    assert!(r.bytes_after <= limit && !r.still_over_limit, "{r:?}");
    assert!(r.events >= 20, "{r:?}");
    let left: Vec<i64> = s
        .events(t0, t0 + CDuration::days(1))
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    // Exactly the newest survive.
    assert_eq!(left, ids[ids.len() - left.len()..].to_vec());
    s.checkpoint().unwrap();
    let file_after = std::fs::metadata(&c.path).unwrap().len();
    assert!(file_after < file_before / 2, "{file_before} → {file_after}");
}

#[test]
fn store_full_disk_is_its_own_error_and_the_store_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    let pages: i64 = s
        .connection()
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    // A "disk" a few pages larger than the file is now.
    s.connection()
        .query_row(
            &format!("PRAGMA max_page_count = {}", pages + 8),
            [],
            |_| Ok(()),
        )
        .unwrap();
    let big = "x".repeat(8 * 1024);
    let mut saved = Vec::new();
    let err = loop {
        let mut w = ticket(
            &format!("full-{}", saved.len()),
            TicketState::Open,
            &["desk"],
        );
        w.body_json = json!({"pad": big});
        match s.save_ticket(&w) {
            Ok(t) => saved.push(t.id),
            Err(e) => break e,
        }
        assert!(saved.len() < 100, "never filled up");
    };
    assert!(err.is_disk_full(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("no room") && text.contains("max_db_mb"),
        "{text}"
    );
    // Nothing half-written; everything acknowledged is there.
    assert_eq!(s.integrity_check().unwrap(), Ok(()));
    for id in &saved {
        assert_eq!(s.outbox_for_ticket(*id).unwrap().len(), 1);
    }
    // Room again: writes work again.
    s.connection()
        .query_row("PRAGMA max_page_count = 1000000", [], |_| Ok(()))
        .unwrap();
    s.save_ticket(&ticket("after", TicketState::Open, &["desk"]))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_handle_never_acknowledges_a_write_lost_to_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(&dir);
    c.hard_limit_mb = Some(1);
    c.max_db_mb = 1;
    let store = StoreHandle::open(&c).unwrap();
    let big = "y".repeat(20 * 1024);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..120 {
        let store = store.clone();
        let big = big.clone();
        tasks.spawn(async move {
            let mut w = ticket(&format!("k{i}"), TicketState::Open, &["desk", "mail"]);
            w.body_json = json!({"pad": big});
            (format!("k{i}"), store.save_ticket(w).await)
        });
    }
    let (mut acked, mut full) = (Vec::new(), Vec::new());
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            (k, Ok(t)) => acked.push((k, t)),
            (k, Err(e)) => {
                assert!(e.is_disk_full(), "{e:?}");
                full.push(k)
            }
        }
    }
    assert!(
        !acked.is_empty() && !full.is_empty(),
        "{} / {}",
        acked.len(),
        full.len()
    );
    for (k, t) in &acked {
        let row = store.ticket_by_key(k).await.unwrap().expect("acknowledged");
        assert_eq!(row.id, t.id);
        assert_eq!(store.outbox_for_ticket(t.id).await.unwrap().len(), 2);
    }
    for k in &full {
        assert!(
            store.ticket_by_key(k).await.unwrap().is_none(),
            "{k} failed but is stored"
        );
    }
    assert!(store.stats().last_error.unwrap().contains("no room"));
}

#[test]
fn store_events_left_open_by_a_crash_are_closed_at_start_with_an_honest_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    let start = Utc::now() - CDuration::seconds(5);
    let open = s
        .upsert_event(&event("interruption@t0", start, true))
        .unwrap();
    let ended = s.upsert_event(&event("dip@t1", start, false)).unwrap();
    let last_known = s.event(open).unwrap().unwrap().updated_at;
    drop(s);

    // The service comes back: every event still open is closed, once.
    let restarted = Utc::now() + CDuration::minutes(10);
    let mut s = Store::open(&cfg(&dir)).unwrap();
    assert_eq!(s.close_open_events(restarted).unwrap(), vec![open]);
    let e = s.event(open).unwrap().unwrap();
    assert!(!e.open);
    // The end is the last time the service knew of the event, not the restart: a lower bound.
    assert_eq!(e.end, Some(last_known));
    let d = e.duration_s.unwrap();
    assert!(
        (d - (last_known - start).num_milliseconds() as f64 / 1000.0).abs() < 0.01,
        "{d}"
    );
    assert_eq!(e.json["open"], false);
    assert_eq!(e.json["end_unknown"], true);
    let note = e.json["end_note"].as_str().unwrap();
    assert!(
        note.starts_with("unknown end, service restarted at "),
        "{note}"
    );
    assert!(note.contains(&restarted.format("%Y-%m-%dT%H:%M:%S").to_string()));
    // An event that ended is left as it was.
    let f = s.event(ended).unwrap().unwrap();
    assert_eq!(f.duration_s, Some(0.08));
    assert!(f.json.get("end_note").is_none());
    // Nothing left open: a second start closes nothing.
    assert!(s.close_open_events(restarted).unwrap().is_empty());
}

#[test]
fn store_an_event_stamped_ahead_of_the_wall_clock_never_ends_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&cfg(&dir)).unwrap();
    // An accelerated demo's data clock runs ahead of the wall clock that stamps writes.
    let start = Utc::now() + CDuration::hours(1);
    let id = s.upsert_event(&event("dip@ahead", start, true)).unwrap();
    assert_eq!(s.close_open_events(Utc::now()).unwrap(), vec![id]);
    let e = s.event(id).unwrap().unwrap();
    assert_eq!(
        e.end,
        Some(e.start),
        "ends at its start, the store's precision"
    );
    assert_eq!(e.duration_s, Some(0.0));
    assert!((e.start - start).num_microseconds().unwrap().abs() < 1);
}
