//! The customer portal and the management API, as an application mounts them: the portal page
//! at `/`, `webhooks::http::router` at `/api`, behind a toy login.
//!
//! ```text
//! cargo run --example polis                                  # a receiver on http://localhost:9000
//! cargo run --example portal -- --allow-private              # then open http://127.0.0.1:8080
//! cargo run --example portal -- --port 8081 --db portal.db   # keep the endpoints between runs
//! ```
//!
//! The toy login: the page asks for your name and sends it as the header `x-demo-tenant` on
//! every API call; the application maps it to the label `tenant=NAME`, so each name is a
//! customer that sees and changes only its own endpoints and deliveries. A real application
//! takes the tenant from its session or token instead (see `webhooks::http::router`).
//!
//! The store is an embedded SQLite file (in a temporary directory unless `--db`). Failed
//! deliveries are retried quickly (after 1 s, then 2 s) and then given up, so that the portal
//! shows a failure, and its replay, within seconds. Webhooks go to private addresses (localhost
//! included) only with `--allow-private`, which a production sender must not do.

#![allow(clippy::print_stdout)] // an example program talks on stdout

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use clap::Parser;
use serde::Serialize;
use webhooks::http::{Portal, Tenant};
use webhooks::store::SqliteStore;
use webhooks::{Catalog, RetryPolicy, WebhookEvent, Webhooks};

#[derive(Parser)]
#[command(
    about = "The customer portal at / and the management API at /api, behind a toy login",
    long_about = "The customer portal at / and the management API (webhooks::http::router) at \
                  /api. The toy login takes the customer's name from the header x-demo-tenant \
                  (the page asks for it) and maps it to the label tenant=NAME."
)]
struct Args {
    /// The port, on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,

    /// Let webhooks go to private and loopback addresses (development only).
    #[arg(long)]
    allow_private: bool,

    /// The SQLite store (default: a new file in a temporary directory, removed on exit).
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

/// A random number between 0 and 999 was drawn.
#[derive(Serialize, WebhookEvent)]
#[webhook(
    resource = "random_number",
    action = "generate",
    example = "RandomNumber::example"
)]
struct RandomNumber(u32);

impl RandomNumber {
    fn example() -> Self {
        RandomNumber(863)
    }
}

/// Bear attacks reported by rangers.
#[derive(Serialize, WebhookEvent)]
#[expect(
    dead_code,
    reason = "the portal sends only the catalog's examples, as test events"
)]
#[webhook(resource = "bear_attack")]
enum BearAttack {
    /// A ranger reported an attack.
    #[webhook(action = "reported", example = "reported_example")]
    Reported {
        id: u64,
        #[webhook(label)]
        county: String,
        /// 1 (a scare) to 5.
        severity: u8,
    },
    /// An attack report was archived.
    #[webhook(action = "archived", deprecated = "use bear_attack:reported")]
    Archived,
}

fn reported_example() -> BearAttack {
    BearAttack::Reported {
        id: 7,
        county: "Denver".to_owned(),
        severity: 3,
    }
}

/// The toy login: `x-demo-tenant: NAME` is the tenant `tenant=NAME`; no name, no access (401).
fn tenant(parts: &http::request::Parts) -> Option<Tenant> {
    let name = parts.headers.get("x-demo-tenant")?.to_str().ok()?.trim();
    (!name.is_empty()).then(|| Tenant::new("tenant", name))
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Failure> {
    // Kept alive until the end: dropping it deletes the temporary store.
    let mut temp = None;
    let path = match args.db {
        Some(path) => path,
        None => {
            let dir = tempfile::tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            let path = dir.path().join("webhooks.db");
            temp = Some(dir);
            path
        }
    };
    let store = SqliteStore::open(&path)
        .await
        .map_err(|e| format!("cannot open the store {}: {e}", path.display()))?;
    let catalog = Catalog::new().event::<RandomNumber>().event::<BearAttack>();
    let mut builder = Webhooks::builder()
        .store(store)
        .catalog(catalog)
        // Three attempts in about 3 s, then exhausted: the portal shows the failure at once.
        .retry(RetryPolicy::schedule([Duration::from_secs(1), Duration::from_secs(2)]).jitter(0.0));
    if args.allow_private {
        builder = builder.allow_private_networks();
    }
    let hooks = builder.build().await?;
    println!("store: {}", path.display());
    if args.allow_private {
        println!(
            "private networks allowed (development only): webhooks may go to localhost and \
             internal addresses"
        );
    }

    let portal = Portal::new()
        .api_base("api/")
        .ask_header("x-demo-tenant", "Your name")
        .title("Webhooks portal (demo)");
    let app = Router::new()
        .route("/", get(move || std::future::ready(portal.clone())))
        .nest("/api", webhooks::http::router(hooks.clone(), tenant));

    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let address = listener.local_addr()?;
    // The tests read this line to find the page.
    println!("portal listening on http://{address}");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            // If Ctrl-C cannot be watched, run until killed.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
        .await?;
    println!("stopping: waiting for requests in flight");
    hooks.shutdown().await;
    drop(temp);
    Ok(())
}
