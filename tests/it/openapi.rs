//! `docs/openapi.yaml` describes exactly the routed API: one `POST /api/<method>` path
//! per entry of `rotor::api::METHODS` (no more, no fewer), each with a JSON request
//! body schema and a 200 response, and every `$ref` in the document resolves.

use std::collections::BTreeSet;

use serde_json::Value;

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
    serde_json::to_value(yaml).expect("the document converts to JSON (string keys only)")
}

/// Follows a local JSON pointer (`#/components/schemas/X`), with `~1`/`~0` escapes.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

/// Every `$ref` string in the document, with the JSON path where it occurs.
fn refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "$ref" {
                    out.push((at.to_string(), child.as_str().unwrap_or("<not a string>").to_string()));
                } else {
                    refs(child, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                refs(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Follows `$ref` chains to the referenced object.
fn deref<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => v = resolve(doc, r).unwrap_or_else(|| panic!("unresolved $ref {r}")),
            None => return v,
        }
    }
    panic!("$ref chain too long");
}

#[test]
fn is_openapi_3_1() {
    let doc = document();
    let version = doc["openapi"].as_str().expect("openapi version string");
    assert!(version.starts_with("3.1."), "expected OpenAPI 3.1.x, got {version}");
    let scheme = &doc["components"]["securitySchemes"]["apiKey"];
    assert_eq!(scheme["type"], "apiKey");
    assert_eq!(scheme["in"], "header");
    assert_eq!(scheme["name"], "X-API-Key");
}

#[test]
fn api_paths_match_routed_methods() {
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths object");
    let documented: BTreeSet<&str> = paths.keys().filter_map(|p| p.strip_prefix("/api/")).collect();
    let routed: BTreeSet<&str> = rotor::api::METHODS.iter().copied().collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(missing.is_empty(), "methods routed but not documented: {missing:?}");
    assert!(extra.is_empty(), "paths documented but not routed: {extra:?}");
    assert!(paths.contains_key("/api"), "the legacy endpoint POST /api is documented");
    assert!(paths["/api"].get("post").is_some());
    assert!(paths.get("/health").and_then(|h| h.get("get")).is_some(), "GET /health is documented");
}

#[test]
fn every_method_has_post_with_body_and_200() {
    let doc = document();
    for method in rotor::api::METHODS {
        let path = format!("/api/{method}");
        let item = &doc["paths"][&path];
        let post = item.get("post").unwrap_or_else(|| panic!("{path} has no post operation"));
        let other: Vec<&String> = item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !matches!(k.as_str(), "post" | "summary" | "description" | "parameters"))
            .collect();
        assert!(other.is_empty(), "{path} documents other operations {other:?}; the API answers them 405");
        let body = deref(&doc, post.get("requestBody").unwrap_or_else(|| panic!("{path} has no requestBody")));
        let schema = body["content"]["application/json"]
            .get("schema")
            .unwrap_or_else(|| panic!("{path} has no application/json request schema"));
        let schema = deref(&doc, schema);
        assert_eq!(schema["type"], "object", "{path}: requests are JSON objects");
        assert_ne!(
            schema.get("additionalProperties"),
            Some(&Value::Bool(false)),
            "{path}: unknown request fields are ignored, not refused"
        );
        let ok = post["responses"].get("200").unwrap_or_else(|| panic!("{path} has no 200 response"));
        let ok = deref(&doc, ok);
        assert!(ok["content"]["application/json"].get("schema").is_some(), "{path}: 200 has a JSON schema");
        let unauthorized = post["responses"].get("401").unwrap_or_else(|| panic!("{path} has no 401 response"));
        assert!(deref(&doc, unauthorized).get("content").is_none(), "{path}: 401 has an empty body");
        assert!(post["responses"].get("400").is_some(), "{path} has no 400 response");
        let security = post.get("security").or_else(|| doc.get("security")).expect("security");
        assert!(security.to_string().contains("apiKey"), "{path} requires the API key");
    }
}

#[test]
fn every_ref_resolves() {
    let doc = document();
    let mut all = Vec::new();
    refs(&doc, "#", &mut all);
    assert!(all.len() > 50, "the document uses $ref ({} found)", all.len());
    let broken: Vec<_> = all.iter().filter(|(_, r)| resolve(&doc, r).is_none()).collect();
    assert!(broken.is_empty(), "unresolved $refs (location, target): {broken:?}");
    // Every named schema is used somewhere.
    let used: BTreeSet<&str> = all.iter().filter_map(|(_, r)| r.strip_prefix("#/components/schemas/")).collect();
    let unused: Vec<&String> =
        doc["components"]["schemas"].as_object().unwrap().keys().filter(|k| !used.contains(k.as_str())).collect();
    assert!(unused.is_empty(), "schemas never referenced: {unused:?}");
}
