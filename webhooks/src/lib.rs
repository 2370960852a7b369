//! Declare your webhook events as ordinary Rust types; `webhooks` turns them into the exact body
//! your customers' endpoints receive.
//!
//! ```
//! use serde::Serialize;
//! use webhooks::{Message, WebhookEvent};
//!
//! #[derive(Serialize, WebhookEvent)]
//! #[webhook(resource = "random_number", action = "generate")]
//! struct RandomNumber(u32);
//!
//! let message = Message::new(&RandomNumber(863))?;
//! assert_eq!(message.event_type(), "random_number:generate");
//! assert_eq!(
//!     message.body(),
//!     format!(r#"{{"id":"{}","event":"random_number:generate","data":863}}"#, message.id()).as_bytes(),
//! );
//! # Ok::<(), webhooks::Error>(())
//! ```
//!
//! # Delivering
//!
//! [`Webhooks`] matches each event against the subscriptions, commits it to a [`store`], and
//! delivers it in the background: signed, retried, scoped, guarded against SSRF.
//!
//! ```no_run
//! # use serde::Serialize;
//! # use webhooks::WebhookEvent;
//! # #[derive(Serialize, WebhookEvent)]
//! # #[webhook(resource = "random_number", action = "generate")]
//! # struct RandomNumber(u32);
//! use webhooks::{Subscription, Webhooks};
//!
//! # async fn run() -> Result<(), webhooks::Error> {
//! let hooks = Webhooks::open("webhooks.db").await?; // durable: one SQLite file
//! hooks.subscribe(Subscription::new("https://example.com/hooks")?.events(["random_number:*"])).await?;
//! hooks.send(&RandomNumber(863)).await?; // returns once committed
//! hooks.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! The delivery log ([`Webhooks::delivery_log`], [`Webhooks::undelivered`]), replay
//! ([`Webhooks::redeliver`], [`Webhooks::recover`]) and [`Notification`]s show what happened to
//! every event.
//!
//! # Declaring events
//!
//! Derive [`WebhookEvent`] next to serde's `Serialize`. A struct is one event, named
//! `resource:action`; an enum is one event per variant. Fields marked `#[webhook(label)]` become
//! [`Labels`] that subscriptions can be scoped by. Names are checked at compile time. See
//! [`WebhookEvent`] for every attribute.
//!
//! # The body
//!
//! [`Message::new`] serializes an event once into its body, in one of two [`Envelope`]s: the
//! compact `{"id","event","data"}` of webhooks.rb (the default) or the Standard Webhooks
//! `{"type","timestamp","data"}`.
//!
//! # Receiving
//!
//! A receiver in Rust derives `Deserialize` on the same types, and [`Verifier::event`] checks
//! the signature and the timestamp, then reads the body back into the type: an [`Event`] with
//! the event name, the id to deduplicate by, and the data.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use webhooks::{Event, EventError, Secret, Verifier, WebhookEvent};
//!
//! #[derive(Serialize, Deserialize, WebhookEvent)]
//! #[webhook(resource = "bear_attack")]
//! enum BearAttack {
//!     #[webhook(action = "reported")]
//!     Reported { county: String, severity: u8 },
//!     #[webhook(action = "archived")]
//!     Archived,
//! }
//!
//! fn handle(verifier: &Verifier, headers: &http::HeaderMap, body: &[u8]) -> Result<(), EventError> {
//!     let event: Event<BearAttack> = verifier.event(headers, body)?; // verify, then parse
//!     match &event.data {
//!         BearAttack::Reported { county, .. } => println!("{}: {county}", event.event_type()),
//!         BearAttack::Archived => {}
//!     }
//!     Ok(())
//! }
//! # let secret = Secret::generate();
//! # let message = webhooks::Message::new(&BearAttack::Archived)?;
//! # let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
//! # let now = i64::try_from(now)?;
//! # let id = message.id().to_string();
//! # let mut headers = http::HeaderMap::new();
//! # headers.insert("webhook-id", id.parse()?);
//! # headers.insert("webhook-timestamp", now.to_string().parse()?);
//! # headers.insert("webhook-signature", secret.sign(&id, now, message.body()).parse()?);
//! # handle(&Verifier::new(secret), &headers, message.body())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An [`EventError`] says whether the request failed verification (answer 401), is not an
//! envelope (400), or is an event the type does not know or data of the wrong shape (422):
//! [`EventError::status`]. [`Event::parse`] reads a body without verifying it.
//!
//! # Features
//!
//! - `verify`: the receiving side, always built: [`Secret`], [`Verifier`],
//!   [`signing::signature_header`], [`Event`], [`Message`], [`Labels`], the ids. A receiver
//!   depends on `typed-webhooks` with `default-features = false, features = ["verify"]` (and
//!   `"derive"` to share the event types) and pulls in no sqlx, no reqwest and no tokio.
//! - `runtime` (default; implied by `sqlite`, `postgres` and `test-util`): the sending side:
//!   [`Webhooks`], [`Builder`], the delivery runtime, [`store::MemoryStore`], the reqwest parts
//!   of [`ssrf`] ([`ssrf::GuardedResolver`], [`NetworkPolicy::configure`]). Brings reqwest and
//!   tokio.
//! - `derive` (default): `#[derive(WebhookEvent)]`.
//! - `sqlite` (default): [`store::SqliteStore`] and [`Webhooks::open`], the embedded durable
//!   store.
//! - `postgres`: `store::PostgresStore`, for many worker processes sharing one queue, and
//!   `Webhooks::send_in_tx`.
//! - `test-util`: [`testing::TestReceiver`], a scripted HTTP endpoint for tests.
//! - `metrics`: counters, gauges and histograms of the runtime through the `metrics` facade
//!   (deliveries by outcome, attempt latency, queue depth and lag; see [`metrics`] for the names).
//! - `schema`: [`CatalogEvent::data_schema`], each event's JSON Schema, written by the derive
//!   from the fields' types (`schemars::JsonSchema`; a type without it is any value) and
//!   published by [`Catalog::openapi`] and [`Catalog::html`].
//! - `axum` (implies `verify` only): [`axum::VerifiedEvent`] and [`axum::VerifiedBody`],
//!   extractors for axum 0.8 that read, verify and parse a request and answer a refused one
//!   themselves (401, 400, 413, 422). With `runtime` too: [`http::router`], the management
//!   API and customer portal an application mounts so its customers can register their URLs.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Without `runtime`, the modules shared with the sending side (subscription, pattern, retry,
// time, the store's types) keep helpers only the runtime calls.
#![cfg_attr(not(feature = "runtime"), allow(dead_code))]

/// Records a [`stages`] stamp (stage, key, count) with feature `bench-stages`; nothing
/// without it. Only the runtime stamps.
#[cfg(feature = "runtime")]
macro_rules! stage {
    ($stage:ident, $key:expr, $n:expr) => {
        #[cfg(feature = "bench-stages")]
        $crate::stages::stamp($crate::stages::Stage::$stage, $key, $n);
    };
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
#[cfg(feature = "runtime")]
mod builder;
mod catalog;
#[cfg(feature = "runtime")]
mod config;
mod delivery_log;
mod error;
mod event;
#[cfg(feature = "runtime")]
mod handle;
#[cfg(all(feature = "axum", feature = "runtime"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "axum", feature = "runtime"))))]
pub mod http;
mod id;
mod labels;
mod message;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod notification;
mod pattern;
mod receive;
mod retry;
#[cfg(feature = "runtime")]
mod runtime;
mod send_options;
pub mod signing;
pub mod ssrf;
#[cfg(feature = "bench-stages")]
#[doc(hidden)]
pub mod stages;
pub mod store;
mod subscription;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;
mod time;

#[doc(hidden)]
pub mod __private;

#[cfg(feature = "runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
pub use builder::Builder;
pub use catalog::{Catalog, CatalogEvent};
#[cfg(feature = "runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
pub use config::AutoDisable;
pub use delivery_log::{
    Attempt, AttemptErrorKind, AttemptOutcome, Cursor, Delivery, DeliveryQuery, DeliveryStatus,
    Page,
};
pub use error::Error;
pub use event::{EventDoc, WebhookEvent};
#[cfg(feature = "runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
pub use handle::Webhooks;
pub use id::{DeliveryId, MessageId, ParseIdError, SubscriptionId};
pub use labels::Labels;
pub use message::{Envelope, MAX_EVENT_TYPE_LEN, MAX_ORDERING_KEY_LEN, Message};
pub use notification::Notification;
pub use pattern::EventPattern;
pub use receive::{Event, EventError, ParseEventError};
pub use retry::RetryPolicy;
pub use send_options::{MAX_IDEMPOTENCY_KEY_LEN, SendOptions};
pub use signing::{Secret, Verifier};
pub use ssrf::NetworkPolicy;
pub use subscription::{DisableReason, Disabled, Subscription};

/// Derives [`WebhookEvent`](trait@WebhookEvent); see the trait for every attribute.
///
/// ```
/// use serde::Serialize;
/// use webhooks::WebhookEvent;
///
/// #[derive(Serialize, WebhookEvent)]
/// #[webhook(resource = "invoice", separator = ".")]
/// enum Invoice {
///     #[webhook(action = "paid")]
///     Paid { #[webhook(label = "account")] account_id: u64, cents: u64 },
///     #[webhook(action = "voided")]
///     Voided(String),
/// }
///
/// assert_eq!(Invoice::EVENT_TYPES, &["invoice.paid", "invoice.voided"]);
/// let paid = Invoice::Paid { account_id: 7, cents: 995 };
/// assert_eq!(paid.event_type(), "invoice.paid");
/// assert_eq!(paid.labels().get("account"), Some("7"));
/// ```
#[cfg(feature = "derive")]
pub use webhooks_derive::WebhookEvent;

/// The README's examples, compiled and run as doctests so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
