//! A borrowed JSON scanner: one pass over a line's text that checks it is
//! JSON (exactly what `serde_json` reads into a `Value`) and
//! records where every key and scalar is, without building a tree or
//! copying a string.
//!
//! This is the first piece of the shape-preserving redaction path (issue
//! 10): the packer hands the guest the texts of the [`Token::Key`] and
//! [`Token::Str`]/[`Token::Number`] tokens, and findings are applied as
//! byte patches to the original line, so what has no findings is written
//! back exactly as it was read.

use std::borrow::Cow;
use std::ops::Range;

/// Deepest nesting of arrays and objects accepted: 127, as `serde_json`
/// (its recursion limit of 128 counts the entry that fails).
pub const MAX_DEPTH: usize = 127;

/// A string in the text: the bytes between its quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str {
    /// Byte range of the content, quotes excluded.
    pub raw: Range<usize>,
    /// Whether the content has backslash escapes (then its value differs
    /// from its raw bytes; see [`Str::value`]).
    pub escaped: bool,
}

impl Str {
    /// The string's value: borrowed from `text` when it has no escapes.
    pub fn value<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let raw = &text[self.raw.clone()];
        if self.escaped { Cow::Owned(unescape(raw)) } else { Cow::Borrowed(raw) }
    }
}

/// One token, in text order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// `{`
    ObjectStart,
    /// `}`
    ObjectEnd,
    /// `[`
    ArrayStart,
    /// `]`
    ArrayEnd,
    /// An object key.
    Key(Str),
    /// A string value.
    Str(Str),
    /// A number, as written (byte range).
    Number(Range<usize>),
    /// `true` or `false`.
    Bool(bool),
    /// `null`
    Null,
}

/// Why a text is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not valid JSON at byte {at}: {what}")]
pub struct ScanError {
    /// Byte offset of the problem.
    pub at: usize,
    /// What was expected or found.
    pub what: &'static str,
}

/// Scans `text` (one JSON value, surrounded by optional whitespace) into
/// `out` (cleared first, its allocation reused).
pub fn scan(text: &str, out: &mut Vec<Token>) -> Result<(), ScanError> {
    out.clear();
    let mut s = Scanner { b: text.as_bytes(), at: 0, out };
    s.ws();
    s.value(0)?;
    s.ws();
    if s.at != s.b.len() {
        return Err(s.err("trailing characters after the value"));
    }
    Ok(())
}

struct Scanner<'a, 'o> {
    b: &'a [u8],
    at: usize,
    out: &'o mut Vec<Token>,
}

impl Scanner<'_, '_> {
    fn err(&self, what: &'static str) -> ScanError {
        ScanError { at: self.at, what }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.at) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8], token: Token) -> Result<(), ScanError> {
        if self.b[self.at..].starts_with(word) {
            self.at += word.len();
            self.out.push(token);
            Ok(())
        } else {
            Err(self.err("expected a value"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), ScanError> {
        match self.b.get(self.at) {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => {
                let s = self.string()?;
                self.out.push(Token::Str(s));
                Ok(())
            }
            Some(b't') => self.literal(b"true", Token::Bool(true)),
            Some(b'f') => self.literal(b"false", Token::Bool(false)),
            Some(b'n') => self.literal(b"null", Token::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("expected a value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), ScanError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.at += 1;
        self.out.push(Token::ObjectStart);
        self.ws();
        if self.b.get(self.at) == Some(&b'}') {
            self.at += 1;
            self.out.push(Token::ObjectEnd);
            return Ok(());
        }
        loop {
            if self.b.get(self.at) != Some(&b'"') {
                return Err(self.err("expected a key"));
            }
            let key = self.string()?;
            self.out.push(Token::Key(key));
            self.ws();
            if self.b.get(self.at) != Some(&b':') {
                return Err(self.err("expected ':'"));
            }
            self.at += 1;
            self.ws();
            self.value(depth)?;
            if self.closed(b'}', Token::ObjectEnd, "expected ',' or '}'")? {
                return Ok(());
            }
        }
    }

    /// After an item: skips a `,` (false) or takes the closing `close` (true).
    fn closed(&mut self, close: u8, end: Token, what: &'static str) -> Result<bool, ScanError> {
        self.ws();
        match self.b.get(self.at) {
            Some(b',') => {
                self.at += 1;
                self.ws();
                Ok(false)
            }
            Some(&c) if c == close => {
                self.at += 1;
                self.out.push(end);
                Ok(true)
            }
            _ => Err(self.err(what)),
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), ScanError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.at += 1;
        self.out.push(Token::ArrayStart);
        self.ws();
        if self.b.get(self.at) == Some(&b']') {
            self.at += 1;
            self.out.push(Token::ArrayEnd);
            return Ok(());
        }
        loop {
            self.value(depth)?;
            if self.closed(b']', Token::ArrayEnd, "expected ',' or ']'")? {
                return Ok(());
            }
        }
    }

    /// A string starting at the opening quote.
    fn string(&mut self) -> Result<Str, ScanError> {
        self.at += 1;
        let start = self.at;
        let mut escaped = false;
        loop {
            // Skip plain bytes quickly; the text is UTF-8 already.
            let rest = &self.b[self.at..];
            let plain = rest.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            let Some(n) = plain else {
                self.at = self.b.len();
                return Err(self.err("unterminated string"));
            };
            self.at += n;
            match self.b[self.at] {
                b'"' => {
                    let raw = start..self.at;
                    self.at += 1;
                    return Ok(Str { raw, escaped });
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return Err(self.err("control character in a string")),
            }
        }
    }

    /// One escape, at its backslash.
    fn escape(&mut self) -> Result<(), ScanError> {
        self.at += 1;
        match self.b.get(self.at) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.at += 1;
                Ok(())
            }
            Some(b'u') => {
                let unit = self.hex4()?;
                if (0xDC00..0xE000).contains(&unit) {
                    return Err(self.err("lone trailing surrogate in a \\u escape"));
                }
                if (0xD800..0xDC00).contains(&unit) {
                    if self.b.get(self.at) != Some(&b'\\') || self.b.get(self.at + 1) != Some(&b'u') {
                        return Err(self.err("lone leading surrogate in a \\u escape"));
                    }
                    self.at += 1;
                    let low = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(self.err("lone leading surrogate in a \\u escape"));
                    }
                }
                Ok(())
            }
            _ => Err(self.err("invalid escape")),
        }
    }

    /// The four hex digits after a `u` (at the `u`).
    fn hex4(&mut self) -> Result<u32, ScanError> {
        let digits = self.b.get(self.at + 1..self.at + 5).ok_or_else(|| self.err("short \\u escape"))?;
        let mut unit = 0u32;
        for &d in digits {
            let v = (d as char).to_digit(16).ok_or_else(|| self.err("invalid \\u escape"))?;
            unit = unit * 16 + v;
        }
        self.at += 5;
        Ok(unit)
    }

    fn digits(&mut self) -> usize {
        let n = self.b[self.at..].iter().take_while(|c| c.is_ascii_digit()).count();
        self.at += n;
        n
    }

    fn number(&mut self) -> Result<(), ScanError> {
        let start = self.at;
        if self.b[self.at] == b'-' {
            self.at += 1;
        }
        match self.b.get(self.at) {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.b.get(self.at) == Some(&b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.b.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.b.get(self.at) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        // Like serde_json: a number whose value does not fit an f64 (after
        // falling back from integers) is refused, not read as infinity.
        let raw = &self.b[start..self.at];
        if raw.len() > 18 || raw.iter().any(|c| matches!(c, b'.' | b'e' | b'E')) {
            let text = std::str::from_utf8(raw).unwrap_or("x");
            if !text.parse::<f64>().is_ok_and(f64::is_finite) {
                return Err(ScanError { at: start, what: "number out of range" });
            }
        }
        self.out.push(Token::Number(start..self.at));
        Ok(())
    }
}

/// The value of a string's raw content that [`scan`] accepted.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.char_indices();
    while let Some((_, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((i, e)) = chars.next() else { break };
        match e {
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let hex = |at: usize| u32::from_str_radix(&raw[at..at + 4], 16).unwrap_or(0xFFFD);
                let unit = hex(i + 1);
                for _ in 0..4 {
                    chars.next();
                }
                let c = if (0xD800..0xDC00).contains(&unit) {
                    // scan checked that `\uDC00`-`\uDFFF` follows.
                    let low = hex(i + 7);
                    for _ in 0..6 {
                        chars.next();
                    }
                    char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                } else {
                    char::from_u32(unit)
                };
                out.push(c.unwrap_or('\u{FFFD}'));
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests;
