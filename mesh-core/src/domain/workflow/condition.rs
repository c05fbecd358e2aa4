//! Conditions on the state, for conditional edges: a test of one value found by JSON
//! Pointer (`{"path": "/approved", "eq": true}`), or `all` / `any` / `not` of others.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A condition on the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ConditionDoc", into = "ConditionDoc")]
#[non_exhaustive]
pub enum Condition {
    /// Every one holds.
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
    /// It does not hold.
    Not(Box<Condition>),
    /// The value at `path` (a JSON Pointer into the state) compares so with `value`.
    Compare {
        /// Where the value is (`""` is the whole state).
        path: String,
        /// How it compares.
        op: Compare,
        /// With what.
        value: Value,
    },
    /// Whether the state has a value at `path`.
    Exists {
        /// Where.
        path: String,
        /// Whether it must be there (`true`) or absent (`false`).
        exists: bool,
    },
}

/// A comparison. Ordering compares two numbers or two strings; anything else is false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compare {
    /// Equal.
    Eq,
    /// Not equal.
    Ne,
    /// Greater.
    Gt,
    /// Greater or equal.
    Gte,
    /// Less.
    Lt,
    /// Less or equal.
    Lte,
    /// An array holding the value, or a string holding it as a substring.
    Contains,
}

impl Condition {
    /// `path` equals `value`.
    pub fn eq(path: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::compare(path, Compare::Eq, value)
    }

    /// `path` compares with `value` by `op`.
    pub fn compare(path: impl Into<String>, op: Compare, value: impl Into<Value>) -> Self {
        Self::Compare {
            path: path.into(),
            op,
            value: value.into(),
        }
    }

    /// Whether it holds on `state`.
    pub fn holds(&self, state: &Value) -> bool {
        match self {
            Self::All(all) => all.iter().all(|c| c.holds(state)),
            Self::Any(any) => any.iter().any(|c| c.holds(state)),
            Self::Not(c) => !c.holds(state),
            Self::Exists { path, exists } => state.pointer(path).is_some() == *exists,
            Self::Compare { path, op, value } => {
                let found = state.pointer(path).unwrap_or(&Value::Null);
                compare(found, *op, value)
            }
        }
    }

    /// Every pointer the condition reads.
    pub fn paths(&self) -> Vec<&str> {
        match self {
            Self::All(cs) | Self::Any(cs) => cs.iter().flat_map(Self::paths).collect(),
            Self::Not(c) => c.paths(),
            Self::Compare { path, .. } | Self::Exists { path, .. } => vec![path.as_str()],
        }
    }
}

fn compare(found: &Value, op: Compare, value: &Value) -> bool {
    use std::cmp::Ordering;
    let order = match (found, value) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().partial_cmp(&b.as_f64()),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match op {
        Compare::Eq => found == value,
        Compare::Ne => found != value,
        Compare::Gt => order == Some(Ordering::Greater),
        Compare::Gte => matches!(order, Some(Ordering::Greater | Ordering::Equal)),
        Compare::Lt => order == Some(Ordering::Less),
        Compare::Lte => matches!(order, Some(Ordering::Less | Ordering::Equal)),
        Compare::Contains => match (found, value) {
            (Value::Array(items), v) => items.contains(v),
            (Value::String(s), Value::String(part)) => s.contains(part.as_str()),
            _ => false,
        },
    }
}

/// A condition as JSON: exactly one of `all`, `any`, `not`, or `path` with one test.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionDoc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    all: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    any: Option<Vec<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not: Option<Box<Condition>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exists: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    eq: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    ne: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    gt: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    gte: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    lt: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    lte: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    contains: Option<Value>,
}

/// A field that is present is `Some`, even when it is `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl ConditionDoc {
    fn tests(&mut self) -> [(Compare, Option<Value>); 7] {
        [
            (Compare::Eq, self.eq.take()),
            (Compare::Ne, self.ne.take()),
            (Compare::Gt, self.gt.take()),
            (Compare::Gte, self.gte.take()),
            (Compare::Lt, self.lt.take()),
            (Compare::Lte, self.lte.take()),
            (Compare::Contains, self.contains.take()),
        ]
    }
}

impl TryFrom<ConditionDoc> for Condition {
    type Error = String;

    fn try_from(mut doc: ConditionDoc) -> Result<Self, String> {
        let mut found = Vec::new();
        if let Some(all) = doc.all.take() {
            found.push(Self::All(all));
        }
        if let Some(any) = doc.any.take() {
            found.push(Self::Any(any));
        }
        if let Some(not) = doc.not.take() {
            found.push(Self::Not(not));
        }
        let path = doc.path.take();
        if let Some(exists) = doc.exists {
            found.push(Self::Exists {
                path: path.clone().unwrap_or_default(),
                exists,
            });
        }
        for (op, value) in doc.tests() {
            if let Some(value) = value {
                found.push(Self::Compare {
                    path: path.clone().unwrap_or_default(),
                    op,
                    value,
                });
            }
        }
        let tests = found
            .iter()
            .filter(|c| matches!(c, Self::Compare { .. } | Self::Exists { .. }))
            .count();
        if tests > 0 && path.is_none() {
            return Err("a condition's test needs a `path`".into());
        }
        if path.is_some() && tests == 0 {
            return Err(
                "a condition with a `path` needs one of eq, ne, gt, gte, lt, lte, contains, exists"
                    .into(),
            );
        }
        let [condition] = <[Self; 1]>::try_from(found).map_err(|found| {
            format!(
                "a condition is exactly one of all, any, not, or a path with one test (found {})",
                found.len()
            )
        })?;
        Ok(condition)
    }
}

impl From<Condition> for ConditionDoc {
    fn from(condition: Condition) -> Self {
        let mut doc = Self::default();
        match condition {
            Condition::All(all) => doc.all = Some(all),
            Condition::Any(any) => doc.any = Some(any),
            Condition::Not(not) => doc.not = Some(not),
            Condition::Exists { path, exists } => {
                doc.path = Some(path);
                doc.exists = Some(exists);
            }
            Condition::Compare { path, op, value } => {
                doc.path = Some(path);
                let slot = match op {
                    Compare::Eq => &mut doc.eq,
                    Compare::Ne => &mut doc.ne,
                    Compare::Gt => &mut doc.gt,
                    Compare::Gte => &mut doc.gte,
                    Compare::Lt => &mut doc.lt,
                    Compare::Lte => &mut doc.lte,
                    Compare::Contains => &mut doc.contains,
                };
                *slot = Some(value);
            }
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: Value) -> Result<Condition, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn conditions_read_the_state_and_round_trip() {
        let state = json!({"n": 3, "name": "alpha", "tags": ["x"], "ok": true, "none": null});
        for (doc, holds) in [
            (json!({"path": "/ok", "eq": true}), true),
            (json!({"path": "/none", "eq": null}), true),
            (json!({"path": "/missing", "eq": null}), true),
            (json!({"path": "/n", "gt": 2}), true),
            (json!({"path": "/n", "lte": 2.5}), false),
            (json!({"path": "/name", "lt": "beta"}), true),
            (json!({"path": "/tags", "contains": "x"}), true),
            (json!({"path": "/name", "contains": "lp"}), true),
            (json!({"path": "/missing", "exists": false}), true),
            (json!({"not": {"path": "/ok", "eq": true}}), false),
            (
                json!({"all": [{"path": "/ok", "eq": true}, {"path": "/n", "ne": 3}]}),
                false,
            ),
            (
                json!({"any": [{"path": "/ok", "eq": false}, {"path": "/n", "gte": 3}]}),
                true,
            ),
            (json!({"path": "/n", "gt": "2"}), false),
        ] {
            let c = parse(doc.clone()).unwrap();
            assert_eq!(c.holds(&state), holds, "{doc}");
            assert_eq!(serde_json::to_value(&c).unwrap(), doc);
        }
    }

    #[test]
    fn malformed_conditions_say_what_is_wrong() {
        for (doc, says) in [
            (json!({"eq": 1}), "needs a `path`"),
            (json!({"path": "/a"}), "needs one of"),
            (json!({"path": "/a", "eq": 1, "ne": 2}), "exactly one"),
            (json!({"path": "/a", "equals": 1}), "unknown field"),
        ] {
            let e = parse(doc).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }
}
