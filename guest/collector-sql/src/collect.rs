//! The collection itself: read the configuration, run each resource's
//! statement, and turn the rows into resource counts and base information.

use crate::rows::{Origin, Row, column_indexes};
use crate::wasmtel::telemetry::host::LogLevel;
use crate::wasmtel::telemetry::types::{BaseInformation, CountParentType, InstanceInformation, ResourceCount};
use crate::{Collection, Host, PluginError};
use std::collections::HashSet;

/// Data source used when `source` is not configured.
const DEFAULT_SOURCE: &str = "main";

/// Columns every `resource.<name>.sql` statement must return.
const COUNT_COLUMNS: [&str; 4] = ["instance_id", "parent_type", "parent_id", "amount"];

/// Columns the `base.instances_sql` statement must return.
const INSTANCE_COLUMNS: [&str; 3] = ["id", "created_at", "domains"];

/// Configuration key of the data source name.
const KEY_SOURCE: &str = "source";
/// Configuration key of the resource list.
const KEY_RESOURCES: &str = "resources";
/// Configuration key of the system version.
const KEY_VERSION: &str = "version";
/// Configuration key of the instances statement.
const KEY_INSTANCES_SQL: &str = "base.instances_sql";

/// What to count for one resource, as configured.
struct ResourceConfig {
    /// Resource name, e.g. `users`.
    name: String,
    /// The key the statement came from, e.g. `resource.users.sql`.
    sql_key: String,
    /// The statement returning one row per parent.
    sql: String,
    /// The `table-name` reported with each count.
    table: String,
}

/// Runs one collection against `host`.
pub(crate) fn collect(host: &impl Host) -> Result<Collection, PluginError> {
    let source = source(host)?;
    let resources = resources(host)?;

    let mut counts = Vec::new();
    for resource in &resources {
        counts.extend(count_resource(host, &source, resource)?);
    }

    let base = base_information(host, &source)?;
    Ok(Collection { counts, base })
}

/// Reads `key`, treating a value of only whitespace like any other value
/// (callers decide whether empty is allowed). Returns the trimmed value.
fn get(host: &impl Host, key: &str) -> Option<String> {
    host.config_get(key).map(|v| v.trim().to_owned())
}

/// Reads a key that must be present and non-empty; `expected` tells the
/// operator what to set it to.
fn required(host: &impl Host, key: &str, expected: &str) -> Result<String, PluginError> {
    match get(host, key) {
        None => Err(PluginError::InvalidConfig(format!("missing key `{key}`: set it to {expected}"))),
        Some(v) if v.is_empty() => {
            Err(PluginError::InvalidConfig(format!("key `{key}` is empty: set it to {expected}")))
        }
        Some(v) => Ok(v),
    }
}

/// Reads a key that may be absent but, when present, must not be empty.
fn optional(host: &impl Host, key: &str, expected: &str) -> Result<Option<String>, PluginError> {
    match get(host, key) {
        Some(v) if v.is_empty() => {
            Err(PluginError::InvalidConfig(format!("key `{key}` is empty: set it to {expected}, or remove it")))
        }
        other => Ok(other),
    }
}

/// The data source to query: `source`, or `main`.
fn source(host: &impl Host) -> Result<String, PluginError> {
    Ok(optional(host, KEY_SOURCE, "the name of a data source granted to this module (default `main`)")?
        .unwrap_or_else(|| DEFAULT_SOURCE.to_owned()))
}

/// Reads `resources` and, for each listed name, its statement and table.
fn resources(host: &impl Host) -> Result<Vec<ResourceConfig>, PluginError> {
    const EXPECTED: &str = "a comma-separated list of resource names, \
                            e.g. `organizations,users,projects`";
    let list = required(host, KEY_RESOURCES, EXPECTED)?;

    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.chars().any(char::is_whitespace) {
            return Err(PluginError::InvalidConfig(format!(
                "key `{KEY_RESOURCES}`: resource name {name:?} contains whitespace; \
                 set it to {EXPECTED}"
            )));
        }
        if !seen.insert(name.to_owned()) {
            return Err(PluginError::InvalidConfig(format!(
                "key `{KEY_RESOURCES}`: resource `{name}` is listed more than once"
            )));
        }
        let sql_key = format!("resource.{name}.sql");
        let sql = required(host, &sql_key, "a SELECT returning instance_id, parent_type, parent_id, amount")?;
        let table_key = format!("resource.{name}.table");
        let table = optional(host, &table_key, "the table the counts come from (default: the resource name)")?
            .unwrap_or_else(|| name.to_owned());
        out.push(ResourceConfig { name: name.to_owned(), sql_key, sql, table });
    }
    if out.is_empty() {
        return Err(PluginError::InvalidConfig(format!(
            "key `{KEY_RESOURCES}` names no resources: set it to {EXPECTED}"
        )));
    }
    Ok(out)
}

/// Describes an error from `sql.query` as text, keeping its kind.
fn describe_query_error(e: PluginError) -> String {
    match e {
        PluginError::InvalidConfig(m) => format!("invalid config: {m}"),
        PluginError::QueryFailed(m) => m,
        PluginError::InvalidInput(m) => format!("invalid input: {m}"),
        PluginError::Internal(m) => format!("internal error: {m}"),
    }
}

/// Runs the statement of one resource and converts its rows to counts.
fn count_resource(
    host: &impl Host,
    source: &str,
    resource: &ResourceConfig,
) -> Result<Vec<ResourceCount>, PluginError> {
    let what = format!("resource `{}`", resource.name);
    let result = host.query(source, &resource.sql).map_err(|e| {
        PluginError::QueryFailed(format!(
            "{what}: the statement in `{}` failed on source `{source}`: {}",
            resource.sql_key,
            describe_query_error(e)
        ))
    })?;
    let updated_at = host.now();

    let origin = Origin { what: &what, key: &resource.sql_key };
    let [c_instance, c_parent_type, c_parent, c_amount] = column_indexes(&result, COUNT_COLUMNS, &origin)?;

    let mut counts = Vec::with_capacity(result.rows.len());
    let mut parents = HashSet::new();
    let mut duplicates = 0usize;
    for index in 0..result.rows.len() {
        let row = Row::new(&result, index, &origin)?;
        let instance_id = row.text(c_instance)?;
        let parent_type = row.parent_type(c_parent_type)?;
        let parent_id = row.text(c_parent)?;
        let amount = row.amount(c_amount)?;
        if matches!(parent_type, CountParentType::Instance) && parent_id != instance_id {
            return Err(row.error(
                c_parent,
                format_args!(
                    "parent_type is `instance`, so parent_id must equal instance_id \
                     ({instance_id:?}), got {parent_id:?}"
                ),
            ));
        }
        if !parents.insert((instance_id, matches!(parent_type, CountParentType::Instance), parent_id)) {
            duplicates += 1;
        }
        counts.push(ResourceCount {
            instance_id: instance_id.to_owned(),
            parent_type,
            parent_id: parent_id.to_owned(),
            resource_name: resource.name.clone(),
            table_name: resource.table.clone(),
            updated_at,
            amount,
        });
    }

    host.log(
        LogLevel::Info,
        &format!("resource `{}` (table `{}`): {} rows", resource.name, resource.table, counts.len()),
    );
    if duplicates > 0 {
        host.log(
            LogLevel::Warn,
            &format!(
                "resource `{}`: {duplicates} rows repeat an (instance_id, parent_type, parent_id) \
                 already seen; check the GROUP BY of `{}`",
                resource.name, resource.sql_key
            ),
        );
    }
    Ok(counts)
}

/// Builds base information when `base.instances_sql` is configured.
fn base_information(host: &impl Host, source: &str) -> Result<Option<BaseInformation>, PluginError> {
    let Some(sql) = optional(host, KEY_INSTANCES_SQL, "a SELECT returning id, created_at, domains")? else {
        return Ok(None);
    };
    let version = match optional(host, KEY_VERSION, "the version of the system reported on")? {
        Some(v) => v,
        None => {
            host.log(
                LogLevel::Warn,
                &format!(
                    "`{KEY_INSTANCES_SQL}` is set but `{KEY_VERSION}` is not; \
                     reporting an empty system version"
                ),
            );
            String::new()
        }
    };

    let what = "base information";
    let result = host.query(source, &sql).map_err(|e| {
        PluginError::QueryFailed(format!(
            "{what}: the statement in `{KEY_INSTANCES_SQL}` failed on source `{source}`: {}",
            describe_query_error(e)
        ))
    })?;
    let origin = Origin { what, key: KEY_INSTANCES_SQL };
    let [c_id, c_created, c_domains] = column_indexes(&result, INSTANCE_COLUMNS, &origin)?;

    let mut instances: Vec<InstanceInformation> = Vec::with_capacity(result.rows.len());
    for index in 0..result.rows.len() {
        let row = Row::new(&result, index, &origin)?;
        let id = row.text(c_id)?;
        if instances.iter().any(|i| i.id == id) {
            return Err(row.error(c_id, format_args!("instance {id:?} appears more than once")));
        }
        let created_at = row.timestamp(c_created)?;
        let domains = split_domains(row.optional_text(c_domains)?);
        instances.push(InstanceInformation { id: id.to_owned(), domains, created_at });
    }

    host.log(LogLevel::Info, &format!("base information: {} instances", instances.len()));
    Ok(Some(BaseInformation { version, instances }))
}

/// Splits a comma-separated domain list, dropping blanks and repeats while
/// keeping the original order.
fn split_domains(text: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for domain in text.unwrap_or("").split(',').map(str::trim) {
        if !domain.is_empty() && !out.iter().any(|d| d == domain) {
            out.push(domain.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! Tests of the whole collection against a fake host.

    use super::*;
    use crate::wasmtel::telemetry::sql::{QueryResult, SqlValue};
    use crate::wasmtel::telemetry::types::Timestamp;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A host with fixed configuration and canned query results.
    #[derive(Default)]
    struct FakeHost {
        /// Configuration values.
        config: HashMap<String, String>,
        /// Query results keyed by statement.
        results: HashMap<String, Result<QueryResult, String>>,
        /// Log lines written.
        logs: RefCell<Vec<String>>,
    }

    impl FakeHost {
        /// Sets a configuration value.
        fn set(mut self, key: &str, value: &str) -> Self {
            self.config.insert(key.to_owned(), value.to_owned());
            self
        }

        /// Registers the result of `sql`.
        fn answer(mut self, sql: &str, columns: &[&str], rows: Vec<Vec<SqlValue>>) -> Self {
            let result = QueryResult { columns: columns.iter().map(|c| c.to_string()).collect(), rows };
            self.results.insert(sql.to_owned(), Ok(result));
            self
        }

        /// Registers a failure for `sql`.
        fn fail(mut self, sql: &str, why: &str) -> Self {
            self.results.insert(sql.to_owned(), Err(why.to_owned()));
            self
        }
    }

    impl Host for FakeHost {
        /// Looks the key up in the fixed configuration.
        fn config_get(&self, key: &str) -> Option<String> {
            self.config.get(key).cloned()
        }

        /// Returns the canned result of `statement`.
        fn query(&self, source: &str, statement: &str) -> Result<QueryResult, PluginError> {
            assert_eq!(source, "main");
            match self.results.get(statement) {
                Some(Ok(r)) => Ok(r.clone()),
                Some(Err(why)) => Err(PluginError::QueryFailed(why.clone())),
                None => Err(PluginError::QueryFailed("no such statement".into())),
            }
        }

        /// Records the line.
        fn log(&self, _level: LogLevel, message: &str) {
            self.logs.borrow_mut().push(message.to_owned());
        }

        /// A fixed time.
        fn now(&self) -> Timestamp {
            Timestamp { seconds: 42, nanos: 7 }
        }
    }

    /// Shorthand for a text value.
    fn t(s: &str) -> SqlValue {
        SqlValue::Text(s.to_owned())
    }

    /// Shorthand for an integer value.
    fn i(v: i64) -> SqlValue {
        SqlValue::Integer(v)
    }

    /// The message inside an error, whatever its variant.
    fn message(e: &PluginError) -> &str {
        match e {
            PluginError::InvalidConfig(m)
            | PluginError::QueryFailed(m)
            | PluginError::InvalidInput(m)
            | PluginError::Internal(m) => m,
        }
    }

    /// A host configured for two resources.
    fn two_resources() -> FakeHost {
        FakeHost::default()
            .set("resources", " organizations , users ")
            .set("resource.organizations.sql", "ORGS")
            .set("resource.organizations.table", "orgs")
            .set("resource.users.sql", "USERS")
            .answer(
                "ORGS",
                &["amount", "parent_id", "parent_type", "instance_id"],
                vec![vec![i(3), t("i1"), t("instance"), t("i1")]],
            )
            .answer(
                "USERS",
                &["instance_id", "parent_type", "parent_id", "amount"],
                vec![vec![t("i1"), t("organization"), t("o1"), i(12)], vec![t("i1"), t("organization"), t("o2"), i(0)]],
            )
    }

    /// Rows of every resource become counts with the configured table and the host's time, and one log line per resource.
    #[test]
    fn collects_counts() {
        let host = two_resources();
        let c = collect(&host).unwrap();
        assert!(c.base.is_none());
        assert_eq!(c.counts.len(), 3);
        let orgs = &c.counts[0];
        assert_eq!(orgs.resource_name, "organizations");
        assert_eq!(orgs.table_name, "orgs");
        assert!(matches!(orgs.parent_type, CountParentType::Instance));
        assert_eq!((orgs.instance_id.as_str(), orgs.amount), ("i1", 3));
        let users = &c.counts[2];
        assert_eq!(users.table_name, "users");
        assert_eq!((users.parent_id.as_str(), users.amount), ("o2", 0));
        assert_eq!((users.updated_at.seconds, users.updated_at.nanos), (42, 7));
        let logs = host.logs.borrow();
        assert_eq!(logs.len(), 2);
        assert!(logs[1].contains("`users`") && logs[1].contains("2 rows"), "{logs:?}");
    }

    /// Missing or empty keys fail with `invalid-config` naming the key and what to set it to.
    #[test]
    fn missing_keys_are_named() {
        let e = collect(&FakeHost::default()).unwrap_err();
        assert!(matches!(e, PluginError::InvalidConfig(_)));
        assert!(message(&e).contains("missing key `resources`"));

        let host = FakeHost::default().set("resources", "users");
        let e = collect(&host).unwrap_err();
        assert!(matches!(e, PluginError::InvalidConfig(_)));
        assert!(message(&e).starts_with("missing key `resource.users.sql`: set it to a SELECT"), "{e:?}");

        let host = FakeHost::default().set("resources", " , ");
        assert!(message(&collect(&host).unwrap_err()).contains("names no resources"));
        let host = FakeHost::default().set("resources", "users,users").set("resource.users.sql", "USERS");
        assert!(message(&collect(&host).unwrap_err()).contains("more than once"));
    }

    /// A failing statement yields `query-failed` naming the resource.
    #[test]
    fn query_failure_names_resource() {
        let host = two_resources().fail("USERS", "no such table: users14");
        let e = collect(&host).unwrap_err();
        assert!(matches!(e, PluginError::QueryFailed(_)));
        let m = message(&e);
        assert!(m.contains("resource `users`") && m.contains("no such table"), "{m}");
    }

    /// Bad values name the resource, row and column; a missing column names the key.
    #[test]
    fn bad_rows_name_resource_row_and_column() {
        let host = two_resources().answer(
            "USERS",
            &["instance_id", "parent_type", "parent_id", "amount"],
            vec![vec![t("i1"), t("organization"), t("o1"), i(1)], vec![t("i1"), t("organization"), t("o2"), i(-4)]],
        );
        let e = collect(&host).unwrap_err();
        assert!(matches!(e, PluginError::InvalidInput(_)));
        let m = message(&e);
        assert!(m.contains("resource `users`") && m.contains("row 2") && m.contains("`amount`"), "{m}");

        let host = two_resources().answer(
            "ORGS",
            &["instance_id", "parent_type", "parent_id", "amount"],
            vec![vec![t("i1"), t("instance"), t("o1"), i(1)]],
        );
        assert!(message(&collect(&host).unwrap_err()).contains("must equal instance_id"));

        let host = two_resources().answer("ORGS", &["instance_id", "parent_type", "amount"], vec![]);
        let e = collect(&host).unwrap_err();
        assert!(matches!(e, PluginError::InvalidConfig(_)));
        assert!(message(&e).contains("no column `parent_id`"));
    }

    /// Repeated parents are kept but logged as a warning.
    #[test]
    fn duplicates_are_warned_about() {
        let host = two_resources().answer(
            "USERS",
            &["instance_id", "parent_type", "parent_id", "amount"],
            vec![vec![t("i1"), t("organization"), t("o1"), i(1)], vec![t("i1"), t("organization"), t("o1"), i(2)]],
        );
        assert_eq!(collect(&host).unwrap().counts.len(), 3);
        assert!(host.logs.borrow().iter().any(|l| l.contains("repeat")));
    }

    /// `base.instances_sql` produces base information with parsed times and domains.
    #[test]
    fn base_information_is_optional_and_parsed() {
        let host = two_resources().set("version", "v2.71.0").set("base.instances_sql", "INSTANCES").answer(
            "INSTANCES",
            &["domains", "id", "created_at"],
            vec![
                vec![t("a.example.com, b.example.com,,a.example.com"), t("i1"), i(1_700_000_000)],
                vec![SqlValue::Null, t("i2"), t("2023-11-14T22:13:20Z")],
            ],
        );
        let base = collect(&host).unwrap().base.unwrap();
        assert_eq!(base.version, "v2.71.0");
        assert_eq!(base.instances.len(), 2);
        assert_eq!(base.instances[0].domains, ["a.example.com", "b.example.com"]);
        assert!(base.instances[1].domains.is_empty());
        assert_eq!(base.instances[1].created_at.seconds, 1_700_000_000);

        let host = two_resources().set("base.instances_sql", "INSTANCES").answer(
            "INSTANCES",
            &["id", "created_at", "domains"],
            vec![vec![t("i1"), t("last tuesday"), SqlValue::Null]],
        );
        let e = collect(&host).unwrap_err();
        let m = message(&e);
        assert!(m.contains("base information") && m.contains("`created_at`"), "{m}");
    }
}
