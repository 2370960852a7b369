//! `#[derive(WebhookEvent)]`: names, labels and data, as a user of `webhooks` sees them.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;
use serde_json::{Value, json};
use webhooks::{Labels, WebhookEvent};

/// The data of an event as JSON, through the trait (what the runtime puts under `data`).
fn data<E: WebhookEvent>(event: &E) -> Value {
    struct Data<'a, E>(&'a E);
    impl<E: WebhookEvent> Serialize for Data<'_, E> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.0.serialize_data(s)
        }
    }
    serde_json::to_value(Data(event)).expect("serializable")
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|&(k, v)| (k, v.to_owned())).collect()
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(u32);

#[derive(Serialize)]
struct Resolution {
    outcome: String,
    #[serde(rename = "by")]
    resolved_by: String,
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "bear_attack")]
enum BearAttack {
    #[webhook(action = "reported")]
    Reported {
        id: u64,
        #[webhook(label)]
        county: String,
        severity: u8,
    },
    #[webhook(action = "resolved")]
    Resolved(Resolution),
    #[webhook(action = "archived")]
    Archived,
}

#[test]
fn newtype_struct() {
    assert_eq!(RandomNumber::EVENT_TYPES, &["random_number:generate"]);
    assert_eq!(RandomNumber(863).event_type(), "random_number:generate");
    assert_eq!(data(&RandomNumber(863)), json!(863));
    assert!(RandomNumber(863).labels().is_empty());
}

#[test]
fn enum_names_in_declaration_order() {
    assert_eq!(
        BearAttack::EVENT_TYPES,
        &[
            "bear_attack:reported",
            "bear_attack:resolved",
            "bear_attack:archived"
        ]
    );
    let reported = BearAttack::Reported {
        id: 1,
        county: "denver".into(),
        severity: 3,
    };
    assert_eq!(reported.event_type(), "bear_attack:reported");
    let resolved = BearAttack::Resolved(Resolution {
        outcome: "left".into(),
        resolved_by: "ranger".into(),
    });
    assert_eq!(resolved.event_type(), "bear_attack:resolved");
    assert_eq!(BearAttack::Archived.event_type(), "bear_attack:archived");
}

#[test]
fn enum_variants_serialize_as_their_content() {
    let reported = BearAttack::Reported {
        id: 1,
        county: "denver".into(),
        severity: 3,
    };
    assert_eq!(
        data(&reported),
        json!({"id": 1, "county": "denver", "severity": 3})
    );
    let resolved = BearAttack::Resolved(Resolution {
        outcome: "left".into(),
        resolved_by: "ranger".into(),
    });
    assert_eq!(data(&resolved), json!({"outcome": "left", "by": "ranger"}));
    assert_eq!(data(&BearAttack::Archived), Value::Null);
}

#[test]
fn enum_variant_labels() {
    let reported = BearAttack::Reported {
        id: 1,
        county: "denver".into(),
        severity: 3,
    };
    assert_eq!(reported.labels(), labels(&[("county", "denver")]));
    assert!(BearAttack::Archived.labels().is_empty());
}

#[derive(Serialize, WebhookEvent)]
#[webhook(action = "placed")]
struct OrderPlaced {
    #[webhook(label)]
    account: u64,
    #[webhook(label = "shop")]
    shop_id: String,
    #[serde(rename = "total_cents")]
    total: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[webhook(label)]
    #[serde(skip)]
    region: Option<&'static str>,
}

#[test]
fn default_resource_is_snake_case_type_name() {
    assert_eq!(OrderPlaced::EVENT_TYPES, &["order_placed:placed"]);
}

#[test]
fn struct_labels_named_renamed_and_optional() {
    let order = OrderPlaced {
        account: 42,
        shop_id: "s-1".into(),
        total: 995,
        note: None,
        region: Some("eu"),
    };
    assert_eq!(
        order.labels(),
        labels(&[("account", "42"), ("shop", "s-1"), ("region", "eu")])
    );
    let order = OrderPlaced {
        region: None,
        ..order
    };
    assert_eq!(
        order.labels(),
        labels(&[("account", "42"), ("shop", "s-1")])
    );
}

#[test]
fn serde_attributes_are_honoured() {
    let order = OrderPlaced {
        account: 42,
        shop_id: "s-1".into(),
        total: 995,
        note: None,
        region: Some("eu"),
    };
    assert_eq!(
        data(&order),
        json!({"account": 42, "shop_id": "s-1", "total_cents": 995})
    );
    let order = OrderPlaced {
        note: Some("gift".into()),
        ..order
    };
    assert_eq!(
        data(&order),
        json!({"account": 42, "shop_id": "s-1", "total_cents": 995, "note": "gift"})
    );
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "system", action = "ping")]
struct Ping;

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "point", action = "moved")]
struct Moved(i32, i32);

#[test]
fn unit_and_tuple_structs() {
    assert_eq!(Ping.event_type(), "system:ping");
    assert_eq!(data(&Ping), Value::Null);
    assert_eq!(data(&Moved(1, -2)), json!([1, -2]));
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "billing.invoice", action = "paid")]
struct InvoicePaid<'a, T: Serialize + fmt::Display> {
    #[webhook(label)]
    customer: &'a str,
    amount: T,
    #[webhook(label = "currency")]
    currency: Cow<'a, str>,
}

#[test]
fn generics_and_lifetimes() {
    let paid = InvoicePaid {
        customer: "cus_1",
        amount: 12.5,
        currency: Cow::Borrowed("eur"),
    };
    assert_eq!(
        InvoicePaid::<'_, f64>::EVENT_TYPES,
        &["billing.invoice:paid"]
    );
    assert_eq!(paid.event_type(), "billing.invoice:paid");
    assert_eq!(
        paid.labels(),
        labels(&[("customer", "cus_1"), ("currency", "eur")])
    );
    assert_eq!(
        data(&paid),
        json!({"customer": "cus_1", "amount": 12.5, "currency": "eur"})
    );
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", separator = ".")]
enum Invoice<T> {
    #[webhook(action = "created")]
    Created(T),
    #[webhook(action = "line_added")]
    LineAdded(u32, #[webhook(label = "sku")] String),
    #[webhook(action = "voided")]
    Voided {
        #[webhook(label)]
        #[serde(rename = "why")]
        reason: String,
    },
}

#[test]
fn dot_separator_and_every_variant_kind() {
    assert_eq!(
        Invoice::<u8>::EVENT_TYPES,
        &["invoice.created", "invoice.line_added", "invoice.voided"]
    );
    assert_eq!(data(&Invoice::Created(vec![1, 2])), json!([1, 2]));
    let line = Invoice::<()>::LineAdded(3, "sku-9".into());
    assert_eq!(data(&line), json!([3, "sku-9"]));
    assert_eq!(line.labels(), labels(&[("sku", "sku-9")]));
    let voided = Invoice::<()>::Voided {
        reason: "dup".into(),
    };
    assert_eq!(data(&voided), json!({"why": "dup"}));
    // The label is named after the Rust field, whatever serde calls it.
    assert_eq!(voided.labels(), labels(&[("reason", "dup")]));
}

#[derive(Serialize, WebhookEvent)]
#[serde(tag = "kind")]
enum Tagged {
    #[webhook(action = "a")]
    A { x: u8 },
}

#[test]
fn other_serde_enum_representations_are_kept() {
    assert_eq!(Tagged::EVENT_TYPES, &["tagged:a"]);
    assert_eq!(data(&Tagged::A { x: 1 }), json!({"kind": "A", "x": 1}));
}

#[test]
fn references_to_events_are_events() {
    let event = &RandomNumber(7);
    assert_eq!(
        <&RandomNumber as WebhookEvent>::EVENT_TYPES,
        RandomNumber::EVENT_TYPES
    );
    assert_eq!(WebhookEvent::event_type(&event), "random_number:generate");
    assert_eq!(data(&event), json!(7));
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "invoice", action = "paid")]
struct KeyedInvoicePaid {
    id: u64,
    #[webhook(ordering_key)]
    customer: String,
}

#[test]
fn struct_ordering_key() {
    let paid = KeyedInvoicePaid {
        id: 1,
        customer: "cus_1".into(),
    };
    assert_eq!(paid.ordering_key(), Some("cus_1".to_owned()));
    // Through a reference too.
    assert_eq!(WebhookEvent::ordering_key(&&paid), Some("cus_1".to_owned()));
    // The key is not a label, and the data is unchanged.
    assert!(paid.labels().is_empty());
    assert_eq!(data(&paid), json!({"id": 1, "customer": "cus_1"}));
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "point", action = "moved")]
struct KeyedMoved(i32, #[webhook(ordering_key)] u32);

#[test]
fn tuple_struct_ordering_key() {
    assert_eq!(KeyedMoved(-1, 42).ordering_key(), Some("42".to_owned()));
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "customer", action = "updated")]
struct CustomerUpdated {
    #[webhook(ordering_key)]
    account: Option<u64>,
    name: String,
}

#[test]
fn optional_ordering_key() {
    let updated = CustomerUpdated {
        account: Some(7),
        name: "Ada".into(),
    };
    assert_eq!(updated.ordering_key(), Some("7".to_owned()));
    let updated = CustomerUpdated {
        account: None,
        ..updated
    };
    assert_eq!(updated.ordering_key(), None);
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "shipment")]
enum Shipment {
    #[webhook(action = "created")]
    Created {
        id: u64,
        #[webhook(ordering_key)]
        order: u64,
    },
    #[webhook(action = "moved")]
    Moved(#[webhook(ordering_key)] String, u32),
    #[webhook(action = "noted")]
    Noted {
        #[webhook(ordering_key)]
        order: Option<u64>,
        note: String,
    },
    #[webhook(action = "lost")]
    Lost { id: u64 },
    #[webhook(action = "archived")]
    Archived,
}

#[test]
fn enum_ordering_keys_per_variant() {
    let created = Shipment::Created { id: 1, order: 9 };
    assert_eq!(created.ordering_key(), Some("9".to_owned()));
    let moved = Shipment::Moved("ord-9".into(), 3);
    assert_eq!(moved.ordering_key(), Some("ord-9".to_owned()));
    let noted = Shipment::Noted {
        order: Some(9),
        note: "fragile".into(),
    };
    assert_eq!(noted.ordering_key(), Some("9".to_owned()));
    let noted = Shipment::Noted {
        order: None,
        note: "fragile".into(),
    };
    assert_eq!(noted.ordering_key(), None);
    // Variants without a key field have none.
    assert_eq!(Shipment::Lost { id: 1 }.ordering_key(), None);
    assert_eq!(Shipment::Archived.ordering_key(), None);
}

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "order", action = "placed")]
struct LabelledAndKeyed {
    #[webhook(label, ordering_key)]
    account: u64,
    #[webhook(label = "shop")]
    shop_id: String,
}

#[test]
fn a_field_can_be_both_label_and_ordering_key() {
    let placed = LabelledAndKeyed {
        account: 42,
        shop_id: "s-1".into(),
    };
    assert_eq!(placed.ordering_key(), Some("42".to_owned()));
    assert_eq!(
        placed.labels(),
        labels(&[("account", "42"), ("shop", "s-1")])
    );
}

#[test]
fn no_ordering_key_without_the_attribute() {
    assert_eq!(RandomNumber(863).ordering_key(), None);
    assert_eq!(Ping.ordering_key(), None);
    let order = OrderPlaced {
        account: 42,
        shop_id: "s-1".into(),
        total: 995,
        note: None,
        region: Some("eu"),
    };
    assert_eq!(order.ordering_key(), None);
    let reported = BearAttack::Reported {
        id: 1,
        county: "denver".into(),
        severity: 3,
    };
    assert_eq!(reported.ordering_key(), None);
    assert_eq!(
        Invoice::<()>::LineAdded(3, "sku-9".into()).ordering_key(),
        None
    );
}

#[derive(Debug, PartialEq, Serialize, serde::Deserialize, WebhookEvent)]
#[webhook(resource = "light")]
enum Light {
    #[webhook(action = "on")]
    On,
    #[webhook(action = "off")]
    Off,
    #[webhook(action = "dimmed")]
    Dimmed(u8),
    #[webhook(action = "moved")]
    Moved {
        #[serde(rename = "to")]
        room: String,
    },
}

#[test]
fn enum_data_reads_back_by_event_name() {
    let read = |event_type: &str, data: Value| Light::deserialize_data(event_type, data);
    // The same content, `null`, is either unit variant: the event name decides.
    assert_eq!(read("light:on", Value::Null).unwrap(), Light::On);
    assert_eq!(read("light:off", Value::Null).unwrap(), Light::Off);
    assert_eq!(read("light:dimmed", json!(40)).unwrap(), Light::Dimmed(40));
    let moved = Light::Moved {
        room: "hall".into(),
    };
    assert_eq!(read("light:moved", data(&moved)).unwrap(), moved);
    assert!(read("light:dimmed", json!("40")).is_err());
    let error = read("light:flickered", Value::Null).unwrap_err();
    assert!(error.to_string().contains("`light:flickered`"), "{error}");
}

#[test]
fn struct_data_reads_back_as_serde_reads_it() {
    #[derive(Debug, PartialEq, Serialize, serde::Deserialize, WebhookEvent)]
    #[webhook(resource = "random_number", action = "generate")]
    struct Number(u32);
    assert_eq!(
        Number::deserialize_data("random_number:generate", json!(863)).unwrap(),
        Number(863)
    );
}
