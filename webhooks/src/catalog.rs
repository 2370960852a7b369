//! [`Catalog`]: the events a sender publishes, as a contract receivers can read — each event's
//! name, description, deprecation, example and data schema, as OpenAPI 3.1 or as an HTML page.

use serde_json::{Value, json};

mod html;

use crate::WebhookEvent;
use crate::event::Data;

/// The events an application sends, described for the people and tools that receive them.
///
/// ```
/// # use serde::Serialize;
/// # use webhooks::{Catalog, WebhookEvent};
/// /// A random number was drawn.
/// #[derive(Serialize, WebhookEvent)]
/// #[webhook(resource = "random_number", action = "generate", example = "example")]
/// struct RandomNumber(u32);
///
/// fn example() -> RandomNumber {
///     RandomNumber(863)
/// }
///
/// let catalog = Catalog::new().event::<RandomNumber>();
/// let event = &catalog.events()[0];
/// assert_eq!(event.name(), "random_number:generate");
/// assert_eq!(event.description(), Some("A random number was drawn."));
/// assert_eq!(event.example(), Some(serde_json::json!(863)));
/// assert!(catalog.openapi()["webhooks"]["random_number:generate"]["post"].is_object());
/// assert!(catalog.html().contains("random_number:generate"));
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct Catalog {
    events: Vec<CatalogEvent>,
}

/// One event of a [`Catalog`].
#[derive(Debug, Clone)]
pub struct CatalogEvent {
    name: &'static str,
    description: Option<&'static str>,
    deprecated: Option<&'static str>,
    example: Option<Value>,
    data_schema: Option<Value>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every event of `T`, in the order of [`WebhookEvent::EVENT_TYPES`].
    ///
    /// # Panics
    ///
    /// When an event name is already in the catalog (two types publishing the same name), when
    /// an example is a different event than the one it is attached to, or when an example's data
    /// cannot be serialized: each is a mistake in the program, found the first time the catalog
    /// is built (a test that builds it catches them all). [`Catalog::try_event`] returns them
    /// instead.
    pub fn event<T: WebhookEvent + Sized>(self) -> Self {
        match self.try_event::<T>() {
            Ok(catalog) => catalog,
            Err(message) => panic!("{message}"),
        }
    }

    /// [`Catalog::event`], returning the mistake as a message instead of panicking.
    pub fn try_event<T: WebhookEvent + Sized>(mut self) -> Result<Self, String> {
        for &name in T::EVENT_TYPES {
            if self.events.iter().any(|e| e.name == name) {
                return Err(format!(
                    "duplicate event name `{name}` in the catalog: `{}` names it again",
                    std::any::type_name::<T>()
                ));
            }
            let doc = T::EVENT_DOCS.iter().find(|d| d.name() == name);
            let example = match T::example(name) {
                Some(example) => {
                    let actual = example.event_type();
                    if actual != name {
                        return Err(format!(
                            "the example of `{name}` is a `{actual}` event: its function must \
                             return the variant of `{name}`"
                        ));
                    }
                    let data = serde_json::to_value(Data(&example)).map_err(|e| {
                        format!("the example of `{name}` cannot be serialized: {e}")
                    })?;
                    Some(data)
                }
                None => None,
            };
            self.events.push(CatalogEvent {
                name,
                description: doc.and_then(|d| d.description()),
                deprecated: doc.and_then(|d| d.deprecated()),
                example,
                data_schema: T::data_schema(name),
            });
        }
        Ok(self)
    }

    /// The events, one per event name, in the order they were added.
    pub fn events(&self) -> &[CatalogEvent] {
        &self.events
    }

    /// An OpenAPI 3.1 document whose `webhooks` section has one operation per event: a `POST`
    /// of the compact envelope (`{"id", "event", "data"}`) signed with the Standard Webhooks
    /// headers, answered with a 2xx, or 410 to unsubscribe.
    pub fn openapi(&self) -> Value {
        let mut webhooks = serde_json::Map::new();
        for event in &self.events {
            webhooks.insert(event.name.to_owned(), json!({ "post": event.operation() }));
        }
        json!({
            "openapi": "3.1.0",
            "info": {
                "title": "Webhooks",
                "version": "1.0.0",
                "description": "The events this service sends. Each is POSTed as JSON, signed \
                    as Standard Webhooks specifies (headers `webhook-id`, `webhook-timestamp`, \
                    `webhook-signature`).",
            },
            "webhooks": webhooks,
        })
    }

    /// A self-contained HTML page (inline CSS, no scripts, no network) documenting the events:
    /// names, descriptions, deprecations, schemas, example bodies, and how to verify signatures.
    pub fn html(&self) -> String {
        html::render(self)
    }
}

impl CatalogEvent {
    /// The event's name, e.g. `bear_attack:reported`.
    pub fn name(&self) -> &str {
        self.name
    }

    /// The doc comment of the event's variant or struct, else of its type.
    pub fn description(&self) -> Option<&str> {
        self.description
    }

    /// The event name, for as long as the program runs (it comes from the event's type).
    #[cfg(all(feature = "axum", feature = "runtime"))]
    pub(crate) fn static_name(&self) -> &'static str {
        self.name
    }

    /// `Some(note)` when the event is deprecated; the note may be empty.
    pub fn deprecated(&self) -> Option<&str> {
        self.deprecated
    }

    /// The example's `data`, as sent.
    pub fn example(&self) -> Option<Value> {
        self.example.clone()
    }

    /// The JSON Schema of the event's `data`, when the type provides one
    /// ([`WebhookEvent::data_schema`]).
    pub fn data_schema(&self) -> Option<&Value> {
        self.data_schema.as_ref()
    }

    /// The JSON Schema of the whole body in `envelope`, with this event's data schema (`{}`
    /// when unknown).
    pub fn body_schema(&self, envelope: crate::Envelope) -> Value {
        let data = self.data_schema.clone().unwrap_or_else(|| json!({}));
        match envelope {
            crate::Envelope::Compact => json!({
                "type": "object",
                "required": ["id", "event", "data"],
                "properties": {
                    "id": { "type": "string", "description": "The message id, `msg_…`." },
                    "event": { "const": self.name },
                    "data": data,
                },
            }),
            crate::Envelope::Standard => json!({
                "type": "object",
                "required": ["type", "timestamp", "data"],
                "properties": {
                    "type": { "const": self.name },
                    "timestamp": { "type": "string", "format": "date-time" },
                    "data": data,
                },
            }),
        }
    }

    /// An example body in the compact envelope, if the event has an example.
    pub fn example_body(&self) -> Option<Value> {
        let data = self.example.clone()?;
        Some(json!({
            "id": "msg_2n5CFx3ZV8pGm1x0Xh8Ye1dWqjR",
            "event": self.name,
            "data": data,
        }))
    }

    /// The OpenAPI operation that delivers this event.
    fn operation(&self) -> Value {
        let mut content = json!({ "schema": self.body_schema(crate::Envelope::Compact) });
        if let Some(body) = self.example_body() {
            content["example"] = body;
        }
        let mut operation = json!({
            "operationId": self.name.replace([':', '.'], "_"),
            "summary": self.name,
            "parameters": headers(),
            "requestBody": {
                "required": true,
                "content": { "application/json": content },
            },
            "responses": {
                "200": { "description": "Received. Any 2xx status acknowledges the delivery." },
                "410": {
                    "description": "Gone: the endpoint no longer wants events; its \
                        subscription is disabled.",
                },
            },
        });
        if let Some(description) = self.description {
            operation["description"] = json!(description);
        }
        if let Some(note) = self.deprecated {
            operation["deprecated"] = json!(true);
            if !note.is_empty() {
                let description = match self.description {
                    Some(d) => format!("{d}\n\nDeprecated: {note}"),
                    None => format!("Deprecated: {note}"),
                };
                operation["description"] = json!(description);
            }
        }
        operation
    }
}

/// The Standard Webhooks headers, as OpenAPI parameters.
pub(crate) fn headers() -> Value {
    let header = |name: &str, description: &str, example: &str| {
        json!({
            "name": name,
            "in": "header",
            "required": true,
            "description": description,
            "schema": { "type": "string" },
            "example": example,
        })
    };
    json!([
        header(
            "webhook-id",
            "The message id; the same on every attempt, to drop duplicates.",
            "msg_2n5CFx3ZV8pGm1x0Xh8Ye1dWqjR",
        ),
        header(
            "webhook-timestamp",
            "When this attempt was signed, in seconds since the Unix epoch.",
            "1764966000",
        ),
        header(
            "webhook-signature",
            "Space-separated signatures: `v1,<base64 HMAC-SHA256>` or `v1a,<base64 Ed25519>` \
             of `{webhook-id}.{webhook-timestamp}.{body}`.",
            "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
        ),
    ])
}

impl Catalog {
    /// Checks that each pattern matches at least one event of the catalog; the first that
    /// matches none is refused, with the nearest event name (or `resource:*`) suggested.
    pub(crate) fn check_patterns(&self, patterns: &[String]) -> Result<(), crate::Error> {
        for text in patterns {
            let Ok(pattern) = crate::EventPattern::parse(text) else {
                continue; // refused as malformed elsewhere, with its own error
            };
            if self.events.iter().any(|e| pattern.matches(e.name)) {
                continue;
            }
            return Err(crate::Error::UnknownEventType {
                pattern: text.clone(),
                suggestion: self.nearest(text),
            });
        }
        Ok(())
    }

    /// The event name, or wildcard of an event's resource, closest to `text` (edit distance),
    /// if one is close enough to be a plausible typo.
    fn nearest(&self, text: &str) -> Option<String> {
        let candidates = self.events.iter().flat_map(|e| {
            let wildcard = e
                .name
                .rfind([':', '.'])
                .map(|at| format!("{}*", &e.name[..=at]));
            std::iter::once(e.name.to_owned()).chain(wildcard)
        });
        candidates
            .map(|c| (edit_distance(text, &c), c))
            .filter(|(d, c)| *d <= (c.len() / 3).max(2))
            .min_by_key(|(d, _)| *d)
            .map(|(_, c)| c)
    }
}

/// Levenshtein distance over bytes (event names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod check_tests {
    use super::edit_distance;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(
            edit_distance("bear_attack:reported", "bear_attack:reported"),
            0
        );
        assert_eq!(
            edit_distance("bear_atack:reported", "bear_attack:reported"),
            1
        );
        assert_eq!(
            edit_distance("bear_attack:repotred", "bear_attack:reported"),
            2
        );
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
