//! Applying findings to a line as byte patches.
//!
//! A string without escapes is patched where it stands: its raw bytes are
//! its value, so only the found spans change (each replacement JSON-escaped).
//! A string with escapes is decoded, redacted and written back escaped the
//! way `serde_json` writes strings. A number with a finding becomes a JSON
//! string of its redacted text, as in the event model. A redacted key that
//! would repeat a sibling's name gets `#2`, `#3`, ..., so no key hides
//! another once parsed.

use std::collections::HashMap;
use std::ops::Range;

use super::super::apply::replace;
use super::{LineRecord, Top, end_of, number_text};
use crate::event::STRING_FIELDS;
use crate::event::scan::{Token, scan};
use crate::runtime::GuestFailure;
use crate::transforms::redact::DocFields;

/// The line with the findings of its packed fields applied.
pub(super) fn apply(line: &LineRecord, fields: &mut DocFields<'_>) -> Result<LineRecord, GuestFailure> {
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
        return Ok(line.clone());
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
    // strings: the structure, and so every token index, stays. Should that
    // ever not hold, the line fails closed rather than going out as it is.
    let kept = scan(&out, &mut tokens).is_ok() && tokens.len() == line.tokens.len();
    if !kept {
        return Err(GuestFailure::InvalidFinding("the findings would change the line's JSON structure".into()));
    }
    Ok(LineRecord { id: line.id.clone(), text: out, tokens, whole: line.whole, base: line.base })
}

/// The final names of redacted keys: a name that another key of the same
/// object already has gets the first free `#n` suffix. In a whole line the
/// top-level object and `metadata` are one namespace (the event model puts
/// unknown top-level fields into metadata), and a top-level key never takes
/// an event field's name: a redacted unknown field never turns into `orgId`
/// or `metadata`. Linear in the line's tokens, however many keys change.
fn unique_keys(line: &LineRecord, keys: Vec<(usize, String)>) -> Vec<(usize, String)> {
    if keys.is_empty() {
        return keys;
    }
    let parents = key_parents(&line.tokens);
    let metadata = if line.whole { metadata_object(line) } else { None };
    // Per namespace (its first object): how many keys hold each name.
    let mut spaces: HashMap<usize, HashMap<String, usize>> = HashMap::new();
    let mut suffixes: HashMap<(usize, String), u32> = HashMap::new();
    let mut out = Vec::with_capacity(keys.len());
    for (i, name) in keys {
        let Token::Key(old) = &line.tokens[i] else { continue };
        let object = parents[i];
        let shared = line.whole && (object == 0 || Some(object) == metadata);
        let space = if shared { 0 } else { object };
        let taken = spaces.entry(space).or_insert_with(|| {
            let objects: Vec<usize> =
                if shared { [Some(0), metadata].into_iter().flatten().collect() } else { vec![object] };
            names_in(line, &objects)
        });
        // A top-level key also must not take the name of an event field.
        let reserved = line.whole && object == 0;
        let old = old.value(&line.text);
        if let Some(n) = taken.get_mut(old.as_ref()) {
            *n = n.saturating_sub(1);
        }
        let free = |k: &str| taken.get(k).is_none_or(|n| *n == 0) && !(reserved && is_event_field(k));
        let name = if free(&name) {
            name
        } else {
            // Suffixes already handed out for this name are skipped at once.
            let first = suffixes.get(&(space, name.clone())).copied().unwrap_or(2);
            let n = (first..).find(|n| free(&format!("{name}#{n}"))).expect("some suffix is free");
            suffixes.insert((space, name.clone()), n + 1);
            format!("{name}#{n}")
        };
        *taken.entry(name.clone()).or_default() += 1;
        out.push((i, name));
    }
    out
}

/// For every key token, the index of the `{` of its object (one pass).
fn key_parents(tokens: &[Token]) -> Vec<usize> {
    let mut parents = vec![0; tokens.len()];
    let mut open = Vec::new();
    for (j, token) in tokens.iter().enumerate() {
        match token {
            Token::ObjectStart | Token::ArrayStart => open.push(j),
            Token::ObjectEnd | Token::ArrayEnd => {
                open.pop();
            }
            Token::Key(_) => parents[j] = open.last().copied().unwrap_or(0),
            _ => {}
        }
    }
    parents
}

/// The `{` of a whole line's `metadata` object, if it has one.
fn metadata_object(line: &LineRecord) -> Option<usize> {
    let mut found = None;
    line.top(|_, v, top| {
        if top == Top::Metadata && line.tokens[v] == Token::ObjectStart {
            found = Some(v);
        }
    });
    found
}

/// How many keys of `objects` hold each name.
fn names_in(line: &LineRecord, objects: &[usize]) -> HashMap<String, usize> {
    let mut names: HashMap<String, usize> = HashMap::new();
    for &object in objects {
        let mut j = object + 1;
        while let Token::Key(s) = &line.tokens[j] {
            *names.entry(s.value(&line.text).into_owned()).or_default() += 1;
            j = end_of(&line.tokens, j + 1);
        }
    }
    names
}

/// Whether `name` is one of the event's own top-level fields.
fn is_event_field(name: &str) -> bool {
    STRING_FIELDS.iter().any(|(camel, snake)| name == *camel || name == *snake)
        || matches!(name, "id" | "createdAt" | "created_at" | "metadata")
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
