//! What runs in the background of a [`Webhooks`](crate::Webhooks) runtime, in the order a
//! delivery meets it:
//!
//! - [`shared`]: the state the handle, the dispatcher and the delivery tasks share, and the
//!   runtime's copy of the subscriptions (kept at the store's version);
//! - [`routing`]: that copy, indexed by event name, and each subscription's runtime state;
//! - [`dispatch`]: **where a delivery is claimed**, in leased batches;
//! - [`deliver`]: one attempt: wait for the slot, send, decide, **record**, notify;
//! - [`slots`]: the process's request slots, shared fairly among subscriptions;
//! - [`sender`]: **where a request is signed and sent**;
//! - [`rate_limit`]: send slots and the in-process limiter.
//!
//! Nothing here refers to the handle (`crate::handle`): it sits on top.

pub(crate) mod deliver;
pub(crate) mod dispatch;
pub(crate) mod observe;
pub(crate) mod rate_limit;
pub(crate) mod routing;
pub(crate) mod sender;
pub(crate) mod shared;
pub(crate) mod slots;
