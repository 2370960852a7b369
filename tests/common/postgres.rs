//! A PostgreSQL schema of one test's own on the database of `WEBHOOKS_TEST_POSTGRES_URL`,
//! dropped (with everything in it) when the test ends.

use sqlx::Connection;
use webhooks::DeliveryId;

/// The variable that names the database the PostgreSQL tests run on.
pub const URL_VAR: &str = "WEBHOOKS_TEST_POSTGRES_URL";

/// A fresh schema name on the test database; dropping it drops the schema.
#[derive(Debug)]
pub struct Schema {
    pub url: String,
    pub name: String,
}

impl Schema {
    /// A fresh schema `PREFIX<id>`, or `None` (and a line saying the test was skipped) without
    /// a database to test on.
    #[allow(clippy::print_stdout)] // what a skipped test says
    pub fn new(test: &str, prefix: &str) -> Option<Schema> {
        let Ok(url) = std::env::var(URL_VAR) else {
            println!("skipped {test}: {URL_VAR} is not set");
            return None;
        };
        Some(Schema::at(url, prefix))
    }

    /// A fresh schema `PREFIX<id>` on the database at `url`. Nothing is created yet: a store
    /// creates it when it connects.
    pub fn at(url: String, prefix: &str) -> Schema {
        let name = format!("{prefix}{}", DeliveryId::new().as_uuid().simple());
        Schema { url, name }
    }

    /// A connection of its own to the database (not set to the schema).
    pub async fn connection(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url)
            .await
            .expect("the test database accepts a connection")
    }

    /// Runs `sql` (any number of statements) on a connection of its own.
    pub async fn execute(&self, sql: impl Into<String>) {
        let mut conn = self.connection().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.into()))
            .execute(&mut conn)
            .await
            .expect("the test's SQL runs");
    }

    /// The schema version recorded in the schema (its `schema_version` table).
    pub async fn version(&self) -> i32 {
        let mut conn = self.connection().await;
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT version FROM \"{}\".schema_version",
            self.name
        )))
        .fetch_one(&mut conn)
        .await
        .expect("the schema has a version")
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let url = self.url.clone();
        // The name is ours (a prefix of the test's and an id), not user input.
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        // Drop cannot await, and may run on a runtime's thread: a thread of its own, with a
        // runtime of its own.
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("could not drop schema {}: {done:?}", self.name);
        }
    }
}
