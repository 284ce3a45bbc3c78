//! SQLite data sources: opened read-only, optionally created from a seed
//! script first.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};

use super::{QueryError, Rows, SqlCell};

/// A database that cannot be opened or seeded: which file and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(pub String);

/// SQLite VM steps between two deadline checks.
const PROGRESS_STEPS: i32 = 1000;

/// A read-only SQLite database.
pub struct SqliteSource {
    conn: Mutex<Connection>,
    max_rows: usize,
    max_bytes: u64,
}

impl SqliteSource {
    /// Opens `path` read-only. If the file does not exist and `seed` is given,
    /// the database is first created from that SQL script. Queries return
    /// at most `max_rows` rows and `max_bytes` bytes.
    pub fn open(path: &Path, seed: Option<&Path>, max_rows: usize, max_bytes: u64) -> Result<SqliteSource, OpenError> {
        SqliteSource::open_text(path, seed, max_rows, max_bytes).map_err(OpenError)
    }

    fn open_text(path: &Path, seed: Option<&Path>, max_rows: usize, max_bytes: u64) -> Result<SqliteSource, String> {
        if !path.exists() {
            let Some(seed) = seed else {
                return Err(format!(
                    "the SQLite file {} does not exist (create it, or set `seed_sql` to a script that does)",
                    path.display()
                ));
            };
            create_from_seed(path, seed)?;
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|e| format!("cannot open SQLite file {} read-only: {e}", path.display()))?;
        conn.pragma_update(None, "query_only", true).map_err(|e| e.to_string())?;
        // ATTACH is "read-only" to SQLite but would let a guest open any file.
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0).map_err(|e| e.to_string())?;
        // No single string or blob beyond the byte budget is ever built
        // (`zeroblob(900000000)` fails at once instead of allocating).
        let length = i32::try_from(max_bytes.min(1 << 30)).unwrap_or(i32::MAX);
        conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, length).map_err(|e| e.to_string())?;
        Ok(SqliteSource { conn: Mutex::new(conn), max_rows, max_bytes })
    }

    /// Runs one read-only statement, stopping it after `timeout`, at
    /// `max_rows` rows or at `max_bytes` bytes.
    pub fn query(&self, sql: &str, params: &[SqlCell], timeout: Duration) -> Result<Rows, QueryError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + timeout;
        conn.progress_handler(PROGRESS_STEPS, Some(move || Instant::now() > deadline));
        let result = self.run(&conn, sql, params, deadline);
        conn.progress_handler(0, None::<fn() -> bool>);
        result.map_err(|e| if Instant::now() > deadline { QueryError::Timeout(timeout.as_millis()) } else { e })
    }

    fn run(&self, conn: &Connection, sql: &str, params: &[SqlCell], deadline: Instant) -> Result<Rows, QueryError> {
        if !starts_with_query_keyword(sql) {
            return Err(QueryError::NotAllowed("only SELECT, WITH and VALUES statements are allowed"));
        }
        let failed = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::TooBig) => QueryError::TooManyBytes(self.max_bytes),
            _ => QueryError::Sqlite(e.to_string()),
        };
        let mut stmt = conn.prepare(sql).map_err(failed)?;
        if !stmt.readonly() {
            return Err(QueryError::NotAllowed("only read-only statements are allowed"));
        }
        let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let values: Vec<Value> = params.iter().map(to_sqlite).collect();
        let mut rows = stmt.query(rusqlite::params_from_iter(values)).map_err(failed)?;
        let mut out = Rows { columns, rows: Vec::new() };
        let mut bytes = 0u64;
        while let Some(row) = rows.next().map_err(failed)? {
            if out.rows.len() == self.max_rows {
                return Err(QueryError::TooManyRows(self.max_rows));
            }
            if Instant::now() > deadline {
                return Err(QueryError::Sqlite("interrupted".into()));
            }
            bytes += 16;
            let mut cells = Vec::with_capacity(out.columns.len());
            for i in 0..out.columns.len() {
                let value = row.get_ref(i).map_err(failed)?;
                bytes += match value {
                    ValueRef::Text(b) | ValueRef::Blob(b) => b.len() as u64,
                    _ => 8,
                };
                // Checked before the value is copied into host memory.
                if bytes > self.max_bytes {
                    return Err(QueryError::TooManyBytes(self.max_bytes));
                }
                cells.push(match value {
                    ValueRef::Null => SqlCell::Null,
                    ValueRef::Integer(v) => SqlCell::Integer(v),
                    ValueRef::Real(v) => SqlCell::Real(v),
                    ValueRef::Text(t) => SqlCell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => SqlCell::Blob(b.to_vec()),
                });
            }
            out.rows.push(cells);
        }
        Ok(out)
    }
}

/// True when the first keyword (after whitespace and comments) starts a query.
fn starts_with_query_keyword(sql: &str) -> bool {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            break;
        }
    }
    let word: String = rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
    ["select", "with", "values"].iter().any(|k| word.eq_ignore_ascii_case(k))
}

fn to_sqlite(cell: &SqlCell) -> Value {
    match cell {
        SqlCell::Null => Value::Null,
        SqlCell::Integer(i) => Value::Integer(*i),
        SqlCell::Real(f) => Value::Real(*f),
        SqlCell::Text(s) => Value::Text(s.clone()),
        SqlCell::Blob(b) => Value::Blob(b.clone()),
    }
}

/// Creates a database from a seed script, atomically (a half-seeded file is
/// never left behind).
fn create_from_seed(path: &Path, seed: &Path) -> Result<(), String> {
    let script =
        std::fs::read_to_string(seed).map_err(|e| format!("cannot read seed script {}: {e}", seed.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("seeding");
    let _ = std::fs::remove_file(&tmp);
    let conn = Connection::open(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    conn.execute_batch(&script).map_err(|e| format!("seed script {} failed: {e}", seed.display()))?;
    drop(conn);
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot move seeded database into place: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded() -> (tempfile::TempDir, SqliteSource) {
        let dir = tempfile::tempdir().unwrap();
        let seed = dir.path().join("seed.sql");
        std::fs::write(&seed, "CREATE TABLE t(a INTEGER, b TEXT); INSERT INTO t VALUES (1,'x'),(2,NULL);").unwrap();
        let db = SqliteSource::open(&dir.path().join("db.sqlite"), Some(&seed), 1000, 65536).unwrap();
        (dir, db)
    }

    #[test]
    fn reads_rows_with_params() {
        let (_dir, db) = seeded();
        let rows = db
            .query("SELECT a, b FROM t WHERE a >= ?1 ORDER BY a", &[SqlCell::Integer(1)], Duration::from_secs(1))
            .unwrap();
        assert_eq!(rows.columns, ["a", "b"]);
        assert_eq!(
            rows.rows,
            vec![vec![SqlCell::Integer(1), SqlCell::Text("x".into())], vec![SqlCell::Integer(2), SqlCell::Null]]
        );
    }

    #[test]
    fn refuses_writes() {
        let (_dir, db) = seeded();
        for sql in [
            "DELETE FROM t",
            "INSERT INTO t VALUES (3,'y')",
            "DROP TABLE t",
            "PRAGMA query_only = OFF",
            "ATTACH '/etc/x.db' AS x",
            "/* c */ DELETE FROM t",
        ] {
            assert!(db.query(sql, &[], Duration::from_secs(1)).is_err(), "{sql} was allowed");
        }
        let rows = db.query("SELECT count(*) FROM t", &[], Duration::from_secs(1)).unwrap();
        assert_eq!(rows.rows[0][0], SqlCell::Integer(2));
    }

    #[test]
    fn stops_runaway_queries() {
        let (_dir, db) = seeded();
        let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c";
        let err = db.query(sql, &[], Duration::from_millis(50)).unwrap_err();
        assert_eq!(err, QueryError::Timeout(50));
    }

    #[test]
    fn results_stop_at_the_row_cap_and_the_byte_budget() {
        let (_dir, db) = seeded();
        let many = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 1001) SELECT x FROM c";
        assert_eq!(db.query(many, &[], Duration::from_secs(5)).unwrap_err(), QueryError::TooManyRows(1000));
        let wide =
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 20) SELECT zeroblob(5000) FROM c";
        assert_eq!(db.query(wide, &[], Duration::from_secs(5)).unwrap_err(), QueryError::TooManyBytes(65536));
        // A single value larger than the budget is refused by SQLite itself,
        // before it is built.
        let err = db.query("SELECT zeroblob(900000000)", &[], Duration::from_secs(5)).unwrap_err();
        assert_eq!(err, QueryError::TooManyBytes(65536));
        let fits =
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c LIMIT 10) SELECT zeroblob(5000) FROM c";
        assert_eq!(db.query(fits, &[], Duration::from_secs(5)).unwrap().rows.len(), 10);
    }

    #[test]
    fn missing_file_without_seed_says_what_to_do() {
        let err = SqliteSource::open(Path::new("/nonexistent/x.db"), None, 10, 4096).err().unwrap();
        assert!(err.0.contains("seed_sql"), "{err}");
    }
}
