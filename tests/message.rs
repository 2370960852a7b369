//! `Message`: the exact body bytes receivers get, in both envelopes.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::{Value, json};
use webhooks::{Envelope, Error, Labels, Message, MessageId, WebhookEvent};

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "random_number", action = "generate")]
struct RandomNumber(u32);

#[derive(Serialize, WebhookEvent)]
#[webhook(resource = "bear_attack")]
enum BearAttack {
    #[webhook(action = "reported")]
    Reported {
        id: u64,
        #[webhook(label)]
        county: String,
    },
    #[webhook(action = "archived")]
    Archived,
}

#[test]
fn compact_envelope_exact_bytes() {
    let message = Message::new(&RandomNumber(863)).unwrap();
    let expected = format!(
        r#"{{"id":"{}","event":"random_number:generate","data":863}}"#,
        message.id()
    );
    assert_eq!(std::str::from_utf8(message.body()).unwrap(), expected);
    assert_eq!(message.event_type(), "random_number:generate");
}

#[test]
fn standard_envelope_exact_bytes() {
    let message = Message::with_envelope(&BearAttack::Archived, Envelope::Standard).unwrap();
    let body = std::str::from_utf8(message.body()).unwrap();
    let value: Value = serde_json::from_str(body).unwrap();
    let timestamp = value["timestamp"].as_str().unwrap();
    assert_eq!(
        body,
        format!(r#"{{"type":"bear_attack:archived","timestamp":"{timestamp}","data":null}}"#)
    );
    // RFC 3339, UTC, milliseconds: 2026-11-24T04:30:43.123Z
    assert_eq!(timestamp.len(), 24, "{timestamp}");
    assert!(
        timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
        "{timestamp}"
    );
}

#[test]
fn default_envelope_is_compact() {
    assert_eq!(Envelope::default(), Envelope::Compact);
}

#[test]
fn message_carries_labels_and_a_recent_timestamp() {
    let before = SystemTime::now() - Duration::from_millis(1);
    let message = Message::new(&BearAttack::Reported {
        id: 9,
        county: "denver".into(),
    })
    .unwrap();
    let labels: Labels = [("county", "denver")].into_iter().collect();
    assert_eq!(message.labels(), &labels);
    assert!(message.timestamp() >= before && message.timestamp() <= SystemTime::now());
    let body: Value = serde_json::from_slice(message.body()).unwrap();
    assert_eq!(
        body,
        json!({"id": message.id().to_string(), "event": "bear_attack:reported", "data": {"id": 9, "county": "denver"}})
    );
}

#[test]
fn ids_are_unique_prefixed_and_round_trip() {
    let a = Message::new(&RandomNumber(1)).unwrap().id();
    let b = Message::new(&RandomNumber(1)).unwrap().id();
    assert_ne!(a, b);
    assert!(a < b, "UUID v7 ids sort by creation");
    assert!(a.to_string().starts_with("msg_"));
    assert_eq!(a.to_string().parse::<MessageId>().unwrap(), a);
    for bad in [
        "",
        "msg_",
        "msg_xyz",
        "evt_0190f0f0f0f07000800000000000000a",
        "0190f0f0f0f07000800000000000000a",
    ] {
        assert!(bad.parse::<MessageId>().is_err(), "{bad:?}");
    }
}

struct BadKeys;

impl WebhookEvent for BadKeys {
    const EVENT_TYPES: &'static [&'static str] = &["bad:keys"];
    fn event_type(&self) -> &'static str {
        "bad:keys"
    }
    fn serialize_data<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // JSON objects need string keys: serde_json refuses this map.
        let map: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        map.serialize(s)
    }
}

#[test]
fn unserializable_data_is_a_typed_error() {
    let err = Message::new(&BadKeys).unwrap_err();
    assert!(
        matches!(&err, Error::Serialize { event_type, .. } if event_type == "bad:keys"),
        "{err:?}"
    );
    assert!(err.to_string().contains("bad:keys"), "{err}");
}

struct BadName;

impl WebhookEvent for BadName {
    const EVENT_TYPES: &'static [&'static str] = &["Bad Name"];
    fn event_type(&self) -> &'static str {
        "Bad Name"
    }
    fn serialize_data<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

#[test]
fn invalid_hand_written_event_name_is_a_typed_error() {
    let err = Message::new(&BadName).unwrap_err();
    assert!(matches!(err, Error::InvalidEventType { .. }), "{err:?}");
}

#[test]
fn body_is_shared_not_copied() {
    let message = Message::new(&RandomNumber(863)).unwrap();
    let clone = message.clone();
    assert_eq!(message.body().as_ptr(), clone.body().as_ptr());
}
