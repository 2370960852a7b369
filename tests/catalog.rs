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
