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
sqs_test!(
    delays_and_long_polling,
    delayed_messages_and_long_polling,
    5
);
sqs_test!(dead_letters, dead_letters_after_max_receives, 2);
sqs_test!(batches, batches, 5);
