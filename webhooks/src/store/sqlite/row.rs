//! Values between Rust and SQLite: ids are 16-byte blobs, and rows are read through the shared
//! decoders of `store/sql.rs` ([`Columns`]).

use sqlx::sqlite::SqliteRow;

use crate::store::StoreError;
use crate::store::sql::{Columns, RowExt, corrupt};

/// An id as stored: its 16 bytes.
pub(super) fn blob(uuid: uuid::Uuid) -> Vec<u8> {
    uuid.as_bytes().to_vec()
}

/// SQLite's side of the shared decoders: ids are 16-byte blobs, and columns hold values of any
/// type.
impl Columns for SqliteRow {
    fn id(&self, index: usize) -> Result<uuid::Uuid, StoreError> {
        let bytes: Vec<u8> = self.col(index)?;
        uuid::Uuid::from_slice(&bytes).map_err(|e| corrupt("id", e))
    }

    fn text(&self, index: usize) -> Result<String, StoreError> {
        self.col(index)
    }

    fn opt_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        self.col(index)
    }

    fn subscription_text(&self, what: &'static str, index: usize) -> Result<String, StoreError> {
        self.col(index).map_err(|_| corrupt(what, "not text"))
    }

    fn int(&self, index: usize) -> Result<i64, StoreError> {
        self.col(index)
    }

    fn opt_int(&self, index: usize) -> Result<Option<i64>, StoreError> {
        self.col(index)
    }

    fn status_code(&self, index: usize) -> Result<Option<i64>, StoreError> {
        self.col(index)
    }

    fn flag(&self, index: usize) -> Result<bool, StoreError> {
        self.col(index)
    }

    fn bytes(&self, index: usize) -> Result<Vec<u8>, StoreError> {
        self.col(index)
    }
}
