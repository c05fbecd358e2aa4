use mesh_store::{Metric, StoreError, VectorIndex, VectorItem};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::unique;

const DIMS: usize = 16;

fn random_vector(rng: &mut SmallRng) -> Vec<f32> {
    (0..DIMS).map(|_| rng.random_range(-1.0..1.0)).collect()
}

fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    match metric {
        Metric::Cosine => 1.0 - dot / (norm(a) * norm(b)),
        Metric::InnerProduct => -dot,
        Metric::L2 => a
            .iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum::<f64>()
            .sqrt(),
        _ => unreachable!(),
    }
}

/// The k nearest by brute force in f64.
fn reference(
    metric: Metric,
    items: &[VectorItem],
    query: &[f32],
    k: usize,
    group: Option<i64>,
) -> Vec<(String, f64)> {
    let mut all: Vec<(String, f64)> = items
        .iter()
        .filter(|i| group.is_none_or(|g| i.metadata["group"] == json!(g)))
        .map(|i| (i.id.clone(), distance(metric, &i.vector, query)))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1));
    all.truncate(k);
    all
}

fn collection(metric: Metric) -> String {
    format!("conformance_{}_{DIMS}", metric.as_str())
}

pub async fn search_matches_brute_force<V: VectorIndex>(index: &V) {
    let mut rng = SmallRng::seed_from_u64(7);
    for metric in [Metric::Cosine, Metric::InnerProduct, Metric::L2] {
        let name = collection(metric);
        index.create_collection(&name, DIMS, metric).await.unwrap();
        index.create_collection(&name, DIMS, metric).await.unwrap(); // idempotent
        let tenant = unique("t");
        let items: Vec<VectorItem> = (0..300)
            .map(|i| {
                VectorItem::new(
                    format!("v{i}"),
                    random_vector(&mut rng),
                    json!({"group": i % 3, "n": i}),
                )
            })
            .collect();
        index.upsert(&tenant, &name, &items).await.unwrap();
        for _ in 0..5 {
            let q = random_vector(&mut rng);
            for group in [None, Some(1)] {
                let filter: Vec<(String, serde_json::Value)> = group
                    .map(|g| ("group".to_owned(), json!(g)))
                    .into_iter()
                    .collect();
                let hits = index.search(&tenant, &name, &q, 10, &filter).await.unwrap();
                let expected = reference(metric, &items, &q, 10, group);
                let got: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
                let want: Vec<&str> = expected.iter().map(|(id, _)| id.as_str()).collect();
                assert_eq!(got, want, "{metric:?} filter {group:?}");
                for (h, (_, d)) in hits.iter().zip(&expected) {
                    assert!(
                        (f64::from(h.distance) - d).abs() < 1e-3,
                        "{metric:?}: {} vs {d}",
                        h.distance
                    );
                    if let Some(g) = group {
                        assert_eq!(h.metadata["group"], json!(g));
                    }
                }
            }
        }
    }
}

pub async fn upsert_replaces_and_delete_removes<V: VectorIndex>(index: &V) {
    let name = collection(Metric::L2);
    index
        .create_collection(&name, DIMS, Metric::L2)
        .await
        .unwrap();
    let tenant = unique("t");
    let mut a = vec![0.0f32; DIMS];
    a[0] = 1.0;
    let mut b = vec![0.0f32; DIMS];
    b[1] = 1.0;
    index
        .upsert(
            &tenant,
            &name,
            &[VectorItem::new("x", a.clone(), json!({"v": 1}))],
        )
        .await
        .unwrap();
    index
        .upsert(
            &tenant,
            &name,
            &[
                VectorItem::new("x", b.clone(), json!({"v": 2})),
                VectorItem::new("y", a.clone(), json!({})),
            ],
        )
        .await
        .unwrap();
    let hits = index.search(&tenant, &name, &b, 5, &[]).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(
        (hits[0].id.as_str(), &hits[0].metadata),
        ("x", &json!({"v": 2}))
    );
    assert!(hits[0].distance.abs() < 1e-6);
    assert_eq!(
        index
            .delete(&tenant, &name, &["x".into(), "nope".into()])
            .await
            .unwrap(),
        1
    );
    let hits = index.search(&tenant, &name, &b, 5, &[]).await.unwrap();
    assert_eq!(
        hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["y"]
    );
}

pub async fn errors_and_isolation<V: VectorIndex>(index: &V) {
    let name = collection(Metric::Cosine);
    index
        .create_collection(&name, DIMS, Metric::Cosine)
        .await
        .unwrap();
    assert!(matches!(
        index
            .create_collection(&name, DIMS + 1, Metric::Cosine)
            .await,
        Err(StoreError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        index.create_collection(&name, DIMS, Metric::L2).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        index.create_collection("Bad Name", 4, Metric::L2).await,
        Err(StoreError::Invalid(_))
    ));
    let (a, b) = (unique("a"), unique("b"));
    let short = vec![1.0f32; DIMS - 1];
    assert!(matches!(
        index.upsert(&a, &name, &[VectorItem::new("s", short.clone(), json!({}))]).await,
        Err(StoreError::DimensionMismatch { expected: DIMS, got, .. }) if got == DIMS - 1
    ));
    assert!(matches!(
        index.search(&a, &name, &short, 3, &[]).await,
        Err(StoreError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        index.search(&a, "no_such_collection", &short, 3, &[]).await,
        Err(StoreError::UnknownCollection(_))
    ));
    index
        .upsert(
            &a,
            &name,
            &[VectorItem::new("secret", vec![1.0; DIMS], json!({}))],
        )
        .await
        .unwrap();
    assert!(
        index
            .search(&b, &name, &[1.0; DIMS], 5, &[])
            .await
            .unwrap()
            .is_empty(),
        "tenant B sees nothing of A's"
    );
    assert_eq!(
        index.delete(&b, &name, &["secret".into()]).await.unwrap(),
        0
    );
    assert_eq!(
        index
            .search(&a, &name, &[1.0; DIMS], 5, &[])
            .await
            .unwrap()
            .len(),
        1
    );
}
