//! Data sources collectors may query: read-only SQL on named databases.
//!
//! SQLite (embedded, `rusqlite` with bundled SQLite) is the default. Every
//! connection is opened read-only, has `PRAGMA query_only` set, and refuses
//! statements SQLite does not classify as read-only; each query has a time
//! budget (checked every 1000 SQLite VM steps and per row), a row cap and a
//! byte budget counted while rows are read, so no result can exhaust the
//! host's memory before a limit stops it.

mod sqlite;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::config::{ConfigError, DataSource};

pub use sqlite::SqliteSource;

/// Most rows one query may return (the default and the ceiling of
/// `max_rows`).
pub const MAX_ROWS: usize = 100_000;
/// Default byte budget of one query's result (16 MiB).
pub const MAX_BYTES: u64 = 16 << 20;

/// Why a query failed, without the source's name (see [`QueryFailed`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// Not SELECT / WITH / VALUES, or not read-only.
    #[error("{0}")]
    NotAllowed(&'static str),
    /// SQLite refused or failed the statement.
    #[error("{0}")]
    Sqlite(String),
    /// More rows than `max_rows`.
    #[error("the query returned more than max_rows = {0} rows; aggregate in SQL instead")]
    TooManyRows(usize),
    /// More bytes than `max_bytes`.
    #[error("the result exceeds max_bytes = {0} bytes; select fewer or smaller values")]
    TooManyBytes(u64),
    /// The time budget ran out.
    #[error("the query was stopped after its {0} ms budget (query_timeout_ms)")]
    Timeout(u128),
}

/// A failed query, naming its data source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("data source {source_name:?}: {error}")]
pub struct QueryFailed {
    /// The data source's name.
    pub source_name: String,
    /// What went wrong.
    pub error: QueryError,
}

/// One SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlCell {
    /// NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// Rows returned by a query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    /// Column names.
    pub columns: Vec<String>,
    /// Values, one vector per row.
    pub rows: Vec<Vec<SqlCell>>,
}

/// The configured data sources, by name.
#[derive(Default)]
pub struct DataSources {
    sqlite: BTreeMap<String, SqliteSource>,
}

impl DataSources {
    /// Opens every configured source. `file` is the config file, for errors.
    pub fn open(file: &Path, config: &BTreeMap<String, DataSource>) -> Result<DataSources, ConfigError> {
        let mut sqlite = BTreeMap::new();
        for (name, source) in config {
            match source {
                DataSource::Sqlite { path, seed_sql, max_rows, max_bytes } => {
                    let opened = SqliteSource::open(path, seed_sql.as_deref(), *max_rows, *max_bytes)
                        .map_err(|e| ConfigError::new(file, format!("data_sources.{name}.path"), e.0))?;
                    sqlite.insert(name.clone(), opened);
                }
            }
        }
        Ok(DataSources { sqlite })
    }

    /// Runs a read-only query on `source`.
    pub fn query(&self, source: &str, sql: &str, params: &[SqlCell], timeout: Duration) -> Result<Rows, QueryFailed> {
        let failed = |error| QueryFailed { source_name: source.to_string(), error };
        let db = self.sqlite.get(source).ok_or_else(|| failed(QueryError::Sqlite("no such data source".into())))?;
        db.query(sql, params, timeout).map_err(failed)
    }
}
