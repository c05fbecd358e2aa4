//! The offline embedder: texts per second for 200-word texts, on one core.
//!
//! `cargo bench -p mesh-benches --bench embed`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mesh_embed::HashEmbedder;

const WORDS: &[&str] = &[
    "agents",
    "route",
    "tasks",
    "through",
    "the",
    "mesh",
    "which",
    "tracks",
    "their",
    "load",
    "and",
    "cost",
    "while",
    "workers",
    "index",
    "documents",
    "into",
    "vector",
    "collections",
    "for",
    "semantic",
    "search",
    "across",
    "tenants",
    "with",
    "retries",
    "backoff",
    "heartbeats",
    "delegation",
    "pipelines",
    "consensus",
    "embedding",
    "models",
    "bedrock",
];

/// 200 words of plausible text, different for each `seed`.
fn text(seed: usize) -> String {
    (0..200)
        .map(|i| WORDS[(i * 7 + seed * 13 + i * i) % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

fn embed(c: &mut Criterion) {
    let texts: Vec<String> = (0..64).map(text).collect();
    let mut group = c.benchmark_group("hash_embedder_200_words");
    group.throughput(Throughput::Elements(texts.len() as u64));
    for dims in [384usize, 1024] {
        let embedder = HashEmbedder::new(dims);
        group.bench_with_input(BenchmarkId::from_parameter(dims), &texts, |b, texts| {
            b.iter(|| {
                for t in texts {
                    black_box(embedder.embed_one(black_box(t)));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, embed);
criterion_main!(benches);
