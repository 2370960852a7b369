//! Fresh stores for each scenario, and the runtime settings every scenario shares.

use std::path::{Path, PathBuf};

use webhooks::store::{MemoryStore, PostgresStore, SqliteStore};
use webhooks::{Builder, Webhooks};

use crate::Result;

/// Which store a scenario runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreKind {
    Memory,
    Sqlite,
    Postgres,
}

impl StoreKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Sqlite => "SQLite",
            StoreKind::Postgres => "PostgreSQL",
        }
    }
}

/// What the scenarios share: the settings of the run and where stores go.
pub(crate) struct Ctx {
    /// Requests in flight at once, for the runtime and for the baseline alike.
    pub(crate) concurrency: usize,
    pub(crate) scale: f64,
    pub(crate) postgres: Option<String>,
    /// Where SQLite files go; removed at the end of the run.
    pub(crate) dir: PathBuf,
    /// Names this run's PostgreSQL schemas.
    pub(crate) run_id: String,
    /// `--stages`: print where each latency scenario's time goes.
    pub(crate) stages: bool,
}

impl Ctx {
    /// `count` scaled by `--scale`, at least `min`.
    pub(crate) fn scaled(&self, count: u64, min: u64) -> u64 {
        ((count as f64 * self.scale).round() as u64).max(min)
    }

    /// The builder with the settings a user tuning for throughput would choose: the receiver is
    /// on 127.0.0.1, and the concurrency is the baseline's.
    pub(crate) fn builder(&self) -> Builder {
        throughput_builder(self.concurrency)
    }
}

/// [`Ctx::builder`], for the worker processes, which have no `Ctx`.
pub(crate) fn throughput_builder(concurrency: usize) -> Builder {
    Webhooks::builder()
        .allow_private_networks()
        .max_in_flight(concurrency)
        .max_in_flight_per_subscription(concurrency)
}

/// The PostgreSQL schema of the scenario store named `name` in this run: lowercase letters,
/// digits and `_`, a plain identifier, fresh for each run.
pub(crate) fn schema(ctx: &Ctx, name: &str) -> String {
    format!("webhooks_bench_{}_{}", ctx.run_id, name.replace('-', "_"))
}

/// A fresh, empty store in the builder, and what to remove once the scenario is over.
pub(crate) struct Fresh {
    pub(crate) builder: Builder,
    pub(crate) cleanup: Cleanup,
    /// The pid of the PostgreSQL server's postmaster, when it runs on this machine: its CPU
    /// time is measured too.
    pub(crate) postmaster: Option<u32>,
}

/// What a scenario leaves behind.
pub(crate) enum Cleanup {
    Nothing,
    SqliteFile(PathBuf),
    /// The schema, dropped through the store's pool.
    PostgresSchema {
        pool: sqlx::PgPool,
        schema: String,
    },
}

/// A new store of `kind`, named `name` (file or schema), in `builder`.
pub(crate) async fn fresh(
    ctx: &Ctx,
    kind: StoreKind,
    name: &str,
    builder: Builder,
) -> Result<Fresh> {
    match kind {
        StoreKind::Memory => Ok(Fresh {
            builder: builder.store(MemoryStore::new()),
            cleanup: Cleanup::Nothing,
            postmaster: None,
        }),
        StoreKind::Sqlite => {
            let path = ctx.dir.join(format!("{name}.db"));
            remove_sqlite(&path);
            let store = SqliteStore::open(&path)
                .await
                .map_err(|e| format!("cannot open the SQLite store {}: {e}", path.display()))?;
            Ok(Fresh {
                builder: builder.store(store),
                cleanup: Cleanup::SqliteFile(path),
                postmaster: None,
            })
        }
        StoreKind::Postgres => {
            let Some(url) = &ctx.postgres else {
                return Err("no PostgreSQL URL (--postgres or WEBHOOKS_BENCH_POSTGRES_URL)".into());
            };
            let schema = schema(ctx, name);
            let store = PostgresStore::connect_with(url, &schema)
                .await
                .map_err(|e| format!("cannot connect the PostgreSQL store: {e}"))?;
            let pool = store.pool().clone();
            let backend: Option<i32> = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&pool)
                .await
                .ok();
            let postmaster = backend
                .and_then(|pid| u32::try_from(pid).ok())
                .and_then(crate::scenarios::postmaster_of);
            Ok(Fresh {
                builder: builder.store(store),
                cleanup: Cleanup::PostgresSchema { pool, schema },
                postmaster,
            })
        }
    }
}

impl Cleanup {
    /// Removes the scenario's file or schema. Call after the runtime has shut down.
    pub(crate) async fn run(self) {
        match self {
            Cleanup::Nothing => {}
            Cleanup::SqliteFile(path) => remove_sqlite(&path),
            Cleanup::PostgresSchema { pool, schema } => {
                let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                if let Err(error) = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await {
                    eprintln!("could not drop the PostgreSQL schema {schema}: {error}");
                }
                pool.close().await;
            }
        }
    }
}

/// Removes an SQLite store file and its companions (WAL, shared memory, lock).
pub(crate) fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}
