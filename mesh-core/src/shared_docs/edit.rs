//! [`Edit`]: a change made through the mesh rather than by an agent's replica — from
//! REST, MCP, the browser channel or a workflow step — in plain terms (a position and
//! text, a path and a value), applied to the mesh's replica.

use mesh_crdt::{StateValue, TextOp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::DocError;
use super::replica::Replica;

/// One change to a shared document. Text positions count characters (Unicode scalar
/// values) in the text as the mesh holds it when the edit arrives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[cfg_attr(feature = "rest", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "mcp", derive(schemars::JsonSchema))]
#[non_exhaustive]
pub enum Edit {
    /// Text: replaces `delete` characters at `pos` with `insert`.
    Splice {
        /// Where, in characters from the start (at most the length).
        pos: usize,
        /// How many characters to delete there.
        #[serde(default)]
        delete: usize,
        /// What to insert there.
        #[serde(default)]
        insert: String,
    },
    /// State: writes a scalar (null, boolean, number, string) at `path`.
    Set {
        /// The path, e.g. `"build/status"`.
        path: String,
        /// The value.
        value: Value,
    },
    /// State: adds `delta` to the counter at `path`.
    Add {
        /// The path.
        path: String,
        /// How much (negative subtracts).
        delta: i64,
    },
    /// State: adds `element` to the set at `path`.
    Insert {
        /// The path.
        path: String,
        /// The element.
        element: String,
    },
    /// State: removes `element` from the set at `path`.
    Remove {
        /// The path.
        path: String,
        /// The element.
        element: String,
    },
}

impl Edit {
    /// Its `op` as JSON names it.
    fn op(&self) -> &'static str {
        match self {
            Self::Splice { .. } => "splice",
            Self::Set { .. } => "set",
            Self::Add { .. } => "add",
            Self::Insert { .. } => "insert",
            Self::Remove { .. } => "remove",
        }
    }

    /// How much it can grow the document, in the unit of its limit.
    pub(crate) fn growth(&self) -> usize {
        match self {
            Self::Splice { insert, .. } => insert.chars().count(),
            _ => 1,
        }
    }
}

/// The most edits one call may carry.
pub const MAX_EDITS: usize = 1_000;

/// Applies `edits` in order to `replica` and returns the update they make (empty when
/// they change nothing). Every edit is checked first, so a bad one applies none.
pub(crate) fn apply_all(replica: &mut Replica, edits: &[Edit]) -> Result<Vec<u8>, DocError> {
    if edits.len() > MAX_EDITS {
        return Err(DocError::BadEdit(format!(
            "at most {MAX_EDITS} edits at once"
        )));
    }
    check(replica, edits)?;
    if let Some(text) = replica.text_mut() {
        let mut ops: Vec<TextOp> = Vec::new();
        for edit in edits {
            if let Edit::Splice {
                pos,
                delete,
                insert,
            } = edit
            {
                let delete = (*delete).min(text.len().saturating_sub(*pos));
                ops.extend(text.delete(*pos, delete));
                ops.extend(text.insert(*pos, insert));
            }
        }
        return Ok(if ops.is_empty() {
            Vec::new()
        } else {
            TextOp::encode_all(&ops)
        });
    }
    let Some(state) = replica.state_mut() else {
        return Ok(Vec::new());
    };
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    let mut ops = Vec::with_capacity(edits.len());
    for edit in edits {
        ops.push(match edit {
            Edit::Set { path, value } => state.set_value(path, scalar(value)?, now_ms),
            Edit::Add { path, delta } => state.add(path, *delta),
            Edit::Insert { path, element } => state.insert(path, element),
            Edit::Remove { path, element } => state.remove(path, element),
            Edit::Splice { .. } => continue,
        });
    }
    Ok(mesh_crdt::StateOp::encode_all(&ops))
}

/// Refuses edits of the other kind, positions past the end (as the earlier edits leave
/// it) and values that are not scalars.
fn check(replica: &Replica, edits: &[Edit]) -> Result<(), DocError> {
    let mut len = replica.size();
    let is_text = replica.kind() == crate::domain::DocKind::Text;
    for edit in edits {
        match edit {
            Edit::Splice {
                pos,
                delete,
                insert,
            } if is_text => {
                if *pos > len {
                    return Err(DocError::BadEdit(format!(
                        "position {pos} is past the end ({len} characters)"
                    )));
                }
                let deleted = (*delete).min(len - pos);
                len = len - deleted + insert.chars().count();
            }
            Edit::Set { path, value } if !is_text => {
                check_path(path)?;
                scalar(value)?;
            }
            Edit::Add { path, .. } | Edit::Insert { path, .. } | Edit::Remove { path, .. }
                if !is_text =>
            {
                check_path(path)?;
            }
            _ => {
                return Err(DocError::BadEdit(format!(
                    "a {} document does not take a {:?} edit",
                    replica.kind().as_str(),
                    edit.op()
                )));
            }
        }
    }
    Ok(())
}

/// The longest state path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

fn check_path(path: &str) -> Result<(), DocError> {
    if path.is_empty() || path.len() > MAX_PATH_LEN {
        return Err(DocError::BadEdit(format!(
            "a path has 1 to {MAX_PATH_LEN} bytes"
        )));
    }
    Ok(())
}

fn scalar(value: &Value) -> Result<StateValue, DocError> {
    Ok(match value {
        Value::Null => StateValue::Null,
        Value::Bool(b) => StateValue::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => StateValue::Int(i),
            None => StateValue::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => StateValue::Str(s.clone()),
        _ => {
            return Err(DocError::BadEdit(
                "a state value is null, a boolean, a number or a string".to_owned(),
            ));
        }
    })
}
