//! Counters of a run, shared by the stages, and the summary printed at its
//! end.

use std::collections::BTreeMap;
use std::fmt;

/// What one sink did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Items delivered.
    pub sent: u64,
    /// Items dead-lettered (refused, or moved out of a full log).
    pub dead_lettered: u64,
    /// Sends that were retried because the destination was unavailable.
    pub retries: u64,
}

/// What happened during a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Inputs read by the redaction stage (valid or not).
    pub events_in: u64,
    /// Events redacted into the redacted log.
    pub events_out: u64,
    /// Inputs that were not valid events (or unreadable log records).
    pub dead_source: u64,
    /// Events a redactor failed on.
    pub dead_redact: u64,
    /// Events a sink refused.
    pub dead_sink: u64,
    /// Spans replaced, per rule.
    pub findings: BTreeMap<String, u64>,
    /// Failed redactor calls, per kind (`timeout`, `trap`, ...).
    pub guest_failures: BTreeMap<String, u64>,
    /// Reports collected.
    pub reports: u64,
    /// Resource counts in those reports.
    pub counts_reported: u64,
    /// Collections that failed.
    pub collector_failures: u64,
    /// Per event sink.
    pub per_sink: BTreeMap<String, SinkStats>,
}

impl Stats {
    /// Events in the dead-letter store from this run.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_source + self.dead_redact + self.dead_sink
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "wasmtel summary")?;
        writeln!(f, "  events in:        {}", self.events_in)?;
        writeln!(f, "  events out:       {}", self.events_out)?;
        writeln!(
            f,
            "  dead-lettered:    {} (malformed {}, redaction failed {}, sink failed {})",
            self.dead_lettered(),
            self.dead_source,
            self.dead_redact,
            self.dead_sink
        )?;
        let findings: u64 = self.findings.values().sum();
        writeln!(f, "  findings:         {findings}")?;
        for (rule, n) in &self.findings {
            writeln!(f, "    {rule:<16} {n}")?;
        }
        for (kind, n) in &self.guest_failures {
            writeln!(f, "  guest failures:   {kind} x{n}")?;
        }
        for (name, s) in &self.per_sink {
            writeln!(f, "  sink {name}: {} delivered, {} dead-lettered", s.sent, s.dead_lettered)?;
        }
        write!(f, "  reports:          {} ({} counts", self.reports, self.counts_reported)?;
        if self.collector_failures > 0 {
            write!(f, ", {} collections failed", self.collector_failures)?;
        }
        writeln!(f, ")")
    }
}
