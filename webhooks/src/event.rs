//! The [`WebhookEvent`] trait: what an application's event types implement, usually by derive.

use crate::Labels;

/// A type whose values are webhook events.
///
/// Derive it: the attributes name the events, and serde serializes the data. A struct is one
/// event; an enum is one event per variant.
///
/// ```
/// use serde::Serialize;
/// use webhooks::WebhookEvent;
///
/// #[derive(Serialize, WebhookEvent)]
/// #[webhook(resource = "random_number", action = "generate")]
/// struct RandomNumber(u32);
///
/// assert_eq!(RandomNumber::EVENT_TYPES, &["random_number:generate"]);
/// assert_eq!(RandomNumber(863).event_type(), "random_number:generate");
///
/// #[derive(Serialize)]
/// struct Resolution {
///     outcome: String,
/// }
///
/// #[derive(Serialize, WebhookEvent)]
/// #[webhook(resource = "bear_attack")]
/// enum BearAttack {
///     #[webhook(action = "reported")]
///     Reported {
///         #[webhook(ordering_key)]
///         id: u64,
///         #[webhook(label)]
///         county: String,
///         severity: u8,
///     },
///     #[webhook(action = "resolved")]
///     Resolved(Resolution),
///     #[webhook(action = "archived")]
///     Archived,
/// }
///
/// assert_eq!(
///     BearAttack::EVENT_TYPES,
///     &["bear_attack:reported", "bear_attack:resolved", "bear_attack:archived"]
/// );
/// let attack = BearAttack::Reported { id: 7, county: "denver".into(), severity: 3 };
/// assert_eq!(attack.labels().get("county"), Some("denver"));
/// assert_eq!(attack.ordering_key().as_deref(), Some("7"));
/// assert_eq!(BearAttack::Archived.ordering_key(), None);
/// ```
///
/// # Attributes
///
/// On the type:
/// - `resource = "..."`: the first part of every event name. On a struct it may be omitted and
///   defaults to the type's name in snake_case (`RandomNumber` → `random_number`); the same
///   default applies to an enum.
/// - `action = "..."` (struct only): the second part. An enum puts `action` on each variant.
/// - `separator = "."`: the character between the parts; `:` by default (as webhooks.rb did),
///   `.` for the Standard Webhooks and Svix style (`invoice.paid`).
/// - `crate = "path"`: where the `webhooks` crate is, if it was renamed.
///
/// On a variant: `action = "..."` (required).
///
/// For the [`Catalog`](crate::Catalog), on a struct or a variant:
/// - `deprecated`, or `deprecated = "note"`: the event is deprecated (OpenAPI's
///   `deprecated: true`, a note on the page).
/// - `example = "path::to::fn"`: a `fn() -> Self` whose value is the event's example; on a
///   variant it must return that variant (the catalog refuses another).
///
/// Doc comments are the events' descriptions: a variant's, else the type's. With the `schema`
/// feature a named field's doc comment describes it in the data schema.
///
/// On a named field: `label` makes the field a scope label named after the field;
/// `label = "name"` names it (and is how a tuple field becomes a label). The value is the
/// field's [`Display`](std::fmt::Display) text; an `Option<T>` field yields a label only when it
/// is `Some`.
///
/// On a field, named or tuple: `ordering_key` makes the field's value the event's
/// [ordering key](WebhookEvent::ordering_key), by the same rules (its `Display` text; an
/// `Option<T>` field yields a key only when it is `Some`). At most one field of a struct, or of
/// each variant, is the key; a variant without one has no key. A field may be both a label and
/// the key: `#[webhook(label, ordering_key)]`.
///
/// Names use lowercase ASCII letters, digits and `_`; a resource may also hold `.` between
/// segments (`billing.invoice`) unless `.` is the separator. A name is at most 128 bytes. Every
/// mistake is a compile error pointing at the offending token.
///
/// # The data
///
/// A struct's data is what serde makes of it (a newtype is its inner value: `RandomNumber(863)`
/// → `863`). An enum variant's data is its *content*, without serde's variant tag: a struct
/// variant is an object of its fields, a newtype variant its inner value, a unit variant `null`.
/// Field attributes such as `#[serde(rename)]` and `#[serde(skip_serializing_if)]` apply as
/// usual. (An enum with another serde representation, such as `#[serde(tag = "...")]`, keeps it.)
///
/// A type that also derives `Deserialize` reads its data back, which is how receivers get
/// [`Event`](crate::Event)s: a struct as serde reads it, an enum's content into the variant
/// whose event name the body carries ([`deserialize_data`](WebhookEvent::deserialize_data)).
///
/// Set `WEBHOOKS_DERIVE_DEBUG=1` while building to print the code the derive generates.
pub trait WebhookEvent {
    /// Every event name this type can produce, in declaration order.
    const EVENT_TYPES: &'static [&'static str];

    /// What the catalog says of each event besides its name, in the order of
    /// [`EVENT_TYPES`](Self::EVENT_TYPES): its description (the doc comment of the variant or
    /// struct, else of the type) and whether it is deprecated. The derive fills it in; by default
    /// it is empty and [`Catalog`](crate::Catalog) describes the events by name only.
    const EVENT_DOCS: &'static [EventDoc] = &[];

    /// An example of the event named `event_type`, from `#[webhook(example = "path::to::fn")]`
    /// (a `fn() -> Self`); `None` when it has none. [`Catalog`](crate::Catalog) shows its data.
    fn example(event_type: &str) -> Option<Self>
    where
        Self: Sized,
    {
        let _ = event_type;
        None
    }

    /// The JSON Schema of the `data` of the event named `event_type`. With the `schema` feature
    /// the derive writes it from the fields' types (their `schemars::JsonSchema`); by default
    /// `None`.
    fn data_schema(event_type: &str) -> Option<serde_json::Value> {
        let _ = event_type;
        None
    }

    /// The name of this event, such as `random_number:generate`.
    fn event_type(&self) -> &'static str;

    /// The labels that subscriptions can be scoped by. None by default.
    fn labels(&self) -> Labels {
        Labels::new()
    }

    /// The key that orders this event's deliveries. `None` by default.
    ///
    /// It matters only to subscriptions that are [`ordered(true)`](crate::Subscription::ordered):
    /// there, messages with the same ordering key are delivered first in, first out, while
    /// messages with different keys flow in parallel. Messages without a key share one queue.
    /// Give events that must arrive in order (those of one customer, one invoice, …) the same
    /// key and unrelated events different ones: a failing message then holds back only the
    /// messages with its key.
    fn ordering_key(&self) -> Option<String> {
        None
    }

    /// Serializes the event's data: the `data` member of the body receivers get.
    fn serialize_data<S>(&self, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: serde::Serializer;

    /// Deserializes an event from the `data` of a body whose event name is `event_type`: the
    /// inverse of [`serialize_data`](WebhookEvent::serialize_data), for types that also
    /// implement `Deserialize`. Receivers call it through [`Event::parse`](crate::Event::parse)
    /// and [`Verifier::event`](crate::Verifier::event).
    ///
    /// By default the data is `Self` as serde reads it, which is right for a struct. The derive
    /// overrides it for an enum, whose data is a variant's content without serde's tag: the
    /// variant is the one whose event is `event_type`. Types that only send never call it.
    fn deserialize_data<'de, D>(event_type: &str, deserializer: D) -> Result<Self, D::Error>
    where
        Self: Sized + serde::Deserialize<'de>,
        D: serde::Deserializer<'de>,
    {
        let _ = event_type;
        Self::deserialize(deserializer)
    }
}

impl<E: WebhookEvent + ?Sized> WebhookEvent for &E {
    const EVENT_TYPES: &'static [&'static str] = E::EVENT_TYPES;
    const EVENT_DOCS: &'static [EventDoc] = E::EVENT_DOCS;

    fn event_type(&self) -> &'static str {
        (**self).event_type()
    }

    fn labels(&self) -> Labels {
        (**self).labels()
    }

    fn ordering_key(&self) -> Option<String> {
        (**self).ordering_key()
    }

    fn serialize_data<S>(&self, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: serde::Serializer,
    {
        (**self).serialize_data(serializer)
    }
}

/// Serializes an event's data with [`WebhookEvent::serialize_data`].
pub(crate) struct Data<'a, E: ?Sized>(pub(crate) &'a E);

impl<E: WebhookEvent + ?Sized> serde::Serialize for Data<'_, E> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_data(serializer)
    }
}

/// What the catalog says of one event besides its name: its description and deprecation. One per
/// event name, in [`WebhookEvent::EVENT_DOCS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventDoc {
    name: &'static str,
    description: Option<&'static str>,
    deprecated: Option<&'static str>,
}

impl EventDoc {
    /// For the derive (and hand-written impls): an event's name, description and deprecation
    /// note (`Some("")` when deprecated without a note).
    pub const fn new(
        name: &'static str,
        description: Option<&'static str>,
        deprecated: Option<&'static str>,
    ) -> Self {
        EventDoc {
            name,
            description,
            deprecated,
        }
    }

    /// The event's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The event's description.
    pub const fn description(&self) -> Option<&'static str> {
        self.description
    }

    /// `Some(note)` when the event is deprecated; the note may be empty.
    pub const fn deprecated(&self) -> Option<&'static str> {
        self.deprecated
    }
}
