//! The management HTTP API (`webhooks::http::router`) as a client sees it: the router nested at
//! `/api` and served on loopback, called with reqwest, delivering to `TestReceiver`s, on a real
//! SQLite file. Every endpoint's happy path (`subscriptions`, `deliveries`), tenant isolation
//! on every endpoint (`tenancy`, on SQLite and, with `WEBHOOKS_TEST_POSTGRES_URL`, on
//! PostgreSQL), hostile input (`hostile`), and the OpenAPI document (below; validated by
//! `openapi-spec-validator` with `WEBHOOKS_TEST_PYTHON`, as `catalog.rs` does).
//!
//! Each check is of behaviour: the status, an `application/problem+json` body with the right
//! `type`, and what the store holds afterwards, read through the `Webhooks` handle.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;
#[path = "http_api/deliveries.rs"]
mod deliveries;
#[path = "http_api/harness.rs"]
mod harness;
#[path = "http_api/hostile.rs"]
mod hostile;
#[path = "http_api/subscriptions.rs"]
mod subscriptions;
#[path = "http_api/tenancy.rs"]
mod tenancy;

use harness::Server;

/// Every path of the contract, with its methods, relative to the mount point.
const PATHS: &[(&str, &[&str])] = &[
    ("/subscriptions", &["get", "post"]),
    ("/subscriptions/{id}", &["get", "patch", "delete"]),
    ("/subscriptions/{id}/enable", &["post"]),
    ("/subscriptions/{id}/disable", &["post"]),
    ("/subscriptions/{id}/rotate-secret", &["post"]),
    ("/subscriptions/{id}/test", &["post"]),
    ("/subscriptions/{id}/recover", &["post"]),
    ("/event-types", &["get"]),
    ("/deliveries", &["get"]),
    ("/deliveries/{id}", &["get"]),
    ("/deliveries/{id}/attempts", &["get"]),
    ("/deliveries/{id}/redeliver", &["post"]),
    ("/openapi.json", &["get"]),
    ("/portal", &["get"]),
];

/// `GET /openapi.json`: an OpenAPI 3.1 document naming every path and method of the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_path() {
    let server = Server::sqlite().await;
    let doc = server.get("alice", "openapi.json").await.ok(200).clone();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in PATHS {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is missing; the document has {:?}", paths.keys()));
        for method in *methods {
            assert!(item.get(*method).is_some(), "{method} {path} is missing");
        }
    }
}

/// The document passes the independent `openapi-spec-validator` (from PyPI: the interpreter of
/// the venv `.ci/python-tools.sh` makes, in `WEBHOOKS_TEST_PYTHON`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_passes_an_independent_validator() {
    let Ok(python) = std::env::var("WEBHOOKS_TEST_PYTHON") else {
        println!("skipped: set WEBHOOKS_TEST_PYTHON (bash .ci/python-tools.sh prints it)");
        return;
    };
    let server = Server::sqlite().await;
    let reply = server.get("alice", "openapi.json").await;
    reply.ok(200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, &reply.text).unwrap();
    let script = r#"
import json, sys
from openapi_spec_validator import validate
doc = json.load(open(sys.argv[1]))
validate(doc)
print("valid:", len(doc["paths"]), "paths")
"#;
    let output = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("valid:"), "{stdout}");
}
