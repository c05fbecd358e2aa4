use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mesh_store::{Queue, StoreError};

/// How a backend is tested: `unit` is the shortest delay it honours (SQS counts whole
/// seconds), `strict_receipts` whether a stale receipt is refused.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub unit: Duration,
    pub strict_receipts: bool,
}

pub async fn send_receive_ack<Q: Queue>(q: &Q, t: Timing) {
    let id = q.send("hello", Duration::ZERO).await.unwrap();
    let got = q.receive(10, t.unit * 20, t.unit).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (
            got[0].id.as_str(),
            got[0].body.as_str(),
            got[0].receive_count
        ),
        (id.as_str(), "hello", 1)
    );
    assert_eq!(q.depth().await.unwrap().in_flight, 1);
    q.ack(&got[0].receipt).await.unwrap();
    assert!(
        q.receive(10, t.unit, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    let depth = q.depth().await.unwrap();
    assert_eq!((depth.available, depth.in_flight, depth.delayed), (0, 0, 0));
    if t.strict_receipts {
        assert!(matches!(
            q.ack(&got[0].receipt).await,
            Err(StoreError::ReceiptExpired)
        ));
    }
}

pub async fn unacked_messages_come_back<Q: Queue>(q: &Q, t: Timing) {
    q.send("work", Duration::ZERO).await.unwrap();
    let first = q.receive(1, t.unit * 2, t.unit).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        q.receive(1, t.unit * 2, Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "hidden while in flight"
    );
    tokio::time::sleep(t.unit * 3).await;
    let second = q.receive(1, t.unit * 20, t.unit * 2).await.unwrap();
    assert_eq!(second.len(), 1, "the unacked message came back");
    assert_eq!(
        (
            second[0].id.as_str(),
            second[0].body.as_str(),
            second[0].receive_count
        ),
        (first[0].id.as_str(), "work", 2)
    );
    if t.strict_receipts {
        assert!(
            matches!(
                q.ack(&first[0].receipt).await,
                Err(StoreError::ReceiptExpired)
            ),
            "the old receipt is stale"
        );
    }
    q.ack(&second[0].receipt).await.unwrap();
}

pub async fn nack_returns_a_message_early<Q: Queue>(q: &Q, t: Timing) {
    q.send("retry me", Duration::ZERO).await.unwrap();
    let first = q.receive(1, t.unit * 100, t.unit).await.unwrap();
    q.nack(&first[0].receipt, Duration::ZERO).await.unwrap();
    let again = q.receive(1, t.unit * 20, t.unit * 3).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
    q.ack(&again[0].receipt).await.unwrap();
}

/// A lease: extended before it lapses, a message stays hidden past its first
/// visibility timeout, and its receipt stays good for the ack.
pub async fn extend_keeps_a_message_hidden<Q: Queue>(q: &Q, t: Timing) {
    q.send("long job", Duration::ZERO).await.unwrap();
    let got = q.receive(1, t.unit * 2, Duration::ZERO).await.unwrap();
    assert_eq!(got.len(), 1);
    for _ in 0..3 {
        tokio::time::sleep(t.unit).await;
        q.extend(&got[0].receipt, t.unit * 2).await.unwrap();
    }
    // Three units have passed, one more than the first visibility timeout.
    let again = q.receive(1, t.unit * 2, Duration::ZERO).await.unwrap();
    assert!(again.is_empty(), "redelivered while leased: {again:?}");
    q.ack(&got[0].receipt).await.unwrap();
    if t.strict_receipts {
        assert!(matches!(
            q.extend(&got[0].receipt, t.unit).await,
            Err(mesh_store::StoreError::ReceiptExpired)
        ));
    }
}

pub async fn delayed_messages_and_long_polling<Q: Queue>(q: &Q, t: Timing) {
    let started = Instant::now();
    q.send("later", t.unit * 2).await.unwrap();
    assert!(
        q.receive(1, t.unit * 20, Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "not visible yet"
    );
    assert_eq!(q.depth().await.unwrap().delayed, 1);
    let got = q.receive(1, t.unit * 20, t.unit * 8).await.unwrap();
    assert_eq!(got.len(), 1, "long polling waited for it");
    assert!(
        started.elapsed() >= t.unit * 3 / 2,
        "not before its delay: {:?}",
        started.elapsed()
    );
    q.ack(&got[0].receipt).await.unwrap();
}

/// `q` must have been made with `max_receives = 2`.
pub async fn dead_letters_after_max_receives<Q: Queue>(q: &Q, t: Timing) {
    q.send("poison", Duration::ZERO).await.unwrap();
    for n in 1..=2 {
        let got = q.receive(1, t.unit, t.unit * 3).await.unwrap();
        assert_eq!(got.len(), 1, "receive {n}");
        assert_eq!(got[0].receive_count, n);
        tokio::time::sleep(t.unit * 2).await; // not acked: the visibility lapses
    }
    assert!(
        q.receive(1, t.unit, t.unit).await.unwrap().is_empty(),
        "a third receive dead-letters it instead"
    );
    let mut dead = Vec::new();
    for _ in 0..10 {
        dead.extend(q.take_dead(10).await.unwrap());
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(t.unit / 2).await;
    }
    assert_eq!(
        dead.iter().map(|d| d.body.as_str()).collect::<Vec<_>>(),
        ["poison"]
    );
}

pub async fn batches<Q: Queue>(q: &Q, t: Timing) {
    let bodies: Vec<(String, Duration)> =
        (0..25).map(|i| (format!("m{i}"), Duration::ZERO)).collect();
    let ids = q.send_batch(&bodies).await.unwrap();
    assert_eq!(ids.len(), 25);
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 25);
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        for d in q.receive(10, t.unit * 30, t.unit).await.unwrap() {
            assert!(
                seen.insert(d.body.clone()),
                "{} delivered twice within its visibility",
                d.body
            );
            q.ack(&d.receipt).await.unwrap();
        }
        if seen.len() == 25 {
            break;
        }
    }
    let want: BTreeSet<String> = bodies.into_iter().map(|(b, _)| b).collect();
    assert_eq!(seen, want);
}

/// `ack_batch` acks the current receipts together and reports each one as `ack` would:
/// a receipt given twice or already acked is expired; a malformed one fails the batch,
/// acking nothing.
pub async fn ack_batch_acks_together<Q: Queue>(q: &Q, t: Timing) {
    let bodies: Vec<(String, Duration)> =
        (0..5).map(|i| (format!("a{i}"), Duration::ZERO)).collect();
    q.send_batch(&bodies).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 5 {
        got.extend(q.receive(10, t.unit * 30, t.unit).await.unwrap());
    }
    let receipts: Vec<String> = got.iter().map(|d| d.receipt.clone()).collect();
    let malformed = vec![receipts[0].clone(), "not a receipt".to_owned()];
    assert!(q.ack_batch(&malformed).await.is_err());
    assert_eq!(
        q.depth().await.unwrap().in_flight,
        5,
        "a failed batch acks nothing"
    );
    let first = vec![
        receipts[0].clone(),
        receipts[1].clone(),
        receipts[1].clone(),
    ];
    let acked = q.ack_batch(&first).await.unwrap();
    assert!(acked[0].is_ok() && acked[1].is_ok(), "{acked:?}");
    if t.strict_receipts {
        assert!(
            matches!(acked[2], Err(StoreError::ReceiptExpired)),
            "{acked:?}"
        );
        let again = q.ack_batch(&receipts[..1]).await.unwrap();
        assert!(
            matches!(again[0], Err(StoreError::ReceiptExpired)),
            "{again:?}"
        );
    }
    let rest = q.ack_batch(&receipts[2..]).await.unwrap();
    assert!(rest.iter().all(Result::is_ok), "{rest:?}");
    let depth = q.depth().await.unwrap();
    assert_eq!((depth.available, depth.in_flight), (0, 0));
}
