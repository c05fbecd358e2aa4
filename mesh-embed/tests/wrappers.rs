//! Every wrapper under real concurrency: batching (few calls for many callers), the
//! cache (hits skip the provider), retry on throttling, failover with a breaker, and
//! cost totals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mesh_embed::{
    Batcher, BoxFuture, Cached, CostMeter, EmbedError, Embedder, Embeddings, Failover,
    HashEmbedder, ModelInfo, Retry, Role,
};

/// A provider that counts its calls and the largest batch it saw, and throttles its
/// first `throttle_first` calls.
struct Probe {
    inner: HashEmbedder,
    info: ModelInfo,
    calls: AtomicUsize,
    largest: AtomicUsize,
    throttle_first: usize,
}

impl Probe {
    fn new(id: &str, max_batch: usize, throttle_first: usize) -> Self {
        let inner = HashEmbedder::new(64);
        let mut info = inner.model().clone();
        info.id = id.to_owned();
        info.max_batch = max_batch;
        info.price_per_million_tokens = 0.1;
        Self {
            inner,
            info,
            calls: AtomicUsize::new(0),
            largest: AtomicUsize::new(0),
            throttle_first,
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Embedder for Probe {
    fn model(&self) -> &ModelInfo {
        &self.info
    }

    fn embed<'a>(
        &'a self,
        texts: &'a [String],
        role: Role,
    ) -> BoxFuture<'a, Result<Embeddings, EmbedError>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            self.largest.fetch_max(texts.len(), Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await; // a network round trip
            if n < self.throttle_first {
                return Err(EmbedError::Throttled {
                    provider: self.info.id.clone(),
                    retry_after: None,
                });
            }
            if texts.len() > self.info.max_batch {
                return Err(EmbedError::BatchTooLarge {
                    count: texts.len(),
                    max: self.info.max_batch,
                });
            }
            let mut out = self.inner.embed(texts, role).await?;
            out.model = self.info.id.clone();
            Ok(out)
        })
    }
}

fn text(i: usize) -> String {
    format!("document number {i} about agents and routing")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batcher_turns_many_concurrent_callers_into_few_batches() {
    let probe = Arc::new(Probe::new("probe", 32, 0));
    let batcher = Arc::new(Batcher::new(probe.clone(), Duration::from_millis(5)));
    let mut handles = Vec::new();
    for i in 0..200 {
        let batcher = batcher.clone();
        handles.push(tokio::spawn(async move {
            (i, batcher.embed(&[text(i)], Role::Document).await.unwrap())
        }));
    }
    let direct = HashEmbedder::new(64);
    for h in handles {
        let (i, out) = h.await.unwrap();
        assert_eq!(
            out.vectors[0],
            direct.embed_one(&text(i)),
            "each caller gets its own vector"
        );
    }
    let calls = probe.calls();
    assert!(
        calls <= 20,
        "200 concurrent requests became {calls} provider calls"
    );
    assert!(
        probe.largest.load(Ordering::SeqCst) <= 32,
        "batches respect the model's limit"
    );
}

#[tokio::test]
async fn the_cache_answers_repeats_without_the_provider() {
    let probe = Arc::new(Probe::new("probe", 100, 0));
    let cached = Cached::new(probe.clone(), 50);
    let texts: Vec<String> = (0..10).map(text).collect();
    let first = cached.embed(&texts, Role::Document).await.unwrap();
    let second = cached.embed(&texts, Role::Document).await.unwrap();
    assert_eq!(first.vectors, second.vectors);
    assert_eq!((probe.calls(), cached.hits(), cached.misses()), (1, 10, 10));
    // Role is part of the key; a new text goes to the provider alone.
    let mixed = vec![text(1), text(99)];
    cached.embed(&mixed, Role::Document).await.unwrap();
    assert_eq!((probe.calls(), cached.hits(), cached.misses()), (2, 11, 11));
    cached.embed(&mixed, Role::Query).await.unwrap();
    assert_eq!(probe.calls(), 3);
    // Bounded: 60 more distinct texts evict the first ones.
    let many: Vec<String> = (100..160).map(text).collect();
    cached.embed(&many, Role::Document).await.unwrap();
    cached.embed(&texts[..1], Role::Document).await.unwrap();
    assert_eq!(
        probe.calls(),
        5,
        "the evicted text had to be embedded again"
    );
}

#[tokio::test]
async fn retry_rides_out_throttling() {
    let probe = Arc::new(Probe::new("probe", 100, 2));
    let retry = Retry::new(
        probe.clone(),
        4,
        Duration::from_millis(5),
        Duration::from_millis(50),
    );
    let out = retry.embed(&[text(1)], Role::Document).await.unwrap();
    assert_eq!((out.vectors.len(), probe.calls()), (1, 3));
    let stubborn = Arc::new(Probe::new("stubborn", 100, 100));
    let err = Retry::new(
        stubborn.clone(),
        3,
        Duration::from_millis(1),
        Duration::from_millis(5),
    )
    .embed(&[text(1)], Role::Document)
    .await
    .unwrap_err();
    assert!(err.is_throttling());
    assert_eq!(stubborn.calls(), 3);
}

#[tokio::test]
async fn failover_moves_on_and_its_breaker_skips_a_throttling_provider() {
    let primary = Arc::new(Probe::new("primary", 100, 1000));
    let secondary = Arc::new(Probe::new("secondary", 100, 0));
    let chain = Failover::new(
        vec![Box::new(primary.clone()), Box::new(secondary.clone())],
        2,
        Duration::from_secs(60),
    )
    .unwrap();
    for _ in 0..5 {
        let out = chain.embed(&[text(1)], Role::Document).await.unwrap();
        assert_eq!(
            out.model, "secondary",
            "the answer names the model that made it"
        );
    }
    assert_eq!(
        primary.calls(),
        2,
        "after two failures the primary's breaker is open"
    );
    assert!(chain.is_open(0));
    assert_eq!(secondary.calls(), 5);
    // Everything down: a typed error with the last failure.
    let down = Failover::new(
        vec![
            Box::new(Probe::new("a", 10, 99)),
            Box::new(Probe::new("b", 10, 99)),
        ],
        5,
        Duration::from_secs(1),
    )
    .unwrap();
    match down.embed(&[text(1)], Role::Document).await.unwrap_err() {
        EmbedError::AllProvidersFailed { providers: 2, last } => assert!(last.is_throttling()),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn the_cost_meter_totals_tokens_and_dollars_per_tenant_and_model() {
    let meter = CostMeter::new(HashMap::from([("probe".to_owned(), 2.0)]));
    let acme = meter.meter("acme", Probe::new("probe", 100, 0));
    let globex = meter.meter("globex", Probe::new("probe", 100, 0));
    let texts: Vec<String> = (0..10).map(text).collect();
    let a = acme.embed(&texts, Role::Document).await.unwrap();
    acme.embed(&texts[..2], Role::Query).await.unwrap();
    let g = globex.embed(&texts[..5], Role::Document).await.unwrap();
    let usage = meter.usage();
    let acme_usage = usage[&("acme".to_owned(), "probe".to_owned())];
    assert_eq!((acme_usage.requests, acme_usage.texts), (2, 12));
    assert!(acme_usage.tokens > a.tokens);
    assert!((acme_usage.dollars - acme_usage.tokens as f64 * 2.0 / 1e6).abs() < 1e-12);
    assert!((meter.dollars("globex") - g.tokens as f64 * 2.0 / 1e6).abs() < 1e-12);

    // A chat model's requests, at its input and output prices, beside the embeddings.
    let chat = mesh_embed::ChatModelInfo::new("claude", 3.0, 15.0);
    let spent = meter.record_chat("acme", &chat, mesh_embed::TokenUsage::new(1000, 100));
    meter.record_chat("acme", &chat, mesh_embed::TokenUsage::new(500, 50));
    assert!((spent - 0.0045).abs() < 1e-12, "{spent}");
    let claude = meter.usage()[&("acme".to_owned(), "claude".to_owned())];
    assert_eq!(
        (claude.requests, claude.tokens, claude.output_tokens),
        (2, 1500, 150)
    );
    assert!((claude.dollars - 0.00675).abs() < 1e-12);
    let total = meter.dollars("acme");
    assert!((total - acme_usage.dollars - 0.00675).abs() < 1e-12);
}

#[tokio::test]
async fn wrappers_compose() {
    let probe = Arc::new(Probe::new("probe", 16, 1));
    let meter = CostMeter::default();
    let stack = meter.meter(
        "t",
        Cached::new(
            Retry::new(
                probe.clone(),
                3,
                Duration::from_millis(1),
                Duration::from_millis(5),
            ),
            100,
        ),
    );
    let texts: Vec<String> = (0..4).map(text).collect();
    stack.embed(&texts, Role::Document).await.unwrap();
    stack.embed(&texts, Role::Document).await.unwrap();
    assert_eq!(
        probe.calls(),
        2,
        "one throttled call, one success, then the cache"
    );
    assert_eq!(
        meter.usage()[&("t".to_owned(), "probe".to_owned())].requests,
        2
    );
}
