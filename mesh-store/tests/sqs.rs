//! The queue conformance suite against SQS (a local endpoint in the test command).
//! Needs `MESH_TEST_SQS_ENDPOINT` (scripts/test.sh sets it, with dummy credentials).

#![cfg(feature = "sqs")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;

use std::time::Duration;

use conformance::queue::Timing;
use conformance::{service, unique};
use mesh_store::{QueueConfig, SqsConfig, SqsQueue};

/// SQS counts in whole seconds; a deleted receipt is not reported stale.
const TIMING: Timing = Timing {
    unit: Duration::from_secs(1),
    strict_receipts: false,
};

async fn queue(max_receives: u32) -> Option<SqsQueue> {
    let endpoint = service("MESH_TEST_SQS_ENDPOINT")?;
    let config = SqsConfig::new(unique("mesh"))
        .endpoint(endpoint)
        .queue(QueueConfig::max_receives(max_receives));
    Some(
        SqsQueue::connect(&config)
            .await
            .expect("create the test queue"),
    )
}

macro_rules! sqs_test {
    ($name:ident, $suite:ident, $max:expr) => {
        #[tokio::test]
        async fn $name() {
            if let Some(q) = queue($max).await {
                conformance::queue::$suite(&q, TIMING).await;
            }
        }
    };
}

sqs_test!(send_receive_ack, send_receive_ack, 5);
sqs_test!(unacked_messages_come_back, unacked_messages_come_back, 5);
sqs_test!(nack, nack_returns_a_message_early, 5);
sqs_test!(extend, extend_keeps_a_message_hidden, 5);
sqs_test!(
    delays_and_long_polling,
    delayed_messages_and_long_polling,
    5
);
sqs_test!(dead_letters, dead_letters_after_max_receives, 2);
sqs_test!(batches, batches, 5);

/// A queue built on an existing client and URLs calls nothing to exist (no
/// CreateQueue) and shares the messages of the queue it names.
#[tokio::test]
async fn a_queue_from_an_existing_client_and_urls() {
    use mesh_store::Queue;
    let Some(created) = queue(5).await else {
        return;
    };
    let existing = SqsQueue::from_client(
        created.client().clone(),
        created.url(),
        created.dead_letter_url(),
    );
    existing.send("hello", Duration::ZERO).await.unwrap();
    let got = created
        .receive(1, Duration::from_secs(5), Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(got[0].body, "hello");
    created.ack(&got[0].receipt).await.unwrap();
    // A URL nobody created is an error on first use, not before.
    let missing = SqsQueue::from_client(
        created.client().clone(),
        format!("{}-nobody", created.url()),
        created.dead_letter_url(),
    );
    assert!(missing.send("x", Duration::ZERO).await.is_err());
}
