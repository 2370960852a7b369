//! The sender-side catalog: every event's name, description, deprecation and example, as
//! `Catalog` lists them and as its OpenAPI document and HTML page publish them.

use serde::{Deserialize, Serialize};
use serde_json::json;
use webhooks::{Catalog, WebhookEvent};

/// Bear attacks reported by rangers.
#[derive(Debug, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "bear_attack")]
enum BearAttack {
    /// A ranger reported an attack.
    #[webhook(action = "reported", example = "reported_example")]
    Reported {
        id: u64,
        #[webhook(label)]
        county: String,
        severity: u8,
    },
    #[webhook(action = "archived", deprecated = "use bear_attack:reported")]
    Archived,
}

fn reported_example() -> BearAttack {
    BearAttack::Reported {
        id: 7,
        county: "Kenai".to_owned(),
        severity: 3,
    }
}

/// A random number was drawn.
///
/// Between 0 and 1000.
#[derive(Serialize, WebhookEvent)]
#[webhook(
    resource = "random_number",
    action = "generate",
    deprecated,
    example = "self::RandomNumber::example"
)]
struct RandomNumber(u32);

impl RandomNumber {
    fn example() -> Self {
        RandomNumber(863)
    }
}

/// Its example is the wrong variant.
#[derive(Serialize, WebhookEvent)]
#[expect(dead_code, reason = "only the (wrong) example is ever made")]
#[webhook(resource = "wrong")]
enum Wrong {
    #[webhook(action = "one", example = "wrong_example")]
    One,
    #[webhook(action = "two")]
    Two,
}

fn wrong_example() -> Wrong {
    Wrong::Two
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct SameName;

fn catalog() -> Catalog {
    Catalog::new().event::<BearAttack>().event::<RandomNumber>()
}

#[test]
fn events_in_declaration_order_with_their_docs() {
    let catalog = catalog();
    let names: Vec<&str> = catalog.events().iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [
            "bear_attack:reported",
            "bear_attack:archived",
            "random_number:generate"
        ]
    );
    let [reported, archived, random] = catalog.events() else {
        panic!("three events");
    };
    assert_eq!(reported.description(), Some("A ranger reported an attack."));
    assert_eq!(reported.deprecated(), None);
    assert_eq!(
        reported.example(),
        Some(json!({"id": 7, "county": "Kenai", "severity": 3}))
    );
    // A variant without a doc comment is described by its type's.
    assert_eq!(
        archived.description(),
        Some("Bear attacks reported by rangers.")
    );
    assert_eq!(archived.deprecated(), Some("use bear_attack:reported"));
    assert_eq!(archived.example(), None);
    assert_eq!(
        random.description(),
        Some("A random number was drawn.\n\nBetween 0 and 1000.")
    );
    assert_eq!(random.deprecated(), Some(""));
    assert_eq!(random.example(), Some(json!(863)));
    assert_eq!(BearAttack::EVENT_DOCS.len(), 2);
}

#[test]
fn an_example_of_another_event_is_refused() {
    let error = Catalog::new().try_event::<Wrong>().unwrap_err();
    assert!(
        error.contains("`wrong:one`") && error.contains("`wrong:two`"),
        "{error}"
    );
    let panic = std::panic::catch_unwind(|| Catalog::new().event::<Wrong>()).unwrap_err();
    assert!(panic.downcast_ref::<String>().is_some());
}

#[test]
fn a_duplicate_event_name_is_refused() {
    let error = catalog().try_event::<SameName>().unwrap_err();
    assert!(
        error.contains("duplicate event name `random_number:generate`"),
        "{error}"
    );
}

#[test]
fn openapi_has_one_webhook_per_event() {
    let doc = catalog().openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    let webhooks = doc["webhooks"].as_object().unwrap();
    assert_eq!(webhooks.len(), 3);
    let reported = &webhooks["bear_attack:reported"]["post"];
    let body = &reported["requestBody"]["content"]["application/json"];
    assert_eq!(
        body["example"]["data"],
        json!({"id": 7, "county": "Kenai", "severity": 3})
    );
    assert_eq!(body["example"]["event"], "bear_attack:reported");
    assert_eq!(
        body["schema"]["properties"]["event"]["const"],
        "bear_attack:reported"
    );
    let headers: Vec<&str> = reported["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        headers,
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
    );
    assert!(reported["responses"]["200"].is_object());
    assert!(reported["responses"]["410"].is_object());
    assert_eq!(reported.get("deprecated"), None);
    assert_eq!(webhooks["bear_attack:archived"]["post"]["deprecated"], true);
}

#[test]
fn html_lists_events() {
    let page = catalog().html();
    assert!(page.starts_with("<!DOCTYPE html>"));
    for needle in [
        "bear_attack:reported",
        "bear_attack:archived",
        "A ranger reported an attack.",
        "use bear_attack:reported",
        "webhook-signature",
        "&quot;county&quot;: &quot;Kenai&quot;",
    ] {
        assert!(page.contains(needle), "{needle} in {page}");
    }
    assert!(!page.contains("<script"));
    assert!(!page.contains("http://") && !page.contains("https://"));
}

/// Serde's attributes, as the schema follows them.
#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "ranger", action = "hired", example = "hired")]
struct RangerHired {
    /// The ranger's badge number.
    #[serde(rename = "rangerId")]
    ranger_id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    nickname: Option<String>,
    #[serde(skip)]
    #[allow(dead_code)]
    internal: Vec<u8>,
}

fn hired() -> RangerHired {
    RangerHired {
        ranger_id: 12,
        nickname: None,
        internal: vec![1],
    }
}

#[test]
fn data_schemas_follow_serde() {
    let catalog = catalog().event::<RangerHired>();
    let [reported, archived, random, hired] = catalog.events() else {
        panic!("four events");
    };
    let reported = reported.data_schema().unwrap();
    assert_eq!(reported["type"], "object");
    assert_eq!(reported["required"], json!(["id", "county", "severity"]));
    assert_eq!(reported["properties"]["county"]["type"], "string");
    assert_eq!(reported["properties"]["severity"]["type"], "integer");
    // A variant's content, not the externally tagged enum.
    assert_eq!(archived.data_schema().unwrap()["type"], "null");
    assert_eq!(random.data_schema().unwrap()["type"], "integer");
    let hired = hired.data_schema().unwrap();
    assert_eq!(hired["required"], json!(["rangerId"]));
    assert_eq!(
        hired["properties"]["rangerId"]["description"],
        "The ranger's badge number."
    );
    let properties: Vec<&String> = hired["properties"].as_object().unwrap().keys().collect();
    assert_eq!(properties.len(), 2);
    assert!(hired["properties"]["nickname"].is_object());
}

#[test]
fn every_example_matches_its_schema() {
    let catalog = catalog().event::<RangerHired>();
    for event in catalog.events() {
        let Some(example) = event.example() else {
            continue;
        };
        let schema = event.data_schema().unwrap();
        if let Err(error) = validate(schema, &example) {
            panic!("{}: {error}", event.name());
        }
        let body = event.example_body().unwrap();
        let envelope = event.body_schema(webhooks::Envelope::Compact);
        validate(&envelope, &body).unwrap();
    }
}

/// A JSON Schema validator for the subset the catalog's schemas use: `type` (one or a list),
/// `const`, `properties`, `required`, `prefixItems`, `items`, `minimum`, `maximum`, `anyOf`,
/// `oneOf`, and `$ref`-free schemas.
fn validate(schema: &serde_json::Value, value: &serde_json::Value) -> Result<(), String> {
    use serde_json::Value;
    if schema == &Value::Bool(true) {
        return Ok(());
    }
    assert!(
        schema.get("$ref").is_none(),
        "inline schemas only: {schema}"
    );
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        });
        if !ok {
            return Err(format!("{value} is not of type {types:?}"));
        }
    }
    if let Some(expected) = schema.get("const")
        && expected != value
    {
        return Err(format!("{value} is not {expected}"));
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(format!("{n} < {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(format!("{n} > {max}"));
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array)
            && !options.iter().any(|s| validate(s, value).is_ok())
        {
            return Err(format!("{value} matches none of {key}"));
        }
    }
    if let Value::Object(object) = value {
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    return Err(format!("missing `{name}` in {value}"));
                }
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, field) in object {
                if let Some(property) = properties.get(name) {
                    validate(property, field).map_err(|e| format!("{name}: {e}"))?;
                }
            }
        }
    }
    if let Value::Array(items) = value {
        let prefix = schema.get("prefixItems").and_then(Value::as_array);
        for (i, item) in items.iter().enumerate() {
            let item_schema = prefix
                .and_then(|p| p.get(i))
                .or_else(|| schema.get("items"));
            if let Some(item_schema) = item_schema {
                validate(item_schema, item).map_err(|e| format!("[{i}]: {e}"))?;
            }
        }
    }
    Ok(())
}

/// The OpenAPI document, validated by the independent `openapi-spec-validator`, and every example
/// body checked against its schema by `jsonschema` (Draft 2020-12), both from PyPI: the Python
/// interpreter of the venv `.ci/python-tools.sh` makes, in `WEBHOOKS_TEST_PYTHON`.
#[test]
fn openapi_passes_an_independent_validator() {
    let Ok(python) = std::env::var("WEBHOOKS_TEST_PYTHON") else {
        println!("skipped: set WEBHOOKS_TEST_PYTHON (bash .ci/python-tools.sh prints it)");
        return;
    };
    let doc = catalog().event::<RangerHired>().openapi();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let script = r#"
import json, sys
import jsonschema
from openapi_spec_validator import validate
doc = json.load(open(sys.argv[1]))
validate(doc)
checked = 0
for name, item in doc["webhooks"].items():
    content = item["post"]["requestBody"]["content"]["application/json"]
    if "example" in content:
        jsonschema.Draft202012Validator(content["schema"]).validate(content["example"])
        checked += 1
print("valid; examples checked:", checked)
"#;
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("examples checked: 3"), "{stdout}");
}
