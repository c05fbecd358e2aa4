//! The queue on Amazon SQS (feature `sqs`).

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};

use crate::{Delivery, Queue, QueueConfig, QueueDepth, Result, StoreError};

/// Where the SQS queue is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqsConfig {
    /// The queue's name; its dead-letter queue is `<name>-dlq`. Both are created if
    /// missing.
    pub queue_name: String,
    /// An endpoint other than AWS's (a local SQS such as moto or ElasticMQ). Otherwise
    /// the usual AWS configuration applies (`AWS_ENDPOINT_URL_SQS` included).
    pub endpoint: Option<String>,
    /// Receives before a message is moved to the dead-letter queue.
    pub queue: QueueConfig,
}

impl SqsConfig {
    /// The queue called `queue_name`, on the endpoint of the AWS configuration.
    pub fn new(queue_name: impl Into<String>) -> Self {
        Self {
            queue_name: queue_name.into(),
            endpoint: None,
            queue: QueueConfig::default(),
        }
    }

    /// Uses this endpoint.
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// Sets the dead-letter threshold.
    pub fn queue(mut self, queue: QueueConfig) -> Self {
        self.queue = queue;
        self
    }
}

/// The [`Queue`] trait on SQS: a redrive policy moves a message to `<name>-dlq` after
/// `max_receives` receives; batches of up to 10; long polling up to 20 s. SQS counts
/// delays and visibility in whole seconds, so shorter durations round up.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dead_url: String,
}

fn sqs_error<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let retryable = match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => {
            matches!(
                s.err().code(),
                Some("ThrottlingException" | "RequestThrottled" | "ServiceUnavailable")
            )
        }
        _ => false,
    };
    let receipt = matches!(&e, SdkError::ServiceError(s) if matches!(s.err().code(), Some(c) if c.contains("ReceiptHandle")));
    if receipt {
        return StoreError::ReceiptExpired;
    }
    StoreError::Backend {
        backend: "sqs",
        retryable,
        source: Box::new(e),
    }
}

/// Whole seconds, rounded up, within SQS's limits.
fn seconds(d: Duration, max: u64) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.min(max) as i32
}

impl SqsQueue {
    /// Connects with the usual AWS configuration (region, credentials, endpoint), and
    /// creates the queue and its dead-letter queue if they do not exist.
    pub async fn connect(config: &SqsConfig) -> Result<Self> {
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let mut builder = aws_sdk_sqs::config::Builder::from(&shared);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Self::create(Client::from_conf(builder.build()), config).await
    }

    /// The queue on a client you already have, for queues that exist (made by your
    /// infrastructure, with the redrive policy to `dead_letter_url` in place): calls
    /// nothing until used.
    pub fn from_client(
        client: Client,
        queue_url: impl Into<String>,
        dead_letter_url: impl Into<String>,
    ) -> Self {
        Self {
            client,
            url: queue_url.into(),
            dead_url: dead_letter_url.into(),
        }
    }

    /// Creates the queue and its dead-letter queue with `client` if they do not exist.
    pub async fn create(client: Client, config: &SqsConfig) -> Result<Self> {
        let dead = client
            .create_queue()
            .queue_name(format!("{}-dlq", config.queue_name))
            .send()
            .await
            .map_err(sqs_error)?;
        let dead_url = dead.queue_url().unwrap_or_default().to_owned();
        let arn = client
            .get_queue_attributes()
            .queue_url(&dead_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sqs_error)?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or_else(|| StoreError::invalid("dead-letter queue has no ARN"))?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": arn,
            "maxReceiveCount": config.queue.max_receives.to_string(),
        });
        let main = client
            .create_queue()
            .queue_name(&config.queue_name)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .send()
            .await
            .map_err(sqs_error)?;
        let url = main.queue_url().unwrap_or_default().to_owned();
        Ok(Self::from_client(client, url, dead_url))
    }

    /// The client it calls SQS with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The dead-letter queue's URL.
    pub fn dead_letter_url(&self) -> &str {
        &self.dead_url
    }

    async fn receive_from(
        &self,
        url: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(seconds(visibility, 43_200))
            .wait_time_seconds(seconds(wait, 20))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(out
            .messages()
            .iter()
            .map(|m| Delivery {
                id: m.message_id().unwrap_or_default().to_owned(),
                receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                body: m.body().unwrap_or_default().to_owned(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            })
            .collect())
    }

    async fn count(&self, url: &str) -> Result<(u64, u64, u64)> {
        let attrs = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(sqs_error)?;
        let get = |name: QueueAttributeName| {
            attrs
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            get(QueueAttributeName::ApproximateNumberOfMessages),
            get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        ))
    }
}

impl Queue for SqsQueue {
    async fn send(&self, body: &str, delay: Duration) -> Result<String> {
        let out = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(seconds(delay, 900))
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(out.message_id().unwrap_or_default().to_owned())
    }

    async fn send_batch(&self, messages: &[(String, Duration)]) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(messages.len());
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, (body, delay))| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .delay_seconds(seconds(*delay, 900))
                        .build()
                        .map_err(|e| StoreError::invalid(e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sqs_error)?;
            if let Some(failed) = out.failed().first() {
                return Err(StoreError::Backend {
                    backend: "sqs",
                    retryable: !failed.sender_fault(),
                    source: format!("batch entry {} failed: {}", failed.id(), failed.code()).into(),
                });
            }
            let mut sent: Vec<(usize, String)> = out
                .successful()
                .iter()
                .map(|s| (s.id().parse().unwrap_or(0), s.message_id().to_owned()))
                .collect();
            sent.sort();
            ids.extend(sent.into_iter().map(|(_, id)| id));
        }
        Ok(ids)
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        self.receive_from(&self.url, max, visibility, wait).await
    }

    async fn ack(&self, receipt: &str) -> Result<()> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(visibility, 43_200))
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }

    async fn nack(&self, receipt: &str, retry_after: Duration) -> Result<()> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds(retry_after, 43_200))
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }

    async fn depth(&self) -> Result<QueueDepth> {
        let (available, in_flight, delayed) = self.count(&self.url).await?;
        let (dead, dead_in_flight, _) = self.count(&self.dead_url).await?;
        Ok(QueueDepth {
            available,
            in_flight,
            delayed,
            dead: dead + dead_in_flight,
        })
    }

    async fn take_dead(&self, max: usize) -> Result<Vec<Delivery>> {
        let got = self
            .receive_from(&self.dead_url, max, Duration::from_secs(30), Duration::ZERO)
            .await?;
        for d in &got {
            self.client
                .delete_message()
                .queue_url(&self.dead_url)
                .receipt_handle(&d.receipt)
                .send()
                .await
                .map_err(sqs_error)?;
        }
        Ok(got
            .into_iter()
            .map(|d| Delivery {
                receipt: String::new(),
                ..d
            })
            .collect())
    }
}
