//! The shape-preserving path: a JSON line redacted in place.
//!
//! A [`LineRecord`] keeps the line's text and its tokens ([`scan`]); no
//! `Value` tree is built. Packing hands the redactors the same texts under
//! the same event-model paths as packing the parsed [`Event`](crate::event::Event)
//! would (`org_id` is `orgId`, an unknown top-level key is
//! `metadata.<key>`, numbers in their canonical form), and findings are
//! applied as byte patches to the text ([`patch`]): a line without findings
//! comes out exactly as it went in, and a redacted one differs only in the
//! redacted strings. Key names and order, number text, timestamps and
//! whitespace stay as written; a duplicate key is scanned (and redacted)
//! like any other, since the text keeps it.
//!
//! A node's ordinal is its token's index: redacting replaces a string's (or
//! number's) content and never adds or removes a token, so ordinals stay
//! valid from the first redactor of a chain to the audit paths rendered at
//! the end.

mod check;
pub(super) mod patch;

use std::borrow::Cow;

use super::pack::{METADATA_STEP, Packer, push_index, push_key};
use super::{DocFields, Document};
use crate::config::UnknownFields;
use crate::event::limits::EventLimits;
use crate::event::scan::{Token, scan};
use crate::event::{Event, STRING_FIELDS};
use crate::guard::RedactedLine;
use crate::runtime::GuestFailure;
use crate::runtime::redactor::FieldPart;

/// A JSON line on its way through the redaction chain.
#[derive(Debug, Clone, PartialEq)]
pub struct LineRecord {
    id: String,
    text: String,
    tokens: Vec<Token>,
    /// True for a whole event; false for the text of a metadata object
    /// alone (inside an [`super::EncodedRecord`]).
    whole: bool,
    /// Ordinal of token 0: the nodes before it belong to the document
    /// holding this text.
    base: u32,
}

/// What a top-level key of a line is in the event model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Top {
    /// One of the string fields (index into [`STRING_FIELDS`]).
    Field(usize),
    /// The event id (not scanned).
    Id,
    /// `createdAt` (not scanned).
    CreatedAt,
    /// The metadata object.
    Metadata,
    /// Anything else: a metadata entry (`unknown_fields = "preserve"`).
    Other,
}

fn classify(name: &str) -> Top {
    if let Some(i) = STRING_FIELDS.iter().position(|(camel, snake)| name == *camel || name == *snake) {
        return Top::Field(i);
    }
    match name {
        "id" => Top::Id,
        "createdAt" | "created_at" => Top::CreatedAt,
        "metadata" => Top::Metadata,
        _ => Top::Other,
    }
}

/// Index of the token after the value starting at `i`.
fn end_of(tokens: &[Token], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    loop {
        match tokens[j] {
            Token::ObjectStart | Token::ArrayStart => depth += 1,
            Token::ObjectEnd | Token::ArrayEnd => depth -= 1,
            _ => {}
        }
        j += 1;
        if depth == 0 {
            return j;
        }
    }
}

/// A number's text as the event model packs it (`serde_json`'s display of
/// the parsed number): integers as written, anything else reformatted.
fn number_text(raw: &str) -> Cow<'_, str> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit()) && raw != "-0" {
        return Cow::Borrowed(raw);
    }
    match serde_json::from_str::<serde_json::Number>(raw) {
        Ok(n) => Cow::Owned(n.to_string()),
        Err(_) => Cow::Borrowed(raw),
    }
}

impl LineRecord {
    /// Scans and checks one line (surrounding whitespace is ignored) as the
    /// event model reads it: a JSON object whose fields have the right
    /// types, within `limits`, unknown top-level fields as `unknown` says.
    /// The line's own `id` field, if any, is its id; else `id`. The error
    /// names the field and the limit, as parsing into an event does.
    pub fn parse(text: &str, id: String, unknown: UnknownFields, limits: &EventLimits) -> Result<LineRecord, String> {
        let text = text.trim();
        let mut tokens = Vec::new();
        let checked = scan(text, &mut tokens)
            .map_err(|e| e.to_string())
            .and_then(|()| check::check(text, &tokens, unknown, limits));
        match checked {
            Ok(given) => {
                Ok(LineRecord { id: given.unwrap_or(id), text: text.to_string(), tokens, whole: true, base: 0 })
            }
            // The event model says why, in the words every other source uses.
            Err(fast) => Err(model_error(text, unknown, limits).unwrap_or(fast)),
        }
    }

    /// A metadata object's JSON text, as the raw log stores it, its nodes
    /// numbered from `base`; `None` if it is not a JSON object.
    pub(super) fn metadata(text: String, base: u32) -> Option<LineRecord> {
        let mut tokens = Vec::new();
        scan(&text, &mut tokens).ok()?;
        (tokens.first() == Some(&Token::ObjectStart)).then(|| LineRecord {
            id: String::new(),
            text,
            tokens,
            whole: false,
            base,
        })
    }

    /// The event id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The line's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The id and the text.
    pub fn into_parts(self) -> (String, String) {
        (self.id, self.text)
    }

    fn pack_entry(&self, p: &mut Packer<'_>, k: usize, step: u32) -> usize {
        let Token::Key(key) = &self.tokens[k] else { return k + 1 };
        let key = key.value(&self.text);
        p.ordinal = self.base + k as u32;
        let start = p.field(FieldPart::Key, step, &key);
        match self.tokens[k + 1] {
            Token::Bool(_) | Token::Null => k + 2,
            _ => {
                let child = p.step(step, start, key.len() as u32, None);
                self.pack_value(p, k + 1, child)
            }
        }
    }

    fn pack_object(&self, p: &mut Packer<'_>, i: usize, step: u32) -> usize {
        let mut j = i + 1;
        while let Token::Key(_) = self.tokens[j] {
            j = self.pack_entry(p, j, step);
        }
        j + 1
    }

    fn pack_value(&self, p: &mut Packer<'_>, i: usize, step: u32) -> usize {
        match &self.tokens[i] {
            Token::Str(s) => {
                let value = s.value(&self.text);
                if !value.is_empty() {
                    p.ordinal = self.base + i as u32;
                    p.field(FieldPart::Value, step, &value);
                }
                i + 1
            }
            Token::Number(raw) => {
                p.ordinal = self.base + i as u32;
                p.field(FieldPart::Value, step, &number_text(&self.text[raw.clone()]));
                i + 1
            }
            Token::ArrayStart => {
                let (mut j, mut index) = (i + 1, 0u32);
                while self.tokens[j] != Token::ArrayEnd {
                    if let Token::Bool(_) | Token::Null = self.tokens[j] {
                        j += 1;
                    } else {
                        let child = p.step(step, 0, 0, Some(index));
                        j = self.pack_value(p, j, child);
                    }
                    index += 1;
                }
                j + 1
            }
            Token::ObjectStart => self.pack_object(p, i, step),
            _ => i + 1,
        }
    }

    /// Calls `visit` with each top-level key's token index, its value's
    /// index and its meaning.
    fn top(&self, mut visit: impl FnMut(usize, usize, Top)) {
        let mut i = 1;
        while let Token::Key(key) = &self.tokens[i] {
            visit(i, i + 1, classify(&key.value(&self.text)));
            i = end_of(&self.tokens, i + 1);
        }
    }
}

/// Whether `text` is a JSON object within `limits` as event metadata, the
/// event's string fields having counted `size` bytes (see
/// [`EventLimits::check`]): `Some(event size)` if so. `None` does not say
/// why; the event model does (a key given twice counts twice here, where
/// the event model keeps only the last).
pub fn metadata_within(text: &str, limits: &EventLimits, size: usize) -> Option<usize> {
    let mut tokens = Vec::new();
    scan(text, &mut tokens).ok()?;
    check::check_metadata(text, &tokens, limits, size).ok()
}

/// Why the event model refuses `text`, if it does.
fn model_error(text: &str, unknown: UnknownFields, limits: &EventLimits) -> Option<String> {
    match Event::from_json_line_with_id(text, unknown, chrono::Utc::now()) {
        Err(e) => Some(e.to_string()),
        Ok((_, event)) => limits.check(&event).err().map(|e| e.to_string()),
    }
}

impl Document for LineRecord {
    type Sealed = RedactedLine;

    fn id(&self) -> &str {
        &self.id
    }

    fn pack(&self, p: &mut Packer<'_>) {
        if !self.whole {
            self.pack_object(p, 0, METADATA_STEP);
            return;
        }
        self.top(|k, v, top| match top {
            Top::Field(f) => {
                if let Token::Str(s) = &self.tokens[v] {
                    let value = s.value(&self.text);
                    if !value.is_empty() {
                        p.ordinal = v as u32;
                        p.field(FieldPart::Value, f as u32, &value);
                    }
                }
            }
            Top::Metadata => {
                if self.tokens[v] == Token::ObjectStart {
                    self.pack_object(p, v, METADATA_STEP);
                }
            }
            Top::Other => {
                self.pack_entry(p, k, METADATA_STEP);
            }
            Top::Id | Top::CreatedAt => {}
        });
    }

    fn apply(&self, fields: &mut DocFields<'_>) -> Result<Self, GuestFailure> {
        patch::apply(self, fields)
    }

    fn render_paths(&self, wanted: &[u32]) -> Vec<String> {
        let mut r = Renderer { line: self, wanted, out: Vec::with_capacity(wanted.len()) };
        if !self.whole {
            r.object(0, &mut String::from("metadata"));
            return r.out;
        }
        self.top(|k, v, top| match top {
            Top::Field(f) => r.node(v, STRING_FIELDS[f].0),
            Top::Metadata => {
                if self.tokens[v] == Token::ObjectStart {
                    r.object(v, &mut String::from("metadata"));
                }
            }
            Top::Other => {
                r.entry(k, &mut String::from("metadata"));
            }
            Top::Id | Top::CreatedAt => {}
        });
        debug_assert_eq!(r.out.len(), wanted.len(), "every wanted node is rendered");
        r.out
    }

    fn seal(self) -> RedactedLine {
        RedactedLine::seal(self.id, self.text)
    }
}

/// Renders audit paths by token index, in the event model's names.
struct Renderer<'a> {
    line: &'a LineRecord,
    wanted: &'a [u32],
    out: Vec<String>,
}

impl Renderer<'_> {
    fn node(&mut self, i: usize, path: &str) {
        while self.wanted.get(self.out.len()) == Some(&(self.line.base + i as u32)) {
            self.out.push(path.to_string());
        }
    }

    fn entry(&mut self, k: usize, path: &mut String) -> usize {
        let Token::Key(key) = &self.line.tokens[k] else { return k + 1 };
        self.node(k, path);
        let len = path.len();
        push_key(path, &key.value(&self.line.text));
        let next = self.value(k + 1, path);
        path.truncate(len);
        next
    }

    fn object(&mut self, i: usize, path: &mut String) -> usize {
        let mut j = i + 1;
        while let Token::Key(_) = self.line.tokens[j] {
            j = self.entry(j, path);
        }
        j + 1
    }

    fn value(&mut self, i: usize, path: &mut String) -> usize {
        match self.line.tokens[i] {
            Token::ArrayStart => {
                let (mut j, mut index) = (i + 1, 0);
                while self.line.tokens[j] != Token::ArrayEnd {
                    let len = path.len();
                    push_index(path, index);
                    j = self.value(j, path);
                    path.truncate(len);
                    index += 1;
                }
                j + 1
            }
            Token::ObjectStart => self.object(i, path),
            _ => {
                self.node(i, path);
                i + 1
            }
        }
    }
}

#[cfg(test)]
mod tests;
