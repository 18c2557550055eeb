//! The backlog's behaviour: order, bounds, eviction (readings, never events), rejects.

use super::*;

fn body(n: usize, tag: &str) -> Vec<u8> {
    // Poorly compressible bodies, so that sizes are predictable enough to test the bound.
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "m,t={tag} v={} {}\n",
            (i as u64).wrapping_mul(2654435761) % 1_000_003,
            i
        ));
    }
    s.into_bytes()
}

fn open(dir: &tempfile::TempDir, max: u64) -> Backlog {
    Backlog::open(&dir.path().join("b.sqlite"), max).unwrap()
}

#[test]
fn stores_oldest_first_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir, 1 << 30);
    let (a, _) = b.push(Class::Readings, 3, &body(3, "a"), 1).unwrap();
    let (e, _) = b.push(Class::Events, 1, &body(1, "e"), 2).unwrap();
    assert_eq!(b.depth().points, 4);
    drop(b);
    let mut b = open(&dir, 1 << 30);
    assert_eq!(b.depth().batches, 2);
    assert_eq!(b.depth().event_points, 1);
    let got = b.oldest(&[], 100, 10).unwrap();
    assert_eq!(
        got.iter().map(|s| Some(s.id)).collect::<Vec<_>>(),
        vec![a, e]
    );
    assert_eq!(got[0].body, body(3, "a"));
    // Skipping a batch on its way; limits on points.
    let got = b.oldest(&[a.unwrap()], 100, 10).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].class, Class::Events);
    assert_eq!(b.oldest(&[], 2, 10).unwrap().len(), 1);
    b.remove(&[a.unwrap()]).unwrap();
    assert_eq!(b.depth().points, 1);
}

#[test]
fn bound_evicts_oldest_readings_first_and_never_events() {
    let dir = tempfile::tempdir().unwrap();
    let one = compress(&body(200, "x")).unwrap().len() as u64;
    // Room for about four batches.
    let mut b = open(&dir, one * 4 + one / 2);
    let (r1, _) = b.push(Class::Readings, 200, &body(200, "r1"), 1).unwrap();
    let (e1, _) = b.push(Class::Events, 200, &body(200, "e1"), 2).unwrap();
    let (i1, _) = b.push(Class::Interval, 200, &body(200, "i1"), 3).unwrap();
    let (r2, _) = b.push(Class::Readings, 200, &body(200, "r2"), 4).unwrap();
    // A fifth: the oldest readings go.
    let (r3, ev) = b.push(Class::Readings, 200, &body(200, "r3"), 5).unwrap();
    assert_eq!(ev.points_by_class[0], 200);
    assert!(!ev.dropped_new);
    let ids: Vec<_> = b
        .oldest(&[], 10_000, 100)
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        ids,
        vec![e1.unwrap(), i1.unwrap(), r2.unwrap(), r3.unwrap()]
    );
    assert!(r1.is_some());
    // Events push out readings, then (none left) interval data, then go over the bound.
    for n in 0..3 {
        let (id, ev) = b
            .push(Class::Events, 200, &body(200, &format!("e{n}")), 6)
            .unwrap();
        assert!(id.is_some());
        if n == 2 {
            assert_eq!(
                ev.points_by_class[2], 200,
                "interval data goes after readings"
            );
        }
    }
    let (_, ev) = b.push(Class::Events, 200, &body(200, "e9"), 7).unwrap();
    assert!(ev.over_bound);
    assert_eq!(b.depth().event_points, 1000);
    let classes: Vec<_> = b
        .oldest(&[], 10_000, 100)
        .unwrap()
        .iter()
        .map(|s| s.class)
        .collect();
    assert!(classes.iter().all(|c| *c == Class::Events));
    // Readings cannot push out events: the newcomer is dropped and counted.
    let (id, ev) = b.push(Class::Readings, 200, &body(200, "late"), 8).unwrap();
    assert!(id.is_none());
    assert!(ev.dropped_new);
    assert_eq!(ev.points, 200);
    assert_eq!(b.depth().points, 1000);
}

#[test]
fn a_batch_stored_late_drains_in_the_order_it_was_sealed() {
    // A live batch fails after a newer one was already stored: it must still come out first.
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir, 1 << 30);
    let first = b.reserve();
    let second = b.reserve();
    b.push_seq(second, Class::Readings, 2, &body(2, "second"), 1)
        .unwrap();
    b.push_seq(first, Class::Readings, 2, &body(2, "first"), 2)
        .unwrap();
    let got = b.oldest(&[], 100, 10).unwrap();
    assert_eq!(
        got.iter().map(|s| s.body.clone()).collect::<Vec<_>>(),
        vec![body(2, "first"), body(2, "second")]
    );
    // Numbers are never reused, even after the rows are gone and the file reopened.
    b.remove(&[first, second]).unwrap();
    drop(b);
    let mut b = open(&dir, 1 << 30);
    let (third, _) = b.push(Class::Readings, 1, &body(1, "third"), 3).unwrap();
    assert!(third.unwrap() > second);
}

#[test]
fn rejected_batches_are_kept_with_the_message_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = open(&dir, 1 << 30);
    let (id, _) = b.push(Class::Readings, 2, &body(2, "bad"), 1).unwrap();
    let deleted = b
        .reject(
            &Refused {
                class: Class::Readings,
                points: 2,
                body: &body(2, "bad"),
                status: 400,
                message: "field type conflict",
            },
            &[id.unwrap()],
            2,
        )
        .unwrap();
    assert_eq!(deleted, 0);
    assert!(b.is_empty());
    assert_eq!(b.rejected_rows().unwrap(), 1);
    assert_eq!(
        b.last_rejection().unwrap(),
        Some((400, "field type conflict".to_string()))
    );
}
