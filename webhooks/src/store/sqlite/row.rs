//! Values between Rust and SQLite: ids are 16-byte blobs, rows are read through the shared
//! decoders of `store/sql.rs` ([`Columns`]), and the few helpers every statement goes through
//! (each prepared once per connection and cached: `prepare_cached`).

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Params, Row};

use crate::store::StoreError;
use crate::store::sql::{Columns, corrupt};

/// A database failure.
pub(super) fn db(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(error))
}

/// An id as stored: its 16 bytes.
pub(super) fn blob(uuid: uuid::Uuid) -> Vec<u8> {
    uuid.as_bytes().to_vec()
}

/// Runs `sql` (cached) with `params`; returns how many rows it changed.
pub(super) fn execute(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map_err(db)
}

/// The first row of `sql` (cached) with `params`, decoded; `None` if there is none.
pub(super) fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db)?;
    let mut rows = statement.query(params).map_err(db)?;
    match rows.next().map_err(db)? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// The first row of `sql` (cached) with `params`, decoded; an error if there is none.
pub(super) fn query_one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    decode: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    query_opt(conn, sql, params, decode)?.ok_or_else(|| db(rusqlite::Error::QueryReturnedNoRows))
}

/// Every row of `sql` (cached) with `params`, decoded.
pub(super) fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    mut decode: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(db)?;
    let mut rows = statement.query(params).map_err(db)?;
    let mut all = Vec::new();
    while let Some(row) = rows.next().map_err(db)? {
        all.push(decode(row)?);
    }
    Ok(all)
}

/// SQLite's side of the shared decoders: ids are 16-byte blobs, and columns hold values of any
/// type.
impl Columns for Row<'_> {
    fn id(&self, index: usize) -> Result<uuid::Uuid, StoreError> {
        match self.get_ref(index).map_err(db)? {
            ValueRef::Blob(bytes) => uuid::Uuid::from_slice(bytes).map_err(|e| corrupt("id", e)),
            other => Err(corrupt("id", other.data_type())),
        }
    }

    fn text(&self, index: usize) -> Result<String, StoreError> {
        self.get(index).map_err(db)
    }

    fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        self.get(index).map_err(db)
    }

    fn subscription_text(&self, what: &'static str, index: usize) -> Result<String, StoreError> {
        self.get(index).map_err(|_| corrupt(what, "not text"))
    }

    fn int(&self, index: usize) -> Result<i64, StoreError> {
        self.get(index).map_err(db)
    }

    fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError> {
        self.get(index).map_err(db)
    }

    fn status_code(&self, index: usize) -> Result<Option<i64>, StoreError> {
        self.get(index).map_err(db)
    }

    fn flag(&self, index: usize) -> Result<bool, StoreError> {
        self.get(index).map_err(db)
    }

    fn bytes(&self, index: usize) -> Result<Vec<u8>, StoreError> {
        self.get(index).map_err(db)
    }
}
