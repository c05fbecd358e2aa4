//! Records, queries and pages.

use std::cmp::Ordering;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::{Result, StoreError};

/// A type a [`Repository`](crate::Repository) stores: serde, with an id.
pub trait Record: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// The collection's name: lowercase ASCII letters, digits and `_`, at most 40.
    const COLLECTION: &'static str;
    /// Top-level fields that queries filter or sort on; backends index them.
    const INDEXED: &'static [&'static str] = &[];
    /// The record's id.
    fn id(&self) -> Uuid;
}

/// A stored record with its version (for optimistic concurrency) and timestamps.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Versioned<T> {
    /// The record.
    pub record: T,
    /// Starts at 1; every update adds 1.
    pub version: u64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

impl<T> Versioned<T> {
    pub(crate) fn new(
        record: T,
        version: u64,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    ) -> Self {
        Self {
            record,
            version,
            created_at,
            updated_at,
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Smallest first.
    #[default]
    Ascending,
    /// Largest first.
    Descending,
}

/// Which records to list: equality filters on top-level fields, an order, a page size
/// and a cursor from the previous page.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct Query {
    /// `(field, value)`: the record's top-level `field` must equal `value`.
    pub filters: Vec<(String, Value)>,
    /// Sort by this top-level field (missing counts as `null`), then by id; by id alone
    /// (creation order, ids being UUIDv7) when `None`.
    pub order_by: Option<(String, Direction)>,
    /// Page size, 1 to [`Query::MAX_LIMIT`]. Default 100.
    pub limit: usize,
    /// Where the previous page ended ([`Page::next`]).
    pub cursor: Option<String>,
}

impl Query {
    /// The largest page.
    pub const MAX_LIMIT: usize = 1000;

    /// Everything, 100 at a time, in creation order.
    pub fn new() -> Self {
        Self {
            limit: 100,
            ..Self::default()
        }
    }

    /// Adds an equality filter.
    pub fn filter(mut self, field: impl Into<String>, value: impl Into<Value>) -> Self {
        self.filters.push((field.into(), value.into()));
        self
    }

    /// Sorts by `field`.
    pub fn order_by(mut self, field: impl Into<String>, direction: Direction) -> Self {
        self.order_by = Some((field.into(), direction));
        self
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Continues after a previous page.
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    pub(crate) fn checked_limit(&self) -> Result<usize> {
        match self.limit {
            0 => Ok(100),
            n if n <= Self::MAX_LIMIT => Ok(n),
            n => Err(StoreError::invalid(format!(
                "limit {n} is over {}",
                Self::MAX_LIMIT
            ))),
        }
    }

    pub(crate) fn check_fields(&self) -> Result<()> {
        for field in self
            .filters
            .iter()
            .map(|(f, _)| f)
            .chain(self.order_by.as_ref().map(|(f, _)| f))
        {
            check_name(field, 64)?;
        }
        Ok(())
    }

    /// The position after which this page starts: the sort value and id of the last
    /// record of the previous page.
    pub(crate) fn decoded_cursor(&self) -> Result<Option<Cursor>> {
        self.cursor.as_deref().map(Cursor::decode).transpose()
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Page<T> {
    /// The records, in order.
    pub items: Vec<Versioned<T>>,
    /// Pass to [`Query::after`] for the next page; `None` on the last.
    pub next: Option<String>,
}

/// A keyset position: sort value and id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cursor {
    pub(crate) value: Value,
    pub(crate) id: Uuid,
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&(&self.value, self.id)).unwrap_or_default())
    }

    fn decode(text: &str) -> Result<Self> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| StoreError::invalid("malformed cursor"))?;
        let (value, id): (Value, Uuid) =
            serde_json::from_slice(&bytes).map_err(|_| StoreError::invalid("malformed cursor"))?;
        Ok(Self { value, id })
    }
}

/// A page of at most `limit` of `items` (read with one extra, to tell whether more
/// follow), with the cursor after its last record under `order_by`. The SQL backends
/// share it.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn page_of<T: Record>(
    mut items: Vec<Versioned<T>>,
    limit: usize,
    order_by: Option<&str>,
) -> Result<Page<T>> {
    let more = items.len() > limit;
    items.truncate(limit);
    let next = match items.last().filter(|_| more) {
        Some(last) => {
            let value = match order_by {
                Some(f) => field(&serde_json::to_value(&last.record)?, f),
                None => Value::Null,
            };
            Some(
                Cursor {
                    value,
                    id: last.record.id(),
                }
                .encode(),
            )
        }
        None => None,
    };
    Ok(Page { items, next })
}

/// Why an update matched no row: the record's version moved on (`actual`), or it is
/// gone.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
pub(crate) fn refused_update(
    collection: &'static str,
    id: Uuid,
    expected: u64,
    actual: Option<u64>,
) -> StoreError {
    match actual {
        Some(actual) => StoreError::Conflict { expected, actual },
        None => StoreError::NotFound { collection, id },
    }
}

/// Refuses a batch that names one record twice.
pub(crate) fn check_distinct(ids: impl Iterator<Item = Uuid>) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(StoreError::invalid(format!(
                "record {id} appears twice in one batch"
            )));
        }
    }
    Ok(())
}

/// Checks a collection or field name: `[a-z0-9_]`, starting with a letter or `_`.
pub(crate) fn check_name(name: &str, max: usize) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(format!("invalid name {name:?}")))
    }
}

/// The field's value in a record's JSON (`null` when missing).
pub(crate) fn field(data: &Value, name: &str) -> Value {
    data.get(name).cloned().unwrap_or(Value::Null)
}

/// Orders JSON values as PostgreSQL orders `jsonb`: null < string < number < boolean <
/// array < object; within a type, by value (strings bytewise, as the C collation).
pub(crate) fn cmp_json(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::String(_) => 1,
            Value::Number(_) => 2,
            Value::Bool(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(f64::NAN)
            .total_cmp(&y.as_f64().unwrap_or(f64::NAN)),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => x.len().cmp(&y.len()).then_with(|| {
            x.iter()
                .zip(y)
                .map(|(a, b)| cmp_json(a, b))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        }),
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let c = Cursor {
            value: json!({"a": [1, "x"]}),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        assert!(matches!(Cursor::decode("!!"), Err(StoreError::Invalid(_))));
        assert!(matches!(Cursor::decode("e30"), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn json_order_follows_postgres_jsonb() {
        let ordered = [
            json!(null),
            json!("a"),
            json!("b"),
            json!(-1),
            json!(2.5),
            json!(false),
            json!(true),
            json!([1]),
            json!({}),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(cmp_json(a, b), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("tasks_v2", 40).is_ok());
        for bad in ["", "Tasks", "2x", "a-b", "a b", "x;drop"] {
            assert!(check_name(bad, 40).is_err(), "{bad}");
        }
    }
}
