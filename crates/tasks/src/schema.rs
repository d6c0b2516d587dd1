//! JSON Schema checks: a tool's schema must compile (no remote references: nothing is fetched),
//! and a call's arguments must satisfy it, each failure named by its JSON pointer.

use mc_domain::FieldError;
use serde_json::Value;

/// Failures reported for one set of arguments at most.
pub const MAX_ERRORS: usize = 20;

/// A tool's schema compiles (draft detected from `$schema`, 2020-12 by default).
pub fn check_schema(schema: &Value) -> Result<(), FieldError> {
    jsonschema::validator_for(schema)
        .map(|_| ())
        .map_err(|e| FieldError::new("schema", format!("is not a valid JSON Schema: {e}")))
}

/// The arguments satisfy `schema`; otherwise each failure as `arguments<pointer>`.
pub fn validate_arguments(schema: &Value, arguments: &Value) -> Result<(), Vec<FieldError>> {
    let validator = jsonschema::validator_for(schema).map_err(|e| {
        vec![FieldError::new(
            "tool",
            format!("the tool's schema no longer compiles: {e}"),
        )]
    })?;
    let errors: Vec<FieldError> = validator
        .iter_errors(arguments)
        .take(MAX_ERRORS)
        .map(|e| {
            let pointer = e.instance_path().to_string();
            FieldError::new(format!("arguments{pointer}"), e.to_string())
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_are_checked_against_the_schema_and_failures_named_by_pointer() {
        let schema = json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "pattern": "^/"},
                "lines": {"type": "integer", "minimum": 1}
            },
            "required": ["path"],
            "additionalProperties": false
        });
        check_schema(&schema).unwrap();
        assert!(validate_arguments(&schema, &json!({"path": "/etc/hosts", "lines": 3})).is_ok());
        let errors = validate_arguments(&schema, &json!({"path": "etc", "lines": 0})).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"arguments/path"), "{errors:?}");
        assert!(fields.contains(&"arguments/lines"), "{errors:?}");
        let errors = validate_arguments(&schema, &json!({"rm": true})).unwrap_err();
        assert!(errors.iter().all(|e| e.field == "arguments"), "{errors:?}");
        assert_eq!(errors.len(), 2, "missing path, unexpected rm: {errors:?}");
    }

    #[test]
    fn a_schema_that_does_not_compile_or_fetches_is_refused() {
        for bad in [
            json!({"type": "no-such-type"}),
            json!({"$ref": "https://example.com/schema.json"}),
            json!({"minimum": "one"}),
        ] {
            let e = check_schema(&bad).unwrap_err();
            assert_eq!(e.field, "schema", "{bad}");
        }
        check_schema(&json!(true)).unwrap();
    }
}
