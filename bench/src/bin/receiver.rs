//! The benchmark's receiver on its own: answers every request with `204 No Content` and counts
//! them (see `GET /count`). `webhooks-bench` starts the same server as a child process
//! (`webhooks-bench receiver`); this binary is for pointing other senders at it by hand.
//!
//! ```text
//! webhooks-bench-receiver [PORT [DELAY_MS [STATUS]]]
//! ```
//!
//! `PORT` 0 (the default) takes a free port, printed on the first line. `DELAY_MS` (0) makes a
//! slow endpoint, `STATUS` (204) a failing one: `webhooks-bench-receiver 9000 2000 503`.
#![allow(clippy::print_stdout)] // the first line names the port

#[path = "../receiver_server.rs"]
mod receiver_server;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let usage = "usage: webhooks-bench-receiver [PORT [DELAY_MS [STATUS]]]";
    let mut args = std::env::args().skip(1);
    let mut number = |default: u64| -> Result<u64, String> {
        match args.next() {
            Some(text) => text
                .parse()
                .map_err(|_| format!("{usage}; {text:?} is no number")),
            None => Ok(default),
        }
    };
    let port = u16::try_from(number(0)?).map_err(|_| format!("{usage}; that port is too large"))?;
    let delay_ms = number(0)?;
    let status = u16::try_from(number(204)?).map_err(|_| format!("{usage}; no such status"))?;
    receiver_server::run(
        port,
        false,
        receiver_server::Behaviour::new(delay_ms, status)?,
    )
}
