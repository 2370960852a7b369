//! The receiving side: every shape the derive serializes parses back into an equal value, in both
//! envelopes; `Verifier::event` verifies then parses, and says what went wrong. (Past 600 lines:
//! one round trip per shape the derive and serde's attributes make, one case per error.)

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::borrow::Cow;
use std::fmt::{Debug, Display};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use webhooks::signing::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, signature_header};
use webhooks::{Envelope, Event, Message, ParseEventError, Secret, Verifier, WebhookEvent};

/// Serializes `event` in both envelopes and parses each body back: equal data, the same name,
/// the id (compact) or the timestamp (standard) of the message.
fn round_trip<T>(event: &T)
where
    T: WebhookEvent + DeserializeOwned + PartialEq + Debug,
{
    for envelope in [Envelope::Compact, Envelope::Standard] {
        let message = Message::with_envelope(event, envelope).unwrap();
        let body = String::from_utf8_lossy(message.body());
        let parsed = Event::<T>::parse(message.body())
            .unwrap_or_else(|e| panic!("{envelope:?} {body}: {e}"));
        assert_eq!(&parsed.data, event, "{envelope:?} {body}");
        assert_eq!(parsed.event_type(), event.event_type());
        if envelope == Envelope::Compact {
            assert_eq!(parsed.id(), Some(message.id().to_string().as_str()));
            assert_eq!(parsed.timestamp(), None);
        } else {
            assert_eq!(parsed.id(), None);
            assert_eq!(parsed.timestamp(), Some(message.timestamp()));
        }
    }
}

fn parse_err<T: WebhookEvent + DeserializeOwned + Debug>(body: &str) -> ParseEventError {
    Event::<T>::parse(body.as_bytes()).unwrap_err()
}

// Structs: newtype, unit, tuple, named fields with serde's and webhook's attributes.

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(u32);

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "account", action = "closed")]
struct AccountClosed(#[webhook(label = "account")] u64);

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "system", action = "ping")]
struct Ping;

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(action = "started")]
struct HTTPServer;

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "point", action = "moved")]
struct Moved(i32, i32, #[webhook(label = "layer")] String);

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(action = "placed")]
struct OrderPlaced {
    #[webhook(label)]
    account: u64,
    #[webhook(label = "shop")]
    shop_id: String,
    #[serde(rename = "total_cents")]
    total: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[webhook(label)]
    #[serde(skip)]
    region: Option<String>,
}

#[test]
fn structs_round_trip() {
    round_trip(&RandomNumber(863));
    round_trip(&AccountClosed(42));
    round_trip(&Ping);
    round_trip(&HTTPServer);
    round_trip(&Moved(1, -2, "base".into()));
    let order = OrderPlaced {
        account: 42,
        shop_id: "s-1".into(),
        total: 995,
        note: None,
        region: None,
    };
    round_trip(&order);
    round_trip(&OrderPlaced {
        note: Some("gift".into()),
        ..order
    });
}

#[test]
fn a_skipped_field_comes_back_as_its_default() {
    let order = OrderPlaced {
        account: 42,
        shop_id: "s-1".into(),
        total: 995,
        note: None,
        region: Some("eu".into()),
    };
    let message = Message::new(&order).unwrap();
    let event = Event::<OrderPlaced>::parse(message.body()).unwrap();
    assert_eq!(
        event.data,
        OrderPlaced {
            region: None,
            ..order
        }
    );
}

// Enums: every variant kind, renamed fields, labels in variants.

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Resolution {
    outcome: String,
    #[serde(rename = "by")]
    resolved_by: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
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
    #[webhook(action = "moved")]
    Moved(f64, f64),
    #[webhook(action = "archived")]
    Archived,
}

#[test]
fn enum_variants_round_trip() {
    round_trip(&BearAttack::Reported {
        id: 7,
        county: "denver".into(),
        severity: 3,
    });
    round_trip(&BearAttack::Resolved(Resolution {
        outcome: "left".into(),
        resolved_by: "ranger".into(),
    }));
    round_trip(&BearAttack::Moved(1.5, -2.0));
    round_trip(&BearAttack::Archived);
}

#[test]
fn the_event_name_picks_the_variant() {
    // The same content, `null`, read as two different unit variants.
    #[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
    #[webhook(resource = "invoice", separator = ".")]
    enum Invoice {
        #[webhook(action = "created")]
        Created,
        #[webhook(action = "line_added")]
        LineAdded,
    }
    let body = r#"{"type":"invoice.line_added","data":null}"#;
    let event = Event::<Invoice>::parse(body.as_bytes()).unwrap();
    assert_eq!(event.data, Invoice::LineAdded);
    assert_eq!(event.timestamp(), None);
    round_trip(&Invoice::Created);
    round_trip(&Invoice::LineAdded);
}

// Generics, const generics, borrowed-or-owned data, ordering keys.

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "billing.invoice", action = "paid")]
struct InvoicePaid<T: Display> {
    #[webhook(label)]
    customer: String,
    #[webhook(ordering_key)]
    amount: T,
    #[webhook(label = "currency")]
    currency: Cow<'static, str>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "measurement", action = "taken")]
struct Measured<T, const N: usize>
where
    T: Display,
{
    #[webhook(label)]
    unit: T,
    values: Vec<f64>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
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

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "job")]
enum Job<T: Serialize, E> {
    #[webhook(action = "done")]
    Done(T),
    #[webhook(action = "failed")]
    Failed { error: E },
}

#[test]
fn generics_round_trip() {
    round_trip(&InvoicePaid {
        customer: "cus_1".into(),
        amount: 12.5,
        currency: Cow::Borrowed("eur"),
    });
    round_trip(&Measured::<String, 2> {
        unit: "celsius".into(),
        values: vec![1.5, 2.0],
    });
    round_trip(&Invoice::Created(vec![1, 2]));
    round_trip(&Invoice::<()>::LineAdded(3, "sku-9".into()));
    round_trip(&Invoice::<()>::Voided {
        reason: "dup".into(),
    });
    // A generic variant whose content is itself an enum, tag and all.
    round_trip(&Invoice::Created(Job::<u8, String>::Done(1)));
    round_trip(&Job::<u8, String>::Done(1));
    round_trip(&Job::<u8, String>::Failed {
        error: "boom".into(),
    });
}

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "customer", action = "updated")]
struct CustomerUpdated {
    #[webhook(ordering_key)]
    account: Option<u64>,
    #[webhook(label)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
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
        #[serde(default, skip_serializing_if = "String::is_empty")]
        note: String,
    },
}

#[test]
fn optional_fields_and_ordering_keys_round_trip() {
    round_trip(&CustomerUpdated {
        account: Some(7),
        name: Some("Ada".into()),
    });
    round_trip(&CustomerUpdated {
        account: None,
        name: None,
    });
    round_trip(&Shipment::Created { id: 1, order: 9 });
    round_trip(&Shipment::Moved("ord-9".into(), 3));
    round_trip(&Shipment::Noted {
        order: Some(9),
        note: "fragile".into(),
    });
    round_trip(&Shipment::Noted {
        order: None,
        note: String::new(),
    });
}

// Names: raw identifiers, a renamed crate, a derive inside `macro_rules!`.

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(action = "changed")]
struct r#Match {
    #[webhook(label)]
    r#type: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "token")]
enum r#Token {
    #[webhook(action = "moved")]
    r#Move {
        #[webhook(label, ordering_key)]
        r#ref: u32,
    },
    #[webhook(action = "used")]
    #[allow(non_camel_case_types)]
    r#use,
}

mod renamed {
    use serde::{Deserialize, Serialize};
    use webhooks as hooks;

    #[derive(Debug, PartialEq, Serialize, Deserialize, hooks::WebhookEvent)]
    #[webhook(crate = "hooks", resource = "invoice")]
    pub(crate) enum Invoice {
        #[webhook(action = "paid")]
        Paid { cents: u64 },
        #[webhook(action = "voided")]
        Voided,
    }
}

macro_rules! event {
    ($name:ident, $action:literal, $label:ident) => {
        #[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
        #[webhook(resource = "generated")]
        enum $name {
            #[webhook(action = $action)]
            Made {
                #[webhook(label)]
                value: $label,
                #[webhook(label)]
                other: Option<$label>,
            },
        }
    };
}

event!(Made, "made", String);

#[test]
fn names_round_trip() {
    round_trip(&r#Match {
        r#type: "full".into(),
    });
    round_trip(&r#Token::r#Move { r#ref: 3 });
    round_trip(&r#Token::r#use);
    round_trip(&renamed::Invoice::Paid { cents: 995 });
    round_trip(&renamed::Invoice::Voided);
    round_trip(&Made::Made {
        value: "a".into(),
        other: None,
    });
}

// Serde's attributes on enums and variants.

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "door")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
enum Door {
    /// Serde leaves it out of deserialization, and numbers only the others: the variants after
    /// it must still be found.
    #[webhook(action = "painted")]
    #[serde(skip_deserializing)]
    Painted { colour: String },
    #[webhook(action = "opened")]
    #[serde(rename = "open", alias = "ajar")]
    Opened { by: String },
    #[webhook(action = "closed")]
    Closed(#[serde(with = "as_text")] u32),
    #[webhook(action = "locked")]
    #[serde(skip)]
    Locked,
    #[webhook(action = "knocked")]
    Knocked {},
}

/// A `with` module on a newtype variant's field.
mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &u32, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[test]
fn serde_variant_attributes_are_honoured() {
    round_trip(&Door::Opened { by: "ada".into() });
    round_trip(&Door::Closed(3));
    round_trip(&Door::Knocked {});
    let body = r#"{"event":"door:closed","data":"3"}"#;
    assert_eq!(
        Event::<Door>::parse(body.as_bytes()).unwrap().data,
        Door::Closed(3)
    );
    // `deny_unknown_fields` reaches the variant's fields.
    let error = parse_err::<Door>(r#"{"event":"door:opened","data":{"by":"ada","x":1}}"#);
    assert!(error.is_data(), "{error}");
    // A variant serde does not deserialize is an event the type names but cannot read.
    let painted = Message::new(&Door::Painted {
        colour: "red".into(),
    })
    .unwrap();
    let error = Event::<Door>::parse(painted.body()).unwrap_err();
    assert!(error.is_data(), "{error}");
    // (And one serde skips altogether cannot even be sent.)
    assert!(Message::new(&Door::Locked).is_err());
    for event in ["door:painted", "door:locked"] {
        let body = format!(r#"{{"event":"{event}","data":null}}"#);
        let error = parse_err::<Door>(&body);
        assert!(error.is_data(), "{error}");
        assert_eq!(error.event_type(), Some(event));
        assert!(
            error.to_string().contains("no variant of this type"),
            "{error}"
        );
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[serde(tag = "kind")]
enum Tagged {
    #[webhook(action = "a")]
    A { x: u8 },
    #[webhook(action = "b")]
    B { x: u8 },
}

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    #[webhook(action = "a")]
    A(u8),
    #[webhook(action = "b")]
    B,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[serde(untagged)]
enum Untagged {
    #[webhook(action = "number")]
    Number(u64),
    #[webhook(action = "text")]
    Text { text: String },
}

#[test]
fn other_enum_representations_round_trip_through_serde() {
    round_trip(&Tagged::A { x: 1 });
    round_trip(&Tagged::B { x: 2 });
    round_trip(&Adjacent::A(1));
    round_trip(&Adjacent::B);
    round_trip(&Untagged::Number(1));
    round_trip(&Untagged::Text { text: "hi".into() });
}

#[test]
fn data_that_names_another_event_is_refused() {
    // The tag says `B`, the envelope `tagged:a`.
    let error = parse_err::<Tagged>(r#"{"event":"tagged:a","data":{"kind":"B","x":1}}"#);
    assert!(error.is_data(), "{error}");
    assert!(
        error.to_string().contains("the data is a `tagged:b` event"),
        "{error}"
    );
    // Untagged, the shape decides.
    let error = parse_err::<Untagged>(r#"{"event":"untagged:text","data":7}"#);
    assert!(error.is_data(), "{error}");
}

// What `Event::parse` refuses.

#[test]
fn bodies_that_are_not_envelopes() {
    for body in [
        "",
        "not json",
        "[]",
        r#"["i","random_number:generate",null,null,1]"#,
        "863",
        r#"{"id":"msg_1","event":"random_number:generate"}"#,
        r#"{"data":863}"#,
        r#"{"event":"random_number:generate","type":"random_number:generate","data":863}"#,
        r#"{"event":7,"data":863}"#,
        r#"{"event":"random_number:generate","event":"random_number:generate","data":863}"#,
        r#"{"type":"random_number:generate","timestamp":"yesterday","data":863}"#,
        r#"{"type":"random_number:generate","timestamp":1700000000,"data":863}"#,
        r#"{"event":"random_number:generate","data":863} trailing"#,
    ] {
        let error = parse_err::<RandomNumber>(body);
        assert!(error.is_malformed(), "{body}: {error}");
        assert_eq!(error.event_type(), None);
        assert!(
            error
                .to_string()
                .starts_with("the body is not a webhook envelope"),
            "{error}"
        );
    }
    let error = parse_err::<RandomNumber>(r#"{"data":863}"#);
    assert!(
        error
            .to_string()
            .contains("missing field `event` (compact envelope) or `type`"),
        "{error}"
    );
}

#[test]
fn unknown_events_are_named() {
    let error = parse_err::<BearAttack>(r#"{"event":"bear_attack:eaten","data":null}"#);
    assert!(error.is_unknown_event());
    assert_eq!(error.event_type(), Some("bear_attack:eaten"));
    assert_eq!(
        error.to_string(),
        "unknown event `bear_attack:eaten`: expected `bear_attack:reported`, \
         `bear_attack:resolved`, `bear_attack:moved` or `bear_attack:archived`"
    );
    match error {
        ParseEventError::UnknownEvent {
            event_type,
            expected,
        } => {
            assert_eq!(event_type, "bear_attack:eaten");
            assert_eq!(expected, BearAttack::EVENT_TYPES);
        }
        other => panic!("{other:?}"),
    }
    // Another type's event, with a valid body.
    let message = Message::new(&RandomNumber(1)).unwrap();
    let error = Event::<Ping>::parse(message.body()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown event `random_number:generate`: expected `system:ping`"
    );
}

#[test]
fn data_of_the_wrong_shape() {
    let error = parse_err::<RandomNumber>(r#"{"event":"random_number:generate","data":"863"}"#);
    assert!(error.is_data());
    assert_eq!(error.event_type(), Some("random_number:generate"));
    assert!(
        error
            .to_string()
            .starts_with("the data of event `random_number:generate` does not match its type: "),
        "{error}"
    );
    // Each variant's content has its own shape.
    for (event, data) in [
        ("bear_attack:reported", r#"{"id":1}"#),
        ("bear_attack:resolved", "null"),
        ("bear_attack:moved", "[1.0]"),
        ("bear_attack:archived", "{}"),
    ] {
        let body = format!(r#"{{"event":"{event}","data":{data}}}"#);
        let error = parse_err::<BearAttack>(&body);
        assert!(error.is_data(), "{body}: {error}");
        assert_eq!(error.event_type(), Some(event));
    }
    // The source is serde_json's error.
    let error = parse_err::<Ping>(r#"{"event":"system:ping","data":1}"#);
    let source = std::error::Error::source(&error).expect("a source");
    assert!(source.is::<serde_json::Error>());
}

#[test]
fn other_senders_bodies() {
    // Members in another order, unknown members, whitespace, an offset timestamp.
    let body = r#" { "data" : {"id":1,"county":"denver","severity":3},
        "extra": [1, 2], "timestamp": "2021-02-25T16:02:10.5+01:00",
        "type": "bear_attack:reported" } "#;
    let event = Event::<BearAttack>::parse(body.as_bytes()).unwrap();
    assert_eq!(
        event.timestamp(),
        Some(UNIX_EPOCH + Duration::from_millis(1_614_265_330_500))
    );
    assert_eq!(event.id(), None);
    assert_eq!(
        event.into_data(),
        BearAttack::Reported {
            id: 1,
            county: "denver".into(),
            severity: 3
        }
    );
    // Escapes in the event name and the id.
    let body = r#"{"id":"msg_\u0031","event":"random_number:gener\u0061te","data":1}"#;
    let event = Event::<RandomNumber>::parse(body.as_bytes()).unwrap();
    assert_eq!(event.id(), Some("msg_1"));
    assert_eq!(event.event_type(), "random_number:generate");
}

// `Verifier::event`.

fn unix_now() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(now.as_secs()).unwrap()
}

fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(HEADER_ID, id.parse().unwrap());
    headers.insert(HEADER_TIMESTAMP, timestamp.to_string().parse().unwrap());
    headers.insert(HEADER_SIGNATURE, signature.parse().unwrap());
    headers
}

/// The headers the sender would send with `message`, signed by `secret` now.
fn signed(secret: &Secret, message: &Message) -> HeaderMap {
    let id = message.id().to_string();
    let timestamp = unix_now();
    headers(&id, timestamp, &secret.sign(&id, timestamp, message.body()))
}

#[test]
fn verified_compact_event() {
    let secret = Secret::generate();
    let attack = BearAttack::Reported {
        id: 7,
        county: "denver".into(),
        severity: 3,
    };
    let message = Message::new(&attack).unwrap();
    let headers = signed(&secret, &message);
    let event: Event<BearAttack> = Verifier::new(secret)
        .event(&headers, message.body())
        .unwrap();
    assert_eq!(event.id(), Some(message.id().to_string().as_str()));
    assert_eq!(event.event_type(), "bear_attack:reported");
    assert_eq!(event.data, attack);
    // The compact body has no time: the header's, in whole seconds.
    let sent = headers[HEADER_TIMESTAMP].to_str().unwrap().parse().unwrap();
    assert_eq!(
        event.timestamp(),
        Some(UNIX_EPOCH + Duration::from_secs(sent))
    );
}

#[test]
fn verified_standard_event_during_a_rotation() {
    let (old, new) = (Secret::generate(), Secret::generate());
    let message = Message::with_envelope(&RandomNumber(863), Envelope::Standard).unwrap();
    let id = "msg_from_the_header";
    let timestamp = 1_700_000_000;
    let signature = signature_header([&new, &old], id, timestamp, message.body());
    let headers = headers(id, timestamp, &signature);
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_060);
    let event = Verifier::new(old)
        .event_at::<RandomNumber>(&headers, message.body(), now)
        .unwrap();
    // The standard body has no id: the header's. Its own time is kept.
    assert_eq!(event.id(), Some(id));
    assert_eq!(event.timestamp(), Some(message.timestamp()));
    assert_eq!(event.data, RandomNumber(863));
}

#[test]
fn verification_errors_come_first() {
    let secret = Secret::generate();
    let verifier = Verifier::new(secret.clone());
    let message = Message::new(&RandomNumber(863)).unwrap();
    let good = signed(&secret, &message);

    // Signed with another secret, or the body changed after signing.
    let forged = signed(&Secret::generate(), &message);
    let error = verifier
        .event::<RandomNumber>(&forged, message.body())
        .unwrap_err();
    assert!(error.is_signature() && error.is_verify(), "{error}");
    assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
    let changed = br#"{"id":"msg_1","event":"random_number:generate","data":864}"#;
    let error = verifier.event::<RandomNumber>(&good, changed).unwrap_err();
    assert!(error.is_signature(), "{error}");
    // Even a body that is not JSON is a signature error first: it is never parsed.
    let error = verifier.event::<RandomNumber>(&good, b"junk").unwrap_err();
    assert!(error.is_signature() && !error.is_malformed(), "{error}");
    let mut no_v1 = good.clone();
    no_v1.insert(HEADER_SIGNATURE, "v1a,abc".parse().unwrap());
    let error = verifier
        .event::<RandomNumber>(&no_v1, message.body())
        .unwrap_err();
    assert!(error.is_signature(), "{error}");

    // A stale or future timestamp, and one that is not a timestamp.
    let later = SystemTime::now() + Duration::from_secs(600);
    let error = verifier
        .event_at::<RandomNumber>(&good, message.body(), later)
        .unwrap_err();
    assert!(error.is_timestamp() && !error.is_signature(), "{error}");
    assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
    let earlier = SystemTime::now() - Duration::from_secs(600);
    let error = verifier
        .event_at::<RandomNumber>(&good, message.body(), earlier)
        .unwrap_err();
    assert!(error.is_timestamp(), "{error}");
    let mut bad_time = good.clone();
    bad_time.insert(HEADER_TIMESTAMP, "soon".parse().unwrap());
    let error = verifier
        .event::<RandomNumber>(&bad_time, message.body())
        .unwrap_err();
    assert!(error.is_timestamp(), "{error}");

    // A missing header.
    for name in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
        let mut missing = good.clone();
        missing.remove(name);
        let error = verifier
            .event::<RandomNumber>(&missing, message.body())
            .unwrap_err();
        assert!(error.is_missing_header(), "{name}: {error}");
        assert!(error.to_string().contains(name), "{error}");
        assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
    }

    // No secrets: a configuration error, not the sender's.
    let error = Verifier::from_secrets([])
        .event::<RandomNumber>(&good, message.body())
        .unwrap_err();
    assert!(error.is_verify());
    assert_eq!(error.status(), http::StatusCode::INTERNAL_SERVER_ERROR);

    assert!(
        verifier
            .event::<RandomNumber>(&good, message.body())
            .is_ok()
    );
}

#[test]
fn parse_errors_of_authentic_bodies() {
    let secret = Secret::generate();
    let verifier = Verifier::new(secret.clone());
    let sign = |body: &[u8]| {
        let timestamp = unix_now();
        headers("msg_1", timestamp, &secret.sign("msg_1", timestamp, body))
    };

    let body = br#"{"event":"random_number:generate""#;
    let error = verifier
        .event::<RandomNumber>(&sign(body), body)
        .unwrap_err();
    assert!(error.is_malformed() && !error.is_verify(), "{error}");
    assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);

    let message = Message::new(&Ping).unwrap();
    let error = verifier
        .event::<RandomNumber>(&sign(message.body()), message.body())
        .unwrap_err();
    assert!(error.is_unknown_event(), "{error}");
    assert!(error.to_string().contains("`system:ping`"), "{error}");
    assert_eq!(error.status(), http::StatusCode::UNPROCESSABLE_ENTITY);

    let body = br#"{"event":"random_number:generate","data":-1}"#;
    let error = verifier
        .event::<RandomNumber>(&sign(body), body)
        .unwrap_err();
    assert!(error.is_data() && !error.is_unknown_event(), "{error}");
    assert_eq!(error.status(), http::StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        matches!(&error, webhooks::EventError::Parse(e) if e.event_type() == Some("random_number:generate")),
        "{error:?}"
    );
}

/// A hand-written impl: the trait's default `deserialize_data` reads the whole data as `Self`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Handwritten {
    n: u8,
}

impl WebhookEvent for Handwritten {
    const EVENT_TYPES: &'static [&'static str] = &["hand:written"];

    fn event_type(&self) -> &'static str {
        "hand:written"
    }

    fn serialize_data<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.serialize(serializer)
    }
}

#[test]
fn hand_written_impls_round_trip() {
    round_trip(&Handwritten { n: 3 });
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Address {
    city: String,
    zip: String,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "customer", action = "moved")]
struct CustomerMoved {
    id: u64,
    #[serde(flatten)]
    to: Address,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, WebhookEvent)]
#[webhook(resource = "store")]
enum Store {
    #[webhook(action = "opened")]
    Opened {
        #[webhook(label)]
        id: u64,
        #[serde(flatten)]
        at: Address,
    },
}

#[test]
fn flattened_fields_round_trip() {
    let to = Address {
        city: "Denver".into(),
        zip: "80202".into(),
    };
    round_trip(&CustomerMoved { id: 1, to });
    let at = Address {
        city: "Boulder".into(),
        zip: "80301".into(),
    };
    let opened = Store::Opened { id: 2, at };
    let message = Message::new(&opened).unwrap();
    assert!(
        message
            .body()
            .ends_with(br#""data":{"id":2,"city":"Boulder","zip":"80301"}}"#),
        "{message:?}"
    );
    round_trip(&opened);
}
