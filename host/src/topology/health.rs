//! What every stage reports about itself, and what the process answers when
//! asked whether it can take events: gRPC health (`SERVING` /
//! `NOT_SERVING`), `/ready`, `wasmtel status`, and ingest itself, which
//! answers `UNAVAILABLE` instead of OK while a stage has failed.
//!
//! A stage is `ok`, `degraded` (working, but its destination is down and it
//! is retrying: events wait in the redacted log, ingest goes on), or
//! `failed` (it stopped with an error and the supervisor is restarting it:
//! ingest refuses). A stage that fails `max_restarts` times in a row makes
//! the process exit non-zero, so a service manager restarts it.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// One stage's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageState {
    /// Working.
    Ok,
    /// Working, but its destination is not taking events now.
    Degraded(String),
    /// Stopped with an error; being restarted.
    Failed {
        /// The error.
        reason: String,
        /// Failures in a row.
        failures: u32,
    },
}

/// The health of every stage.
#[derive(Debug)]
pub struct Health {
    stages: Mutex<BTreeMap<String, StageState>>,
    fatal: Mutex<Option<String>>,
    max_restarts: u32,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Health {
    /// A health board; `max_restarts` failures in a row are fatal.
    pub fn new(max_restarts: u32) -> Health {
        Health {
            stages: Mutex::new(BTreeMap::new()),
            fatal: Mutex::new(None),
            max_restarts,
            changed: tokio::sync::watch::channel(0).0,
        }
    }

    fn set(&self, stage: &str, state: StageState) {
        let mut stages = self.stages.lock().unwrap_or_else(|p| p.into_inner());
        if stages.get(stage) != Some(&state) {
            stages.insert(stage.to_string(), state);
            drop(stages);
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// `stage` made progress.
    pub fn ok(&self, stage: &str) {
        self.set(stage, StageState::Ok);
    }

    /// `stage` works but its destination does not take events now.
    pub fn degraded(&self, stage: &str, reason: &str) {
        self.set(stage, StageState::Degraded(reason.to_string()));
    }

    /// `stage` failed; returns how many times in a row. Past `max_restarts`
    /// the failure is fatal (see [`Health::fatal`]).
    pub fn failed(&self, stage: &str, reason: &str) -> u32 {
        let failures = match self.stages.lock().unwrap_or_else(|p| p.into_inner()).get(stage) {
            Some(StageState::Failed { failures, .. }) => failures + 1,
            _ => 1,
        };
        tracing::error!(stage, failures, "stage failed: {reason}");
        self.set(stage, StageState::Failed { reason: reason.to_string(), failures });
        if failures >= self.max_restarts {
            let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
            fatal.get_or_insert_with(|| format!("stage {stage} failed {failures} times in a row: {reason}"));
            drop(fatal);
            self.changed.send_modify(|n| *n += 1);
        }
        failures
    }

    /// `stage` cannot work now for a reason that clears by itself (a full
    /// disk): reported like a failure, but never fatal.
    pub fn blocked(&self, stage: &str, reason: &str) {
        tracing::error!(stage, "stage blocked: {reason}");
        self.set(stage, StageState::Failed { reason: reason.to_string(), failures: 0 });
    }

    /// The process must stop now (e.g. a log refuses every write until it
    /// is reopened).
    pub fn fatal_now(&self, reason: &str) {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| reason.to_string());
        self.changed.send_modify(|n| *n += 1);
    }

    /// The reason the process must stop, once a stage failed too often.
    pub fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `Ok` when no stage has failed; else why not, one line per stage.
    pub fn ready(&self) -> Result<(), NotReady> {
        self.ready_except("")
    }

    /// Like [`Health::ready`], ignoring stage `skip` (ingest asks this way,
    /// so a disk that was full is tried again and found writable).
    pub fn ready_except(&self, skip: &str) -> Result<(), NotReady> {
        let failed: Vec<String> = self
            .stages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(name, _)| name.as_str() != skip)
            .filter_map(|(name, s)| match s {
                StageState::Failed { reason, .. } => Some(format!("{name}: {reason}")),
                _ => None,
            })
            .collect();
        if failed.is_empty() { Ok(()) } else { Err(NotReady(failed.join("; "))) }
    }

    /// Every stage and its state.
    pub fn stages(&self) -> BTreeMap<String, StageState> {
        self.stages.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes, for tasks that mirror the health elsewhere (gRPC health).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_in_a_row_and_become_fatal() {
        let h = Health::new(3);
        h.degraded("loki", "HTTP 503");
        assert!(h.ready().is_ok(), "a down destination does not stop ingest");
        assert_eq!(h.failed("redaction", "disk full"), 1);
        assert!(h.ready().unwrap_err().0.contains("redaction: disk full"));
        h.ok("redaction");
        assert!(h.ready().is_ok());
        for n in 1..=3 {
            assert_eq!(h.failed("redaction", "disk full"), n);
        }
        assert!(h.fatal().unwrap().contains("3 times in a row"));
    }
}

/// Why the pipeline is not ready: the failed stages and their reasons
/// (`stage: reason`, separated by `; `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotReady(pub String);
