//! JSON Schemas in definitions: a step's `input_schema` and `output_schema`, and the
//! definition's `input_schema` for a run's input — compiled once at registration (a
//! schema that does not compile refuses the definition) and checked when values pass.

use serde_json::Value;

/// A compiled JSON Schema.
pub struct Schema(jsonschema::Validator);

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema")
    }
}

impl Schema {
    /// Compiles `schema` (any draft the `$schema` names; 2020-12 when it names none);
    /// why not, if it is not a schema.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        jsonschema::validator_for(schema)
            .map(Self)
            .map_err(|e| format!("not a valid JSON Schema: {e}"))
    }

    /// Whether `value` fits; the first few misfits, each with where it is, if not.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let misfits: Vec<String> = self
            .0
            .iter_errors(value)
            .take(3)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("{} {e}", if at.is_empty() { "(root)" } else { at.as_str() })
            })
            .collect();
        if misfits.is_empty() {
            Ok(())
        } else {
            Err(misfits.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn schemas_compile_and_check() {
        let schema = Schema::compile(&json!({
            "type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}
        }))
        .unwrap();
        assert_eq!(schema.check(&json!({"n": 1})), Ok(()));
        let misfit = schema.check(&json!({"n": "one"})).unwrap_err();
        assert!(misfit.contains("/n"), "{misfit}");
        let missing = schema.check(&json!({})).unwrap_err();
        assert!(
            missing.contains("(root)") && missing.contains("\"n\""),
            "{missing}"
        );
        let e = Schema::compile(&json!({"type": "no-such-type"})).unwrap_err();
        assert!(e.starts_with("not a valid JSON Schema"), "{e}");
    }
}
