//! The installation's stable identity (the "system ID" of the reporting
//! protocol), created once and persisted in the state folder, and the
//! reporting opt-out.

use std::path::Path;

/// File in the state folder holding the system ID.
pub const SYSTEM_ID_FILE: &str = "system-id";

/// Reads the system ID from `<state_dir>/system-id`, creating it (a random
/// UUID, written atomically) on first use.
pub fn system_id(state_dir: &Path) -> std::io::Result<String> {
    let path = state_dir.join(SYSTEM_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(state_dir)?;
    let id = uuid::Uuid::new_v4().to_string();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{id}\n"))?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}

/// Why reporting is switched off, if it is: `DO_NOT_TRACK=1`,
/// `WASMTEL_DISABLE=1`, or the config (`[reporting] enabled = false`).
pub fn opt_out_reason(config_enabled: bool) -> Option<String> {
    for var in ["DO_NOT_TRACK", "WASMTEL_DISABLE"] {
        if let Ok(value) = std::env::var(var) {
            let v = value.trim().to_ascii_lowercase();
            if !v.is_empty() && v != "0" && v != "false" && v != "no" {
                return Some(format!("{var}={value}"));
            }
        }
    }
    (!config_enabled).then(|| "[reporting] enabled = false".to_string())
}

/// Whether report sinks may still transmit in this process. A receiver can
/// ask a client to stop for the rest of the process lifetime
/// (`{"disable_scout": true}`); every report sink of a pipeline shares one
/// switch, so one answer stops them all.
#[derive(Debug, Clone, Default)]
pub struct ReportingSwitch(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl ReportingSwitch {
    /// Stops all reporting through this switch.
    pub fn stop(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// True once stopped.
    pub fn stopped(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_id_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = system_id(dir.path()).unwrap();
        assert_eq!(first.len(), 36);
        assert_eq!(system_id(dir.path()).unwrap(), first);
    }
}
