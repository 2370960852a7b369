//! [`Rows`]: how the writer passes any number of rows to one statement in two parameters, so
//! that the statement's text, and so its prepared statement, never changes.

use std::fmt::Write as _;

use sqlx::Sqlite;
use uuid::Uuid;

/// A batch of rows for one statement, bound as two parameters whatever its size, so that the
/// statement's text — and so its prepared statement — is always the same: a blob holding the
/// rows' ids, bytes and text back to back, and a JSON array with an array per row of numbers
/// and fixed names only, which refers to the blob by 1-based offset (and length); SQL reads
/// them with `substr(blob, offset, length)`. Nothing needs escaping.
pub(super) struct Rows {
    blob: Vec<u8>,
    json: String,
}

/// One value of a row of [`Rows`].
pub(super) enum Cell<'a> {
    /// A number.
    Int(i64),
    /// A number or NULL.
    OptInt(Option<i64>),
    /// A fixed name (a status, an error kind), as JSON text.
    Name(&'static str),
    /// A fixed name or NULL.
    OptName(Option<&'static str>),
    /// An id: its offset (16 bytes).
    Id(Uuid),
    /// Bytes or text: offset, length.
    Bytes(&'a [u8]),
    /// Text or NULL: offset (NULL for NULL), length.
    OptText(Option<&'a str>),
}

impl Rows {
    /// No rows yet.
    pub(super) fn new() -> Self {
        Rows {
            // Never empty: `substr` of an empty blob is NULL, even for an empty slice.
            blob: vec![0],
            json: String::from("["),
        }
    }

    /// A list of ids: one row each.
    pub(super) fn ids(ids: impl IntoIterator<Item = Uuid>) -> Self {
        let mut rows = Rows::new();
        for id in ids {
            rows.push(&[Cell::Id(id)]);
        }
        rows
    }

    /// Adds a row.
    pub(super) fn push(&mut self, cells: &[Cell<'_>]) {
        if self.json.len() > 1 {
            self.json.push(',');
        }
        self.json.push('[');
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                self.json.push(',');
            }
            // Writing to a `String` cannot fail.
            let _ = match cell {
                Cell::Int(n) => write!(self.json, "{n}"),
                Cell::OptInt(Some(n)) => write!(self.json, "{n}"),
                Cell::OptInt(None) | Cell::OptName(None) => write!(self.json, "null"),
                Cell::Name(name) | Cell::OptName(Some(name)) => write!(self.json, "\"{name}\""),
                Cell::Id(id) => {
                    let at = self.blob.len() + 1;
                    self.blob.extend_from_slice(id.as_bytes());
                    write!(self.json, "{at}")
                }
                Cell::Bytes(bytes) => {
                    let at = self.blob.len() + 1;
                    self.blob.extend_from_slice(bytes);
                    write!(self.json, "{at},{}", bytes.len())
                }
                Cell::OptText(Some(text)) => {
                    let at = self.blob.len() + 1;
                    self.blob.extend_from_slice(text.as_bytes());
                    write!(self.json, "{at},{}", text.len())
                }
                Cell::OptText(None) => write!(self.json, "null,0"),
            };
        }
        self.json.push(']');
    }

    /// Binds the blob, then the JSON.
    pub(super) fn bind<'q>(
        mut self,
        query: sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments> {
        self.json.push(']');
        query.bind(self.blob).bind(self.json)
    }
}
