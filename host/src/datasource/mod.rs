//! Data sources collectors may query: read-only SQL on named databases.
//!
//! SQLite (embedded, `rusqlite` with bundled SQLite) is the default. Every
//! connection is opened read-only, has `PRAGMA query_only` set, and refuses
//! statements SQLite does not classify as read-only; each query has a time
//! budget and a row cap.

mod sqlite;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::config::{ConfigError, DataSource};

pub use sqlite::SqliteSource;

/// Most rows one query may return.
pub const MAX_ROWS: usize = 100_000;

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
                DataSource::Sqlite { path, seed_sql } => {
                    let opened = SqliteSource::open(path, seed_sql.as_deref())
                        .map_err(|e| ConfigError::new(file, format!("data_sources.{name}.path"), e))?;
                    sqlite.insert(name.clone(), opened);
                }
            }
        }
        Ok(DataSources { sqlite })
    }

    /// Runs a read-only query on `source`.
    pub fn query(&self, source: &str, sql: &str, params: &[SqlCell], timeout: Duration) -> Result<Rows, String> {
        let db = self.sqlite.get(source).ok_or_else(|| format!("no data source named {source:?}"))?;
        db.query(sql, params, timeout)
    }
}
