//! `redactor-pii`: the reference PII redactor component.
//!
//! It implements the `redactor` world: for each field of a packed batch it runs
//! the `pii-rules` scanner and returns one finding per match. Module config
//! (read once per instance through `host.config-get`):
//!
//! - `rules`: comma-separated rule ids, or `all` (default).
//! - `mode`: `placeholder` (default, e.g. `<EMAIL>`) or `pseudonym` (keyed
//!   HMAC-SHA256, e.g. `<EMAIL:k1:3f9a…>`, joinable across events).
//! - `hmac_key`, `hmac_key_id`: the key and its id, required for `pseudonym`.

use std::sync::OnceLock;

use pii_rules::{FieldContext, Match, RuleSet, Scanner};

wit_bindgen::generate!({
    world: "redactor",
    path: "../../wit",
});

use wasmtel::telemetry::host::{LogLevel, config_get, log};
use wasmtel::telemetry::redaction::FieldPart;

/// How matches are replaced.
enum Replacement {
    /// A typed placeholder such as `<EMAIL>`.
    Placeholder,
    /// A keyed pseudonym carrying the key id.
    Pseudonym { key: Vec<u8>, key_id: String },
}

/// Settings read from the module config, once per instance.
struct Settings {
    scanner: Scanner,
    replacement: Replacement,
}

static SETTINGS: OnceLock<Result<Settings, PluginError>> = OnceLock::new();

/// Reads and checks the module config.
fn load_settings() -> Result<Settings, PluginError> {
    let rules = match config_get("rules") {
        Some(list) => RuleSet::parse(&list).map_err(|e| PluginError::InvalidConfig(format!("key `rules`: {e}")))?,
        None => RuleSet::all(),
    };
    let replacement = match config_get("mode").as_deref() {
        None | Some("placeholder") => Replacement::Placeholder,
        Some("pseudonym") => {
            let key = config_get("hmac_key").filter(|k| !k.is_empty()).ok_or_else(|| {
                PluginError::InvalidConfig(
                    "key `hmac_key`: required when mode = \"pseudonym\" (set it, e.g. from an environment variable)"
                        .into(),
                )
            })?;
            let key_id = config_get("hmac_key_id").unwrap_or_else(|| "k1".into());
            Replacement::Pseudonym { key: key.into_bytes(), key_id }
        }
        Some(other) => {
            return Err(PluginError::InvalidConfig(format!(
                "key `mode`: expected \"placeholder\" or \"pseudonym\", found {other:?}"
            )));
        }
    };
    log(LogLevel::Debug, "redactor-pii configured");
    Ok(Settings { scanner: Scanner::new(rules), replacement })
}

/// Writes into `out` the part of a field's path the rules use: the nearest
/// named step (array positions skipped), under `metadata.` when the field is
/// nested, e.g. `metadata.authorization` or `userId`. Costs O(depth), never
/// the length of the full path.
fn short_path(batch: &Batch, step: u32, out: &mut String) -> Result<(), PluginError> {
    let bad = || PluginError::InvalidInput("a path step points outside the batch".into());
    out.clear();
    let mut at = batch.paths.get(step as usize).ok_or_else(bad)?;
    let nested = at.parent.is_some();
    // Bounded by the number of steps, so a malformed cycle cannot spin.
    for _ in 0..batch.paths.len() {
        if at.name_len > 0 {
            break;
        }
        match at.parent {
            Some(parent) => at = batch.paths.get(parent as usize).ok_or_else(bad)?,
            None => break,
        }
    }
    let name = batch
        .buffer
        .get(at.name_start as usize..at.name_start as usize + at.name_len as usize)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or_else(bad)?;
    if nested {
        out.push_str("metadata.");
    }
    out.push_str(name);
    Ok(())
}

/// The component.
struct RedactorPii;

impl Guest for RedactorPii {
    fn redact(batch: Batch) -> Result<Vec<Finding>, PluginError> {
        let settings = SETTINGS.get_or_init(load_settings).as_ref().map_err(Clone::clone)?;
        let buffer = &batch.buffer;
        let text_at = |start: u32, len: u32| -> Result<&str, PluginError> {
            let bytes = buffer
                .get(start as usize..start as usize + len as usize)
                .ok_or_else(|| PluginError::InvalidInput("field points outside the buffer".into()))?;
            std::str::from_utf8(bytes).map_err(|_| PluginError::InvalidInput("field text is not UTF-8".into()))
        };
        let mut findings = Vec::new();
        let mut matches: Vec<Match> = Vec::new();
        let mut path = String::new();
        for (index, field) in batch.fields.iter().enumerate() {
            let text = text_at(field.text_start, field.text_len)?;
            short_path(&batch, field.path, &mut path)?;
            matches.clear();
            let ctx = FieldContext { path: &path, is_key: field.part == FieldPart::Key };
            settings.scanner.scan(ctx, text, &mut matches);
            for m in &matches {
                let found = &text[m.start..m.end];
                let replacement = pii_rules::safe_replacement(
                    match &settings.replacement {
                        Replacement::Placeholder => m.rule.placeholder().to_string(),
                        Replacement::Pseudonym { key, key_id } => pii_rules::pseudonym(key, key_id, m.rule, found),
                    },
                    found,
                );
                findings.push(Finding {
                    field: index as u32,
                    start: m.start as u32,
                    end: m.end as u32,
                    rule_id: m.rule.id().to_string(),
                    replacement,
                });
            }
        }
        Ok(findings)
    }
}

export!(RedactorPii);
