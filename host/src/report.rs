//! What collectors produce: resource counts and base information, in plain
//! host types (the WIT types stay at the edge, in `runtime`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a count is counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountParentType {
    /// Per instance.
    Instance,
    /// Per organization.
    Organization,
}

/// How many of one resource exist below one parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceCount {
    /// The instance the parent lives in.
    pub instance_id: String,
    /// Whether the parent is an instance or an organization.
    pub parent_type: CountParentType,
    /// The parent's id.
    pub parent_id: String,
    /// What was counted, e.g. `users`.
    pub resource_name: String,
    /// The table counted, for de-duplication by receivers.
    pub table_name: String,
    /// When the count was taken.
    pub updated_at: DateTime<Utc>,
    /// The count.
    pub amount: u32,
}

/// One instance of the reported system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInformation {
    /// Instance id.
    pub id: String,
    /// Its domains.
    pub domains: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Facts about the reported system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseInformation {
    /// The system's version.
    pub version: String,
    /// Its instances.
    pub instances: Vec<InstanceInformation>,
}

/// One collection by one collector, as delivered to report sinks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The collector's configured name.
    pub collector: String,
    /// SHA-256 of the module that produced it.
    pub module_sha256: String,
    /// When the collection ran.
    pub collected_at: DateTime<Utc>,
    /// Base information, if the module provides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseInformation>,
    /// The counts.
    pub counts: Vec<ResourceCount>,
}

/// A UTC time from seconds and nanoseconds since the epoch (clamped to the
/// representable range).
pub fn timestamp(seconds: i64, nanos: u32) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, nanos.min(999_999_999)).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}
