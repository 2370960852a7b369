//! The benchmark's receiver on its own: answers every request with `204 No Content` and counts
//! them (see `GET /count`). `webhooks-bench` starts the same server as a child process
//! (`webhooks-bench receiver`); this binary is for pointing other senders at it by hand.
//!
//! ```text
//! webhooks-bench-receiver [PORT]    (default: a free port, printed on the first line)
//! ```
#![allow(clippy::print_stdout)] // the first line names the port

#[path = "../receiver_server.rs"]
mod receiver_server;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let port = match std::env::args().nth(1) {
        Some(text) => text
            .parse()
            .map_err(|_| format!("usage: webhooks-bench-receiver [PORT]; {text:?} is no port"))?,
        None => 0,
    };
    receiver_server::run(port, false)
}
