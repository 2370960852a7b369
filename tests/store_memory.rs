//! The `Store` conformance suite on `MemoryStore`, the reference implementation.

#[macro_use]
#[path = "conformance/mod.rs"]
mod conformance;

use webhooks::store::MemoryStore;

conformance_suite!(async { (MemoryStore::new(), ()) });
