//! Where the receiver keeps what it was sent: SQLite by default (one file,
//! WAL mode). Report IDs are stored too, so a restarted receiver still
//! recognizes them. Counts are keyed by (system, instance, parent type,
//! parent, resource, table) and upserted, so a batch sent twice (after a
//! retry or a restart) never duplicates a count.

use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::report::{BaseInformation, CountParentType, ResourceCount};

/// The SQLite store.
pub struct ReceiverStore {
    conn: Mutex<Connection>,
}

/// One system as `wasmtel reports` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemSummary {
    /// The reporting installation.
    pub system_id: String,
    /// Its version (from the latest base report).
    pub version: String,
    /// When it last reported.
    pub last_seen: DateTime<Utc>,
    /// Its instances: id and domains.
    pub instances: Vec<(String, Vec<String>)>,
    /// Latest counts.
    pub counts: Vec<ResourceCount>,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS systems (
    system_id TEXT PRIMARY KEY,
    version TEXT NOT NULL DEFAULT '',
    last_seen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
    system_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    domains TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (system_id, instance_id)
);
CREATE TABLE IF NOT EXISTS reports (
    report_id TEXT PRIMARY KEY,
    system_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    batches INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS reports_created_at ON reports (created_at);
CREATE TABLE IF NOT EXISTS counts (
    system_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    parent_type INTEGER NOT NULL,
    parent_id TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    table_name TEXT NOT NULL,
    amount INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    updated_nanos INTEGER NOT NULL,
    report_id TEXT NOT NULL,
    PRIMARY KEY (system_id, instance_id, parent_type, parent_id, resource_name, table_name)
);
";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file or its folder could not be opened or created.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file or folder.
        path: std::path::PathBuf,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A statement failed.
    #[error("storage error: {0}")]
    Db(#[from] rusqlite::Error),
}

impl ReceiverStore {
    /// Opens (creating) the database file.
    pub fn open(path: &Path) -> Result<ReceiverStore, StoreError> {
        let open = |path: &Path, source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open(dir, e.into()))?;
        }
        let conn = Connection::open(path).map_err(|e| open(path, e.into()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(ReceiverStore { conn: Mutex::new(conn) })
    }

    /// Forgets report IDs issued before `before` (unix seconds): they are
    /// refused as too old anyway. Counts stay. Returns how many went.
    pub fn prune_reports(&self, before: i64) -> Result<usize, StoreError> {
        Ok(self.lock().execute("DELETE FROM reports WHERE created_at < ?1", params![before])?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records base information and issues a new report ID for `system_id`.
    pub fn begin_report(&self, system_id: &str, base: Option<&BaseInformation>) -> Result<String, StoreError> {
        let report_id = uuid::Uuid::new_v4().to_string();
        let now = Utc::now().timestamp();
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        match base {
            Some(base) => {
                tx.execute(
                    "INSERT INTO systems (system_id, version, last_seen) VALUES (?1, ?2, ?3)
                     ON CONFLICT(system_id) DO UPDATE SET version = excluded.version, last_seen = excluded.last_seen",
                    params![system_id, base.version, now],
                )?;
                for i in &base.instances {
                    tx.execute(
                        "INSERT INTO instances (system_id, instance_id, domains, created_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT(system_id, instance_id) DO UPDATE SET domains = excluded.domains, created_at = excluded.created_at",
                        params![system_id, i.id, serde_json::to_string(&i.domains).unwrap_or_default(), i.created_at.timestamp()],
                    )
                    ?;
                }
            }
            None => {
                tx.execute(
                    "INSERT INTO systems (system_id, last_seen) VALUES (?1, ?2)
                     ON CONFLICT(system_id) DO UPDATE SET last_seen = excluded.last_seen",
                    params![system_id, now],
                )?;
            }
        }
        tx.execute(
            "INSERT INTO reports (report_id, system_id, created_at) VALUES (?1, ?2, ?3)",
            params![report_id, system_id, now],
        )?;
        tx.commit()?;
        Ok(report_id)
    }

    /// The system a report ID belongs to and when it was issued (unix seconds).
    pub fn report_owner(&self, report_id: &str) -> Result<Option<(String, i64)>, StoreError> {
        self.lock()
            .query_row("SELECT system_id, created_at FROM reports WHERE report_id = ?1", params![report_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(StoreError::from)
    }

    /// Stores one batch of counts under `report_id` (upsert: never duplicates).
    pub fn store_counts(&self, system_id: &str, report_id: &str, counts: &[ResourceCount]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO counts (system_id, instance_id, parent_type, parent_id, resource_name, table_name, amount, updated_at, updated_nanos, report_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT(system_id, instance_id, parent_type, parent_id, resource_name, table_name) DO UPDATE SET
                       amount = excluded.amount, updated_at = excluded.updated_at, updated_nanos = excluded.updated_nanos, report_id = excluded.report_id
                     WHERE (excluded.updated_at, excluded.updated_nanos) >= (counts.updated_at, counts.updated_nanos)",
                )
                ?;
            for c in counts {
                let parent = match c.parent_type {
                    CountParentType::Instance => 1,
                    CountParentType::Organization => 2,
                };
                stmt.execute(params![
                    system_id,
                    c.instance_id,
                    parent,
                    c.parent_id,
                    c.resource_name,
                    c.table_name,
                    c.amount,
                    c.updated_at.timestamp(),
                    c.updated_at.timestamp_subsec_nanos(),
                    report_id
                ])?;
            }
        }
        tx.execute("UPDATE reports SET batches = batches + 1 WHERE report_id = ?1", params![report_id])?;
        tx.execute(
            "UPDATE systems SET last_seen = ?2 WHERE system_id = ?1",
            params![system_id, Utc::now().timestamp()],
        )?;
        Ok(tx.commit()?)
    }

    /// Count batches stored so far (all reports).
    pub fn batches(&self) -> Result<u64, StoreError> {
        Ok(self.lock().query_row("SELECT COALESCE(SUM(batches), 0) FROM reports", [], |r| r.get(0))?)
    }

    /// Reports issued so far.
    pub fn reports(&self) -> Result<u64, StoreError> {
        Ok(self.lock().query_row("SELECT COUNT(*) FROM reports", [], |r| r.get(0))?)
    }

    /// Every system with its instances and latest counts.
    pub fn systems(&self) -> Result<Vec<SystemSummary>, StoreError> {
        let conn = self.lock();
        let mut systems: Vec<SystemSummary> = conn
            .prepare("SELECT system_id, version, last_seen FROM systems ORDER BY system_id")
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(SystemSummary {
                        system_id: r.get(0)?,
                        version: r.get(1)?,
                        last_seen: crate::report::timestamp(r.get(2)?, 0),
                        instances: Vec::new(),
                        counts: Vec::new(),
                    })
                })?
                .collect()
            })?;
        for s in &mut systems {
            s.instances = conn
                .prepare("SELECT instance_id, domains FROM instances WHERE system_id = ?1 ORDER BY instance_id")
                .and_then(|mut st| {
                    st.query_map(params![s.system_id], |r| {
                        let domains: String = r.get(1)?;
                        Ok((r.get(0)?, serde_json::from_str(&domains).unwrap_or_default()))
                    })?
                    .collect()
                })?;
            s.counts = conn
                .prepare(
                    "SELECT instance_id, parent_type, parent_id, resource_name, table_name, updated_at, updated_nanos, amount
                     FROM counts WHERE system_id = ?1 ORDER BY resource_name, instance_id, parent_id, table_name",
                )
                .and_then(|mut st| {
                    st.query_map(params![s.system_id], |r| {
                        Ok(ResourceCount {
                            instance_id: r.get(0)?,
                            parent_type: if r.get::<_, i64>(1)? == 1 { CountParentType::Instance } else { CountParentType::Organization },
                            parent_id: r.get(2)?,
                            resource_name: r.get(3)?,
                            table_name: r.get(4)?,
                            updated_at: crate::report::timestamp(r.get(5)?, r.get(6)?),
                            amount: r.get(7)?,
                        })
                    })?
                    .collect()
                })
                ?;
        }
        Ok(systems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_ids_past_the_age_limit_are_forgotten_and_counts_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = ReceiverStore::open(&dir.path().join("r.db")).unwrap();
        let old = store.begin_report("sys", None).unwrap();
        let count = ResourceCount {
            instance_id: "i".into(),
            parent_type: CountParentType::Instance,
            parent_id: "i".into(),
            resource_name: "users".into(),
            table_name: "users".into(),
            updated_at: Utc::now(),
            amount: 3,
        };
        store.store_counts("sys", &old, std::slice::from_ref(&count)).unwrap();
        assert_eq!(store.prune_reports(Utc::now().timestamp() - 3600).unwrap(), 0, "a fresh report stays");
        assert_eq!(store.prune_reports(Utc::now().timestamp() + 1).unwrap(), 1);
        assert_eq!(store.report_owner(&old).unwrap(), None);
        assert_eq!(store.reports().unwrap(), 0);
        assert_eq!(store.systems().unwrap()[0].counts, vec![count]);
    }
}
