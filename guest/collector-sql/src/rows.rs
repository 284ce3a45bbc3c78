//! Reading typed values out of `sql.query` results: columns are looked up by
//! name and every value is checked against the type the collector expects.

use crate::PluginError;
use crate::wasmtel::telemetry::sql::{QueryResult, SqlValue};
use crate::wasmtel::telemetry::types::{CountParentType, Timestamp};

/// Where the rows being read come from, for error messages.
pub(crate) struct Origin<'a> {
    /// What the query computes, e.g. "resource `users`" or "base information".
    pub(crate) what: &'a str,
    /// The configuration key holding the statement, e.g. `resource.users.sql`.
    pub(crate) key: &'a str,
}

/// Finds the index of each wanted column in `result`.
///
/// A column matches when its name equals the wanted one exactly; failing
/// that, when it equals it ignoring ASCII case (databases differ in how they
/// fold unquoted identifiers). A missing or ambiguous column is a mistake in
/// the configured statement, so it is reported as `invalid-config`.
pub(crate) fn column_indexes<const N: usize>(
    result: &QueryResult,
    wanted: [&str; N],
    origin: &Origin<'_>,
) -> Result<[usize; N], PluginError> {
    let mut found = [0usize; N];
    for (slot, name) in found.iter_mut().zip(wanted) {
        let exact: Vec<usize> = positions(&result.columns, |c| c == name);
        let matches =
            if exact.is_empty() { positions(&result.columns, |c| c.eq_ignore_ascii_case(name)) } else { exact };
        match matches.as_slice() {
            [index] => *slot = *index,
            [] => {
                return Err(PluginError::InvalidConfig(format!(
                    "{}: the statement in `{}` returned no column `{name}` \
                     (it returned: {}); it must return the columns {}",
                    origin.what,
                    origin.key,
                    list_columns(&result.columns),
                    wanted.join(", "),
                )));
            }
            _ => {
                return Err(PluginError::InvalidConfig(format!(
                    "{}: the statement in `{}` returned column `{name}` more than once \
                     (it returned: {}); alias the columns so each name is unique",
                    origin.what,
                    origin.key,
                    list_columns(&result.columns),
                )));
            }
        }
    }
    Ok(found)
}

/// Indexes of the columns whose name satisfies `pred`.
fn positions(columns: &[String], pred: impl Fn(&str) -> bool) -> Vec<usize> {
    columns.iter().enumerate().filter(|(_, c)| pred(c)).map(|(i, _)| i).collect()
}

/// Renders column names for an error message.
fn list_columns(columns: &[String]) -> String {
    if columns.is_empty() { "no columns".to_owned() } else { columns.join(", ") }
}

/// One row of a result, with enough context to describe bad values.
pub(crate) struct Row<'a> {
    /// The row's values.
    pub(crate) values: &'a [SqlValue],
    /// Column names of the result.
    pub(crate) columns: &'a [String],
    /// 1-based row number.
    pub(crate) number: usize,
    /// Where the row came from.
    pub(crate) origin: &'a Origin<'a>,
}

impl<'a> Row<'a> {
    /// Wraps row `index` (0-based) of `result`, checking that it has one
    /// value per column.
    pub(crate) fn new(result: &'a QueryResult, index: usize, origin: &'a Origin<'a>) -> Result<Self, PluginError> {
        let values = result.rows[index].as_slice();
        let row = Row { values, columns: &result.columns, number: index + 1, origin };
        if values.len() != result.columns.len() {
            return Err(PluginError::InvalidInput(format!(
                "{}, row {}: the row has {} values but the result has {} columns",
                origin.what,
                row.number,
                values.len(),
                result.columns.len()
            )));
        }
        Ok(row)
    }

    /// Builds an `invalid-input` error about the value in column `index`.
    pub(crate) fn error(&self, index: usize, problem: impl std::fmt::Display) -> PluginError {
        PluginError::InvalidInput(format!(
            "{}, row {}, column `{}`: {problem}",
            self.origin.what, self.number, self.columns[index]
        ))
    }

    /// Reads a non-empty text value.
    pub(crate) fn text(&self, index: usize) -> Result<&'a str, PluginError> {
        match &self.values[index] {
            SqlValue::Text(s) if s.is_empty() => Err(self.error(index, "is empty text")),
            SqlValue::Text(s) => Ok(s),
            other => Err(self.error(index, format_args!("expected text, got {}", describe(other)))),
        }
    }

    /// Reads text that may be NULL or empty; both yield `None`.
    pub(crate) fn optional_text(&self, index: usize) -> Result<Option<&'a str>, PluginError> {
        match &self.values[index] {
            SqlValue::Null => Ok(None),
            SqlValue::Text(s) if s.trim().is_empty() => Ok(None),
            SqlValue::Text(s) => Ok(Some(s)),
            other => Err(self.error(index, format_args!("expected text or NULL, got {}", describe(other)))),
        }
    }

    /// Reads a count: an integer in `0..=u32::MAX`. A real with no
    /// fractional part is accepted too, since some drivers return sums as
    /// floating point.
    pub(crate) fn amount(&self, index: usize) -> Result<u32, PluginError> {
        let range = || format!("counts must be between 0 and {}", u32::MAX);
        match &self.values[index] {
            SqlValue::Integer(i) => u32::try_from(*i).map_err(|_| {
                let why = if *i < 0 { "is negative" } else { "is too large" };
                self.error(index, format_args!("{i} {why}; {}", range()))
            }),
            SqlValue::Real(f) if f.is_finite() && f.fract() == 0.0 => {
                if *f < 0.0 {
                    Err(self.error(index, format_args!("{f} is negative; {}", range())))
                } else if *f > f64::from(u32::MAX) {
                    Err(self.error(index, format_args!("{f} is too large; {}", range())))
                } else {
                    Ok(*f as u32)
                }
            }
            SqlValue::Real(f) => Err(self.error(index, format_args!("expected a whole number, got {f}"))),
            SqlValue::Null => {
                Err(self.error(index, "is NULL; use COUNT(...) or COALESCE(..., 0) so every row has a count"))
            }
            other => Err(self.error(index, format_args!("expected an integer, got {}", describe(other)))),
        }
    }

    /// Reads a parent type: the text `instance` or `organization` (ASCII
    /// case-insensitive).
    pub(crate) fn parent_type(&self, index: usize) -> Result<CountParentType, PluginError> {
        let text = self.text(index)?;
        if text.eq_ignore_ascii_case("instance") {
            Ok(CountParentType::Instance)
        } else if text.eq_ignore_ascii_case("organization") {
            Ok(CountParentType::Organization)
        } else {
            Err(self.error(index, format_args!("unknown parent type {text:?}; expected `instance` or `organization`")))
        }
    }

    /// Reads a point in time: integer (or real) Unix seconds, or RFC 3339
    /// text.
    pub(crate) fn timestamp(&self, index: usize) -> Result<Timestamp, PluginError> {
        match &self.values[index] {
            SqlValue::Integer(i) => Ok(Timestamp { seconds: *i, nanos: 0 }),
            SqlValue::Real(f) => crate::time::from_unix_f64(*f)
                .ok_or_else(|| self.error(index, format_args!("{f} is not a valid Unix time"))),
            SqlValue::Text(s) => crate::time::parse_rfc3339(s).map_err(|why| {
                self.error(
                    index,
                    format_args!(
                        "{s:?} is not an RFC 3339 date-time ({why}); \
                         expected Unix seconds or e.g. 2024-05-01T12:30:00Z"
                    ),
                )
            }),
            other => {
                Err(self.error(index, format_args!("expected Unix seconds or RFC 3339 text, got {}", describe(other))))
            }
        }
    }
}

/// Names the type of a SQL value for error messages.
fn describe(value: &SqlValue) -> String {
    match value {
        SqlValue::Null => "NULL".to_owned(),
        SqlValue::Integer(i) => format!("the integer {i}"),
        SqlValue::Real(f) => format!("the real {f}"),
        SqlValue::Text(s) => format!("the text {s:?}"),
        SqlValue::Blob(b) => format!("a blob of {} bytes", b.len()),
    }
}

#[cfg(test)]
mod tests {
    //! Unit tests for column lookup and value conversion.

    use super::*;

    /// The origin used by all tests.
    const ORIGIN: Origin<'static> = Origin { what: "resource `users`", key: "resource.users.sql" };

    /// Builds a result with the given columns and rows.
    fn result(columns: &[&str], rows: Vec<Vec<SqlValue>>) -> QueryResult {
        QueryResult { columns: columns.iter().map(|c| c.to_string()).collect(), rows }
    }

    /// The message inside an error, whatever its variant.
    fn message(e: PluginError) -> String {
        match e {
            PluginError::InvalidConfig(m)
            | PluginError::QueryFailed(m)
            | PluginError::InvalidInput(m)
            | PluginError::Internal(m) => m,
        }
    }

    /// Columns are found by name regardless of order and case.
    #[test]
    fn finds_columns_by_name_in_any_order_and_case() {
        let r = result(&["AMOUNT", "parent_id", "x", "Instance_Id"], vec![]);
        let idx = column_indexes(&r, ["instance_id", "parent_id", "amount"], &ORIGIN).unwrap();
        assert_eq!(idx, [3, 1, 0]);
    }

    /// A missing column is an `invalid-config` error naming key and column.
    #[test]
    fn missing_column_names_key_and_column() {
        let r = result(&["instance_id", "amount"], vec![]);
        let e = column_indexes(&r, ["instance_id", "parent_id"], &ORIGIN).unwrap_err();
        assert!(matches!(e, PluginError::InvalidConfig(_)));
        let m = message(e);
        assert!(m.contains("`parent_id`") && m.contains("resource.users.sql"), "{m}");
    }

    /// Two case-insensitive matches are ambiguous; an exact match wins.
    #[test]
    fn ambiguous_column_is_rejected() {
        let r = result(&["ID", "id2", "Id"], vec![]);
        assert!(column_indexes(&r, ["id"], &ORIGIN).is_err());
        let r = result(&["ID", "id"], vec![]);
        assert_eq!(column_indexes(&r, ["id"], &ORIGIN).unwrap(), [1]);
    }

    /// Counts must be whole numbers in `0..=u32::MAX`.
    #[test]
    fn amounts_are_range_checked() {
        let r = result(
            &["amount"],
            vec![
                vec![SqlValue::Integer(5)],
                vec![SqlValue::Integer(-1)],
                vec![SqlValue::Integer(i64::from(u32::MAX) + 1)],
                vec![SqlValue::Real(3.0)],
                vec![SqlValue::Real(3.5)],
                vec![SqlValue::Text("3".into())],
                vec![SqlValue::Null],
            ],
        );
        let amount = |i| Row::new(&r, i, &ORIGIN).unwrap().amount(0);
        assert_eq!(amount(0).unwrap(), 5);
        let m = message(amount(1).unwrap_err());
        assert!(m.contains("row 2") && m.contains("`amount`") && m.contains("negative"), "{m}");
        assert!(message(amount(2).unwrap_err()).contains("too large"));
        assert_eq!(amount(3).unwrap(), 3);
        assert!(amount(4).is_err());
        assert!(matches!(amount(5).unwrap_err(), PluginError::InvalidInput(_)));
        assert!(message(amount(6).unwrap_err()).contains("NULL"));
    }

    /// Parent types and text columns are type-checked.
    #[test]
    fn parent_types_and_texts() {
        let r = result(
            &["t"],
            vec![
                vec![SqlValue::Text("organization".into())],
                vec![SqlValue::Text("Instance".into())],
                vec![SqlValue::Text("project".into())],
                vec![SqlValue::Integer(1)],
                vec![SqlValue::Text(String::new())],
            ],
        );
        let row = |i| Row::new(&r, i, &ORIGIN).unwrap();
        assert!(matches!(row(0).parent_type(0), Ok(CountParentType::Organization)));
        assert!(matches!(row(1).parent_type(0), Ok(CountParentType::Instance)));
        assert!(message(row(2).parent_type(0).unwrap_err()).contains("unknown parent type"));
        assert!(message(row(3).text(0).unwrap_err()).contains("expected text"));
        assert!(row(4).text(0).is_err());
        assert_eq!(row(4).optional_text(0).unwrap(), None);
    }

    /// A row with fewer values than columns is rejected.
    #[test]
    fn short_rows_are_rejected() {
        let r = result(&["a", "b"], vec![vec![SqlValue::Null]]);
        assert!(Row::new(&r, 0, &ORIGIN).is_err());
    }

    /// Times may be Unix seconds or RFC 3339 text.
    #[test]
    fn timestamps_accept_seconds_and_text() {
        let r = result(
            &["created_at"],
            vec![
                vec![SqlValue::Integer(1_700_000_000)],
                vec![SqlValue::Text("2023-11-14T22:13:20Z".into())],
                vec![SqlValue::Text("soon".into())],
                vec![SqlValue::Null],
            ],
        );
        let ts = |i| Row::new(&r, i, &ORIGIN).unwrap().timestamp(0);
        assert_eq!(ts(0).unwrap().seconds, 1_700_000_000);
        assert_eq!(ts(1).unwrap().seconds, 1_700_000_000);
        assert!(ts(2).is_err());
        assert!(ts(3).is_err());
    }
}
