use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::RwLock;

use serde_json::Value;

use super::{read, write};
use crate::kernels::{dot, l2_squared, normalize};
use crate::record::check_name;
use crate::{Hit, Metric, Result, StoreError, VectorIndex, VectorItem};

/// One tenant's vectors of one collection, stored contiguously: vector `i` is
/// `data[i * dims..(i + 1) * dims]`. Deletes swap the last vector in, so there are no
/// holes and no per-vector allocation.
#[derive(Debug, Default)]
struct Slab {
    ids: Vec<String>,
    positions: HashMap<String, usize>,
    data: Vec<f32>,
    metadata: Vec<Value>,
}

#[derive(Debug, Clone, Copy)]
struct Collection {
    dims: usize,
    metric: Metric,
}

/// Exact nearest-neighbour search in memory.
#[derive(Debug, Default)]
pub struct MemoryVectorIndex {
    collections: RwLock<HashMap<String, Collection>>,
    slabs: RwLock<HashMap<(String, String), Slab>>,
}

impl MemoryVectorIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// A collection's dimensions and metric.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn shape(&self, name: &str) -> Result<(usize, Metric)> {
        self.collection(name).map(|c| (c.dims, c.metric))
    }

    fn collection(&self, name: &str) -> Result<Collection> {
        read(&self.collections)
            .get(name)
            .copied()
            .ok_or_else(|| StoreError::UnknownCollection(name.to_owned()))
    }
}

/// Max-heap entry on distance: the worst of the current best k sits on top.
struct Scored(f32, usize);

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

fn contains_all(metadata: &Value, filter: &[(String, Value)]) -> bool {
    filter.iter().all(|(k, v)| metadata.get(k) == Some(v))
}

impl VectorIndex for MemoryVectorIndex {
    async fn create_collection(&self, collection: &str, dims: usize, metric: Metric) -> Result<()> {
        check_name(collection, 40)?;
        if dims == 0 || dims > 16_000 {
            return Err(StoreError::invalid(format!("{dims} dimensions")));
        }
        let mut collections = write(&self.collections);
        match collections.get(collection) {
            Some(c) if c.dims == dims && c.metric == metric => Ok(()),
            Some(c) if c.dims != dims => Err(StoreError::DimensionMismatch {
                collection: collection.to_owned(),
                expected: c.dims,
                got: dims,
            }),
            Some(c) => Err(StoreError::invalid(format!(
                "collection {collection} uses the {} metric",
                c.metric.as_str()
            ))),
            None => {
                collections.insert(collection.to_owned(), Collection { dims, metric });
                Ok(())
            }
        }
    }

    async fn upsert(&self, tenant: &str, collection: &str, items: &[VectorItem]) -> Result<()> {
        let c = self.collection(collection)?;
        for item in items {
            if item.vector.len() != c.dims {
                return Err(StoreError::DimensionMismatch {
                    collection: collection.to_owned(),
                    expected: c.dims,
                    got: item.vector.len(),
                });
            }
        }
        let mut slabs = write(&self.slabs);
        let slab = slabs
            .entry((tenant.to_owned(), collection.to_owned()))
            .or_default();
        for item in items {
            let mut vector = item.vector.clone();
            if c.metric == Metric::Cosine {
                normalize(&mut vector);
            }
            match slab.positions.get(&item.id) {
                Some(&i) => {
                    slab.data[i * c.dims..(i + 1) * c.dims].copy_from_slice(&vector);
                    slab.metadata[i] = item.metadata.clone();
                }
                None => {
                    slab.positions.insert(item.id.clone(), slab.ids.len());
                    slab.ids.push(item.id.clone());
                    slab.data.extend_from_slice(&vector);
                    slab.metadata.push(item.metadata.clone());
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, tenant: &str, collection: &str, ids: &[String]) -> Result<usize> {
        let c = self.collection(collection)?;
        let mut slabs = write(&self.slabs);
        let Some(slab) = slabs.get_mut(&(tenant.to_owned(), collection.to_owned())) else {
            return Ok(0);
        };
        let mut removed = 0;
        for id in ids {
            let Some(i) = slab.positions.remove(id) else {
                continue;
            };
            let last = slab.ids.len() - 1;
            if i != last {
                slab.data
                    .copy_within(last * c.dims..(last + 1) * c.dims, i * c.dims);
                slab.ids.swap(i, last);
                slab.metadata.swap(i, last);
                slab.positions.insert(slab.ids[i].clone(), i);
            }
            slab.data.truncate(last * c.dims);
            slab.ids.pop();
            slab.metadata.pop();
            removed += 1;
        }
        Ok(removed)
    }

    async fn search(
        &self,
        tenant: &str,
        collection: &str,
        query: &[f32],
        k: usize,
        filter: &[(String, Value)],
    ) -> Result<Vec<Hit>> {
        let c = self.collection(collection)?;
        if query.len() != c.dims {
            return Err(StoreError::DimensionMismatch {
                collection: collection.to_owned(),
                expected: c.dims,
                got: query.len(),
            });
        }
        let mut q = query.to_vec();
        if c.metric == Metric::Cosine {
            normalize(&mut q);
        }
        let slabs = read(&self.slabs);
        let Some(slab) = slabs.get(&(tenant.to_owned(), collection.to_owned())) else {
            return Ok(Vec::new());
        };
        if k == 0 {
            return Ok(Vec::new());
        }
        let mut best: BinaryHeap<Scored> = BinaryHeap::with_capacity(k + 1);
        for (i, v) in slab.data.chunks_exact(c.dims).enumerate() {
            if !filter.is_empty() && !contains_all(&slab.metadata[i], filter) {
                continue;
            }
            let d = match c.metric {
                Metric::Cosine => 1.0 - dot(&q, v),
                Metric::InnerProduct => -dot(&q, v),
                Metric::L2 => l2_squared(&q, v),
            };
            if best.len() < k {
                best.push(Scored(d, i));
            } else if best.peek().is_some_and(|top| d < top.0) {
                best.pop();
                best.push(Scored(d, i));
            }
        }
        Ok(best
            .into_sorted_vec()
            .into_iter()
            .map(|Scored(d, i)| Hit {
                id: slab.ids[i].clone(),
                distance: if c.metric == Metric::L2 { d.sqrt() } else { d },
                metadata: slab.metadata[i].clone(),
            })
            .collect())
    }
}
