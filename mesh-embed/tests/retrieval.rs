//! The offline embedder's retrieval quality on the labeled set in
//! `tests/data/retrieval.json` (30 documents; 30 queries that share words with their document, 10 paraphrases that do not), reported as recall@1 and
//! recall@5; the figures are in the crate README.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_embed::{Embedder, HashEmbedder, Role};
use serde_json::Value;

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// recall@1 and recall@5 — the share of queries with a relevant document first, and
/// among the top five — over the queries that are (or are not) paraphrases.
async fn recall(embedder: &HashEmbedder, paraphrases: bool) -> (f64, f64) {
    let set: Value = serde_json::from_str(include_str!("data/retrieval.json")).unwrap();
    let docs = set["documents"].as_array().unwrap();
    let ids: Vec<&str> = docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
    let texts: Vec<String> = docs
        .iter()
        .map(|d| d["text"].as_str().unwrap().to_owned())
        .collect();
    let doc_vectors = embedder
        .embed(&texts, Role::Document)
        .await
        .unwrap()
        .vectors;
    let queries: Vec<&Value> = set["queries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["paraphrase"].as_bool().unwrap_or(false) == paraphrases)
        .collect();
    let (mut at1, mut at5) = (0, 0);
    for q in &queries {
        let qv = embedder
            .embed(&[q["text"].as_str().unwrap().to_owned()], Role::Query)
            .await
            .unwrap()
            .vectors
            .remove(0);
        let mut ranked: Vec<(f32, &str)> = doc_vectors
            .iter()
            .zip(&ids)
            .map(|(d, id)| (cosine(&qv, d), *id))
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        let relevant: Vec<&str> = q["relevant"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        at1 += usize::from(relevant.contains(&ranked[0].1));
        at5 += usize::from(ranked[..5].iter().any(|(_, id)| relevant.contains(id)));
    }
    (
        at1 as f64 / queries.len() as f64,
        at5 as f64 / queries.len() as f64,
    )
}

#[tokio::test]
async fn recall_on_the_labeled_set() {
    for dims in [256, 384, 1024] {
        let embedder = HashEmbedder::new(dims);
        let (r1, r5) = recall(&embedder, false).await;
        let (p1, p5) = recall(&embedder, true).await;
        println!(
            "mesh-hash-v1-{dims}: shared words recall@1 {r1:.3} recall@5 {r5:.3}; paraphrases recall@1 {p1:.3} recall@5 {p5:.3}"
        );
        // Regression floors, a little under the measured figures (see the README).
        assert!(
            r1 >= 0.9 && r5 >= 0.95,
            "shared-word queries at {dims} dimensions: {r1} / {r5}"
        );
        assert!(p5 >= 0.2, "paraphrases at {dims} dimensions: {p5}");
    }
}
