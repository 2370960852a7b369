//! [`Rows`]: the rows a round writes to one table, each bound to the same cached prepared
//! statement in turn; and [`id_list`], a list of ids bound as two parameters, for the one
//! statement that takes a list whatever its length (the claim's excluded subscriptions).

use std::fmt::Write as _;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ToSql};
use uuid::Uuid;

use super::row::db;
use crate::store::StoreError;

/// The rows a round writes with one statement: each row is that statement's parameters, in
/// order, bound and run in turn (the statement is prepared once per connection). Values are
/// borrowed from the jobs of the round where they can be.
pub(super) struct Rows<'a> {
    /// Parameters per row.
    width: usize,
    cells: Vec<Cell<'a>>,
}

/// One value of a row of [`Rows`].
pub(super) enum Cell<'a> {
    /// A number.
    Int(i64),
    /// A number or NULL.
    OptInt(Option<i64>),
    /// A fixed name (a status, an error kind), as text.
    Name(&'static str),
    /// A fixed name or NULL.
    OptName(Option<&'static str>),
    /// An id: a 16-byte blob.
    Id(Uuid),
    /// Bytes: a blob.
    Bytes(&'a [u8]),
    /// Text.
    Text(&'a str),
    /// Text made for the round (a JSON column).
    String(String),
    /// Text or NULL.
    OptText(Option<&'a str>),
}

impl ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Cell::Int(n) | Cell::OptInt(Some(n)) => ValueRef::Integer(*n),
            Cell::OptInt(None) | Cell::OptName(None) | Cell::OptText(None) => ValueRef::Null,
            Cell::Name(text) | Cell::OptName(Some(text)) => ValueRef::Text(text.as_bytes()),
            Cell::Id(id) => ValueRef::Blob(id.as_bytes()),
            Cell::Bytes(bytes) => ValueRef::Blob(bytes),
            Cell::Text(text) | Cell::OptText(Some(text)) => ValueRef::Text(text.as_bytes()),
            Cell::String(text) => ValueRef::Text(text.as_bytes()),
        }))
    }
}

impl<'a> Rows<'a> {
    /// No rows yet, of `width` values each.
    pub(super) fn new(width: usize) -> Self {
        Rows {
            width,
            cells: Vec::new(),
        }
    }

    /// Adds a row: `width` values.
    pub(super) fn push<const N: usize>(&mut self, cells: [Cell<'a>; N]) {
        debug_assert_eq!(N, self.width, "a row of the wrong width");
        self.cells.extend(cells);
    }

    /// Runs `sql` (cached) once per row, its parameters bound from the row.
    pub(super) fn execute(&self, conn: &Connection, sql: &str) -> Result<(), StoreError> {
        if self.cells.is_empty() {
            return Ok(());
        }
        let mut statement = conn.prepare_cached(sql).map_err(db)?;
        for row in self.cells.chunks(self.width) {
            statement
                .execute(rusqlite::params_from_iter(row))
                .map_err(db)?;
        }
        Ok(())
    }
}

/// A list of ids as two parameters whatever its length, so that the statement's text (and so
/// its prepared statement) never changes: a blob of the ids back to back and a JSON array with
/// a one-element array per id, its 1-based offset in the blob; SQL reads them with
/// `substr(blob, offset, 16)` over `jsonb_each(json)`. Nothing needs escaping.
pub(super) fn id_list(ids: impl IntoIterator<Item = Uuid>) -> (Vec<u8>, String) {
    // Never empty: `substr` of an empty blob is NULL.
    let mut blob = vec![0];
    let mut json = String::from("[");
    for id in ids {
        if json.len() > 1 {
            json.push(',');
        }
        // Writing to a `String` cannot fail.
        let _ = write!(json, "[{}]", blob.len() + 1);
        blob.extend_from_slice(id.as_bytes());
    }
    json.push(']');
    (blob, json)
}
