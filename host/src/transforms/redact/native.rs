//! The redactor-pii rules compiled natively into the host, behind the same
//! [`FindingSource`] interface as a WASM module. It is the baseline of
//! `wasmtel bench redact` (same rules, same batch, no sandbox), so the
//! benchmark measures exactly what the sandbox costs.

use pii_rules::{FieldContext, Match, RuleSet, Scanner};

use super::FindingSource;
use super::apply::field_text;
use super::pack::short_path;
use crate::runtime::GuestFailure;
use crate::runtime::redactor::{Batch, FieldPart, Finding};

/// Native PII rules with placeholder replacements.
pub struct NativeRedactor {
    scanner: Scanner,
}

impl NativeRedactor {
    /// A native redactor with the given rules.
    pub fn new(rules: RuleSet) -> NativeRedactor {
        NativeRedactor { scanner: Scanner::new(rules) }
    }
}

impl FindingSource for NativeRedactor {
    fn name(&self) -> &str {
        "native-pii"
    }

    fn sha256(&self) -> &str {
        "native"
    }

    fn find(&self, batch: &Batch) -> Result<Vec<Finding>, GuestFailure> {
        let mut findings = Vec::new();
        let mut matches: Vec<Match> = Vec::new();
        let mut path = String::new();
        for (index, field) in batch.fields.iter().enumerate() {
            let text = field_text(batch, index);
            short_path(batch, field.path, &mut path);
            matches.clear();
            let ctx = FieldContext { path: &path, is_key: field.part == FieldPart::Key };
            self.scanner.scan(ctx, text, &mut matches);
            findings.extend(matches.iter().map(|m| Finding {
                field: index as u32,
                start: m.start as u32,
                end: m.end as u32,
                rule_id: m.rule.id().to_string(),
                replacement: pii_rules::safe_replacement(m.rule.placeholder().to_string(), &text[m.start..m.end]),
            }));
        }
        Ok(findings)
    }
}
