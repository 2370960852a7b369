//! The management API and the customer portal: an [`axum::Router`] the application mounts,
//! behind its own authentication, so that its customers can register their URLs, pick events,
//! see what was sent and replay it.
//!
//! (Being written; see /work/http-contract.md.)

mod portal;

pub use portal::Portal;
