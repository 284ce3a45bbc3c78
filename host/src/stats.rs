//! Counters of a run and the summary printed at its end.

use std::collections::BTreeMap;
use std::fmt;

/// What happened during a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Input lines read (valid or not).
    pub events_in: u64,
    /// Events delivered to the sinks.
    pub events_out: u64,
    /// Lines that were not valid events.
    pub dead_source: u64,
    /// Events whose redaction failed closed.
    pub dead_redact: u64,
    /// Events a sink refused.
    pub dead_sink: u64,
    /// Spans replaced, per rule.
    pub findings: BTreeMap<String, u64>,
    /// Failed redactor calls, per kind (`timeout`, `trap`, ...).
    pub guest_failures: BTreeMap<String, u64>,
    /// Reports delivered.
    pub reports: u64,
    /// Resource counts in those reports.
    pub counts_reported: u64,
    /// Collections that failed.
    pub collector_failures: u64,
    /// Per event sink: events it took and events it refused.
    pub per_sink: BTreeMap<String, (u64, u64)>,
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
        write!(f, "  reports:          {} ({} counts", self.reports, self.counts_reported)?;
        if self.collector_failures > 0 {
            write!(f, ", {} collections failed", self.collector_failures)?;
        }
        writeln!(f, ")")
    }
}
