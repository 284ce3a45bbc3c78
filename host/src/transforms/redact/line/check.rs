//! Checking a scanned line as the event model would read it: field types,
//! the id, the timestamp and every [`EventLimits`] limit, counted as
//! [`EventLimits::check`] counts them. Only whether the line is accepted is
//! decided here; the reason a refused line gets comes from the event model
//! (see [`super::LineRecord::parse`]), so every source words it the same.
//!
//! Where the text holds a key twice the event model keeps the last value;
//! here every occurrence must pass, since the line is written on as it is.

use chrono::{DateTime, Utc};

use super::{Top, classify, end_of};
use crate::config::UnknownFields;
use crate::event::limits::{EventLimits, check_time};
use crate::event::scan::{Str, Token};
use crate::event::{STRING_FIELDS, valid_id};

/// Checks the tokens of `text`; returns the line's own id, if it has one.
pub(super) fn check(
    text: &str,
    tokens: &[Token],
    unknown: UnknownFields,
    limits: &EventLimits,
) -> Result<Option<String>, String> {
    if tokens.first() != Some(&Token::ObjectStart) {
        return Err("expected a JSON object per event".into());
    }
    let base = 64 + STRING_FIELDS.iter().map(|(name, _)| name.len() + 6).sum::<usize>();
    let mut c = Check { text, tokens, limits, fields: 0, size: base };
    let mut id = None;
    let mut i = 1;
    while let Token::Key(key) = &tokens[i] {
        let name = key.value(text);
        let v = i + 1;
        match (classify(&name), &tokens[v]) {
            // The event model keeps the last `id` given.
            (Top::Id, Token::Null) => id = None,
            (Top::Field(_) | Top::CreatedAt | Top::Metadata, Token::Null) => {}
            (Top::Id, Token::Str(s)) => {
                let s = s.value(text);
                if !valid_id(&s) {
                    return Err("field `id`: not a usable id".into());
                }
                id = Some(s.into_owned());
            }
            (Top::Field(_), Token::Str(s)) => {
                let len = c.len(s);
                if len > limits.max_value_bytes {
                    return Err(format!("{name}: over the value limit"));
                }
                c.size += len;
            }
            (Top::CreatedAt, Token::Str(s)) => {
                let t = DateTime::parse_from_rfc3339(&s.value(text))
                    .map_err(|e| format!("field `createdAt`: {e}"))?
                    .with_timezone(&Utc);
                check_time(t).map_err(|e| format!("createdAt: {e}"))?;
            }
            (Top::Metadata, Token::ObjectStart) => {
                c.object(v, 1)?;
            }
            (Top::Other, _) if unknown == UnknownFields::Preserve => {
                c.entry(i, 1)?;
            }
            (Top::Other, _) => return Err(format!("unknown top-level field {name}")),
            _ => return Err(format!("field `{name}` has the wrong type")),
        }
        i = end_of(tokens, v);
    }
    if c.size > limits.max_event_bytes {
        return Err("event: over the size limit".into());
    }
    Ok(id)
}

/// Checks a metadata object's tokens as [`EventLimits::check`] would, the
/// event's other fields having counted `size` bytes; returns the event's
/// size with the metadata.
pub(super) fn check_metadata(text: &str, tokens: &[Token], limits: &EventLimits, size: usize) -> Result<usize, String> {
    if tokens.first() != Some(&Token::ObjectStart) {
        return Err("metadata: expected a JSON object".into());
    }
    let mut c = Check { text, tokens, limits, fields: 0, size };
    c.object(0, 1)?;
    if c.size > limits.max_event_bytes {
        return Err("event: over the size limit".into());
    }
    Ok(c.size)
}

/// A walk over metadata, counting fields and bytes as the event model does.
struct Check<'a> {
    text: &'a str,
    tokens: &'a [Token],
    limits: &'a EventLimits,
    fields: usize,
    size: usize,
}

impl Check<'_> {
    /// The length of a string's value.
    fn len(&self, s: &Str) -> usize {
        if s.escaped { s.value(self.text).len() } else { s.raw.len() }
    }

    fn count(&mut self, bytes: usize) -> Result<(), String> {
        self.fields += 1;
        self.size += bytes + 4;
        if self.fields > self.limits.max_fields || self.size > self.limits.max_event_bytes {
            return Err("metadata: over the field or size limit".into());
        }
        Ok(())
    }

    /// An object at `i`, at nesting `depth`; returns the index after it.
    fn object(&mut self, i: usize, depth: usize) -> Result<usize, String> {
        if depth > self.limits.max_depth {
            return Err("metadata: nested too deeply".into());
        }
        let mut j = i + 1;
        while let Token::Key(_) = self.tokens[j] {
            j = self.entry(j, depth)?;
        }
        Ok(j + 1)
    }

    /// A key at `k` and its value; returns the index after the value.
    fn entry(&mut self, k: usize, depth: usize) -> Result<usize, String> {
        let Token::Key(key) = &self.tokens[k] else { return Err("expected a key".into()) };
        let len = self.len(key);
        if len > self.limits.max_key_bytes {
            return Err("metadata: a key over the limit".into());
        }
        self.count(len)?;
        self.value(k + 1, depth)
    }

    /// A value at `i` inside an object or array at nesting `depth`.
    fn value(&mut self, i: usize, depth: usize) -> Result<usize, String> {
        match &self.tokens[i] {
            Token::Str(s) => {
                let len = self.len(s);
                if len > self.limits.max_value_bytes {
                    return Err("metadata: a value over the limit".into());
                }
                self.count(len + 2)?;
                Ok(i + 1)
            }
            Token::Number(_) => self.count(20).map(|()| i + 1),
            Token::Bool(_) | Token::Null => self.count(5).map(|()| i + 1),
            Token::ArrayStart => {
                if depth + 1 > self.limits.max_depth {
                    return Err("metadata: nested too deeply".into());
                }
                let mut j = i + 1;
                while self.tokens[j] != Token::ArrayEnd {
                    j = self.value(j, depth + 1)?;
                }
                Ok(j + 1)
            }
            Token::ObjectStart => self.object(i, depth + 1),
            _ => Err("expected a value".into()),
        }
    }
}
