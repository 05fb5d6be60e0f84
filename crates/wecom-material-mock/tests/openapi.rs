//! The admin API's contract: `openapi.json` (served at `/__mock/openapi.json`) is checked
//! against the running handlers. Every documented operation is called with the document's own
//! example and must answer the documented status with every required field of the
//! documented schema, of the documented type; every other method on a documented path must
//! answer 405. (That the document lists exactly the handler's routes is a unit test of the
//! admin module.)

mod support;

use std::net::SocketAddr;

use serde_json::Value;
use support::*;
use wecom_material_mock::{MockConfig, MockServer};

const DOC: &str = include_str!("../openapi.json");

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let mut v = doc;
            for part in r.trim_start_matches("#/").split('/') {
                v = &v[part];
            }
            v
        }
        None => schema,
    }
}

fn type_fits(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => true,
    }
}

/// Checks `v` against the parts of a schema the document uses: type, required, properties,
/// items. The path names where a mismatch is.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) {
    let schema = resolve(doc, schema);
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    assert!(
        types.is_empty() || types.iter().any(|t| type_fits(t, v)),
        "{at}: {v} is not of type {types:?}"
    );
    if let (Some(required), true) = (schema["required"].as_array(), v.is_object()) {
        for key in required {
            let key = key.as_str().unwrap();
            assert!(
                v.get(key).is_some(),
                "{at}: required field {key} missing in {v}"
            );
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), v.as_object()) {
        for (key, sub) in props {
            if let Some(value) = obj.get(key) {
                check(doc, sub, value, &format!("{at}.{key}"));
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            check(doc, items, item, &format!("{at}[{i}]"));
        }
    }
}

/// The request body of an operation: its example (JSON re-serialized, or raw bytes).
fn example_body(op: &Value) -> Vec<u8> {
    let content = &op["requestBody"]["content"];
    if let Some(ex) = content.get("application/json").map(|c| &c["example"]) {
        return ex.to_string().into_bytes();
    }
    if let Some(ex) = content
        .get("application/octet-stream")
        .map(|c| &c["example"])
    {
        return ex.as_str().unwrap().as_bytes().to_vec();
    }
    Vec::new()
}

/// The target: path parameters filled in, required query parameters from their examples.
fn target(op: &Value, path: &str, media_id: &str) -> String {
    let path = path.replace("{media_id}", &enc(media_id));
    let query: Vec<String> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .map(|p| {
            let ex = p["example"]
                .as_str()
                .expect("a required parameter has an example");
            format!("{}={}", p["name"].as_str().unwrap(), enc(ex))
        })
        .collect();
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

fn call(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> (u16, Value) {
    let r = send(addr, method, target, &[], body);
    assert_eq!(
        r.header_str("content-type").as_deref(),
        Some("application/json"),
        "{method} {target}"
    );
    (r.status, r.json())
}

#[test]
fn every_documented_operation_answers_as_documented() {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    let mock = MockServer::start(MockConfig::default());
    let a = mock.addr();
    let served: Value = {
        let (status, v) = call(a, "GET", "/__mock/openapi.json", b"");
        assert_eq!(status, 200);
        v
    };
    assert_eq!(
        served, doc,
        "the served document is the one in the repository"
    );
    let mut calls = 0;
    // Reset last: it would undo what the others set up.
    let mut ops: Vec<(String, String, Value)> = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for (method, op) in methods.as_object().unwrap() {
            ops.push((path.clone(), method.to_ascii_uppercase(), op.clone()));
        }
    }
    ops.sort_by_key(|(p, _, _)| p.ends_with("/reset"));
    for (path, method, op) in &ops {
        // A media to delete, made fresh each time.
        let media_id = mock.insert_media(&b"to be deleted"[..], "text/plain", "d.txt");
        let t = target(op, path, &media_id);
        let (status, v) = call(a, method, &t, &example_body(op));
        let ok = &op["responses"]["200"];
        assert_eq!(status, 200, "{method} {t}: {v}");
        let schema = &ok["content"]["application/json"]["schema"];
        check(&doc, schema, &v, &format!("{method} {path}"));
        calls += 1;
        // The documented error answers have the documented shape too.
        if op["responses"].get("400").is_some() && op.get("requestBody").is_some() {
            let (status, v) = call(a, method, &t, b"{not json");
            if path.ends_with("/media") || path.ends_with("/files") {
                // Raw bodies: any bytes are a body; a missing query parameter is the error.
                let (status, v) = call(a, method, path, b"x");
                assert_eq!(status, 400, "{method} {path} without its query: {v}");
                check(
                    &doc,
                    &op["responses"]["400"]["content"]["application/json"]["schema"],
                    &v,
                    path,
                );
            } else {
                assert_eq!(status, 400, "{method} {t} with a broken body: {v}");
                check(
                    &doc,
                    &op["responses"]["400"]["content"]["application/json"]["schema"],
                    &v,
                    path,
                );
            }
        }
    }
    assert_eq!(calls, 15);
}

#[test]
fn other_methods_on_documented_paths_answer_405_and_unknown_paths_404() {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    let mock = MockServer::start(MockConfig::default());
    let a = mock.addr();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        let path = path.replace("{media_id}", "3x");
        for method in ["GET", "POST", "DELETE", "PUT"] {
            if methods.get(method.to_ascii_lowercase()).is_some() {
                continue;
            }
            let (status, v) = call(a, method, &path, b"");
            assert_eq!(status, 405, "{method} {path}: {v}");
            assert!(v["error"].is_string());
        }
    }
    let (status, v) = call(a, "GET", "/__mock/nothing", b"");
    assert_eq!(status, 404);
    assert!(v["error"].as_str().unwrap().contains("openapi.json"), "{v}");
}
