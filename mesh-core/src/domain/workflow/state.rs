//! The state a run carries: writes through reducers, and step inputs from templates.

use serde_json::{Map, Value};

use super::definition::Reducer;

/// Writes `value` to `key` of `state` (an object) through `reducer`.
pub fn apply(state: &mut Map<String, Value>, key: &str, reducer: Reducer, value: Value) {
    match reducer {
        Reducer::Overwrite => {
            state.insert(key.to_owned(), value);
        }
        Reducer::Append => {
            let slot = state.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            if !slot.is_array() {
                *slot = Value::Array(vec![slot.take()]);
            }
            if let Value::Array(list) = slot {
                match value {
                    Value::Array(more) => list.extend(more),
                    one => list.push(one),
                }
            }
        }
        Reducer::Merge => {
            let slot = state
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()));
            match (slot, value) {
                (Value::Object(into), Value::Object(from)) => into.extend(from),
                (slot, other) => *slot = other,
            }
        }
    }
}

/// The marker key of a template's state reference: `{"$state": "/pointer"}`.
pub(super) const STATE_REF: &str = "$state";

/// Renders a step's input: `template` with every `{"$state": "/pointer"}` replaced by
/// that part of `state` (`null` when absent); the whole state when there is no
/// template.
pub fn render(template: Option<&Value>, state: &Value) -> Value {
    match template {
        None => state.clone(),
        Some(t) => render_value(t, state),
    }
}

fn render_value(template: &Value, state: &Value) -> Value {
    match template {
        Value::Object(map) => match state_ref(map) {
            Some(pointer) => state.pointer(pointer).cloned().unwrap_or(Value::Null),
            None => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), render_value(v, state)))
                    .collect(),
            ),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| render_value(v, state)).collect()),
        other => other.clone(),
    }
}

/// The pointer of a `{"$state": "/pointer"}` object.
pub(super) fn state_ref(map: &Map<String, Value>) -> Option<&str> {
    match (map.len(), map.get(STATE_REF)) {
        (1, Some(Value::String(pointer))) => Some(pointer),
        _ => None,
    }
}

/// Every state pointer a template reads.
pub(super) fn template_refs(template: &Value) -> Vec<&str> {
    match template {
        Value::Object(map) => match state_ref(map) {
            Some(pointer) => vec![pointer],
            None => map.values().flat_map(template_refs).collect(),
        },
        Value::Array(items) => items.iter().flat_map(template_refs).collect(),
        _ => Vec::new(),
    }
}

/// The top-level key a JSON Pointer starts with (`"/files/0"` → `files`), unescaped.
pub(super) fn top_key(pointer: &str) -> Option<String> {
    let rest = pointer.strip_prefix('/')?;
    let first = rest.split('/').next().unwrap_or_default();
    Some(first.replace("~1", "/").replace("~0", "~"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reducers_overwrite_append_and_merge() {
        let mut s = Map::new();
        apply(&mut s, "a", Reducer::Overwrite, json!(1));
        apply(&mut s, "a", Reducer::Overwrite, json!(2));
        apply(&mut s, "l", Reducer::Append, json!(1));
        apply(&mut s, "l", Reducer::Append, json!([2, 3]));
        apply(&mut s, "m", Reducer::Merge, json!({"x": 1, "y": 1}));
        apply(&mut s, "m", Reducer::Merge, json!({"y": 2}));
        assert_eq!(
            Value::Object(s),
            json!({"a": 2, "l": [1, 2, 3], "m": {"x": 1, "y": 2}})
        );
    }

    #[test]
    fn templates_pick_from_the_state() {
        let state = json!({"repo": "mesh", "files": ["a.rs", "b.rs"]});
        let t = json!({"r": {"$state": "/repo"}, "first": {"$state": "/files/0"},
                       "gone": {"$state": "/nope"}, "lit": [1, {"$state": "/repo"}]});
        assert_eq!(
            render(Some(&t), &state),
            json!({"r": "mesh", "first": "a.rs", "gone": null, "lit": [1, "mesh"]})
        );
        assert_eq!(render(None, &state), state);
        let mut refs = template_refs(&t);
        refs.sort_unstable();
        assert_eq!(refs, ["/files/0", "/nope", "/repo", "/repo"]);
        assert_eq!(top_key("/files/0").as_deref(), Some("files"));
        assert_eq!(top_key("/a~1b").as_deref(), Some("a/b"));
        assert_eq!(top_key(""), None);
    }
}
