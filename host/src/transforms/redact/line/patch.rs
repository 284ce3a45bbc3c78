//! Applying findings to a line as byte patches.
//!
//! A string without escapes is patched where it stands: its raw bytes are
//! its value, so only the found spans change (each replacement JSON-escaped).
//! A string with escapes is decoded, redacted and written back escaped the
//! way `serde_json` writes strings. A number with a finding becomes a JSON
//! string of its redacted text, as in the event model. A redacted key that
//! would repeat a sibling's name gets `#2`, `#3`, ..., so no key hides
//! another once parsed.

use std::collections::HashSet;
use std::ops::Range;

use super::super::apply::replace;
use super::{LineRecord, end_of, number_text};
use crate::event::scan::{Token, scan};
use crate::transforms::redact::DocFields;

/// The line with the findings of its packed fields applied.
pub(super) fn apply(line: &LineRecord, fields: &mut DocFields<'_>) -> LineRecord {
    let text = &line.text;
    let mut patches: Vec<(Range<usize>, String)> = Vec::new();
    let mut keys: Vec<(usize, String)> = Vec::new();
    for &ordinal in fields.ordinals().iter().filter(|o| **o >= line.base) {
        let Some(list) = fields.take(ordinal) else { continue };
        let i = (ordinal - line.base) as usize;
        match &line.tokens[i] {
            Token::Str(s) if !s.escaped => {
                let raw = s.raw.start;
                for f in list {
                    let span = raw + f.start as usize..raw + f.end as usize;
                    patches.push((span, escape(&f.replacement)));
                }
            }
            Token::Str(s) => patches.push((s.raw.clone(), escape(&replace(&s.value(text), list)))),
            Token::Key(s) => keys.push((i, replace(&s.value(text), list))),
            Token::Number(raw) => {
                let redacted = replace(&number_text(&text[raw.clone()]), list);
                patches.push((raw.clone(), format!("\"{}\"", escape(&redacted))));
            }
            _ => debug_assert!(false, "a packed ordinal is a string, key or number"),
        }
    }
    for (i, name) in unique_keys(line, keys) {
        let Token::Key(s) = &line.tokens[i] else { continue };
        patches.push((s.raw.clone(), escape(&name)));
    }
    if patches.is_empty() {
        return line.clone();
    }
    patches.sort_by_key(|(range, _)| range.start);
    let extra: usize = patches.iter().map(|(_, p)| p.len()).sum();
    let mut out = String::with_capacity(text.len() + extra);
    let mut at = 0;
    for (range, replacement) in &patches {
        out.push_str(&text[at..range.start]);
        out.push_str(replacement);
        at = range.end;
    }
    out.push_str(&text[at..]);
    let mut tokens = Vec::with_capacity(line.tokens.len());
    // Patches replace string contents with escaped text and numbers with
    // strings: the structure, and so every token index, stays.
    scan(&out, &mut tokens).expect("a patched line is still JSON");
    debug_assert_eq!(tokens.len(), line.tokens.len());
    LineRecord { id: line.id.clone(), text: out, tokens, whole: line.whole, base: line.base }
}

/// The final names of redacted keys: a name that another key of the same
/// object already has gets the first free `#n` suffix.
fn unique_keys(line: &LineRecord, keys: Vec<(usize, String)>) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::with_capacity(keys.len());
    for (i, name) in keys {
        let object = enclosing_object(&line.tokens, i);
        let mut taken: HashSet<String> = HashSet::new();
        let mut j = object + 1;
        while let Token::Key(s) = &line.tokens[j] {
            if j != i {
                let current = out.iter().find(|(k, _)| *k == j).map(|(_, n)| n.clone());
                taken.insert(current.unwrap_or_else(|| s.value(&line.text).into_owned()));
            }
            j = end_of(&line.tokens, j + 1);
        }
        let name = if taken.contains(&name) {
            (2..).map(|n| format!("{name}#{n}")).find(|k| !taken.contains(k)).expect("some suffix is free")
        } else {
            name
        };
        out.push((i, name));
    }
    out
}

/// The index of the `{` of the object holding the key at `i`.
fn enclosing_object(tokens: &[Token], i: usize) -> usize {
    let mut depth = 0usize;
    for j in (0..i).rev() {
        match tokens[j] {
            Token::ObjectEnd | Token::ArrayEnd => depth += 1,
            Token::ObjectStart | Token::ArrayStart if depth == 0 => return j,
            Token::ObjectStart | Token::ArrayStart => depth -= 1,
            _ => {}
        }
    }
    0
}

/// `text` as the content of a JSON string (no quotes), escaped as
/// `serde_json` writes it.
fn escape(text: &str) -> String {
    if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return text.to_string();
    }
    let quoted = serde_json::to_string(text).expect("a string always serializes");
    quoted[1..quoted.len() - 1].to_string()
}
