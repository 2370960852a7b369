//! Compile-time checks of `#[derive(WebhookEvent)]`: every mistake in `ui/` must fail with the
//! message in its `.stderr`, and everything in `ui/pass/` must compile.
//!
//! The messages come from the pinned toolchain (`rust-toolchain.toml`); regenerate them on purpose
//! with `TRYBUILD=overwrite cargo test -p webhooks-tests --test ui` and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
    t.pass("ui/pass/*.rs");
}
