//! Spelled-out e-mail obfuscations: `john [at] example [dot] com`,
//! `john(at)example(dot)com`, `john {at} example {dot} com`,
//! `john AT example DOT com`, `john at example dot com`, `john @ example.com`,
//! defanged `example[.]com`.
//!
//! Bracketed forms accept any alphabetic TLD. Bare-word forms (` at `,
//! ` dot `) need a known TLD and no stop-word as the local part or first
//! domain label, so "look at the dot matrix" stays untouched; a bare ` at `
//! with literal dots also needs an address-like local part (`john.doe`).

#[cfg(test)]
use {super::push, crate::Match, crate::rule::Rule};

use super::email::{is_local, tld_ok};
use crate::bytes::{Words, any_word_in, at, before, is_alnum, is_known_tld, starts_ic};

#[inline]
fn is_open(c: u8) -> bool {
    matches!(c, b'[' | b'(' | b'{' | b'<')
}

#[inline]
fn is_close(c: u8) -> bool {
    matches!(c, b']' | b')' | b'}' | b'>')
}

fn skip_spaces(b: &[u8], mut i: usize, max: usize) -> usize {
    let s = i;
    while i < b.len() && b[i] == b' ' && i - s < max {
        i += 1;
    }
    i
}

fn skip_spaces_back(b: &[u8], mut i: usize, max: usize) -> usize {
    let e = i;
    while i > 0 && b[i - 1] == b' ' && e - i < max {
        i -= 1;
    }
    i
}

/// How a separator token was written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// `[at]`, `(dot)`, `[.]`: deliberate obfuscation.
    Bracket,
    /// ` at `, ` DOT `: plain words, weak evidence.
    Word,
    /// ` @ `: the symbol with spaces around it.
    Spaced,
}

/// A separator token (`word` is `at` or `dot`) starting at `i` (right after
/// the previous part, spaces included). Returns its end and kind.
fn token_at(b: &[u8], i: usize, word: &[u8], sym: u8) -> Option<(usize, Tok)> {
    let j = skip_spaces(b, i, 2);
    if is_open(at(b, j)) {
        let k = skip_spaces(b, j + 1, 2);
        let k = if starts_ic(b, k, word) {
            k + word.len()
        } else if at(b, k) == sym {
            k + 1
        } else {
            return None;
        };
        let k = skip_spaces(b, k, 2);
        if !is_close(at(b, k)) {
            return None;
        }
        return Some((skip_spaces(b, k + 1, 2), Tok::Bracket));
    }
    if at(b, j) == sym && j > i {
        let k = skip_spaces(b, j + 1, 2);
        return (k > j + 1).then_some((k, Tok::Spaced));
    }
    if j == i + 1 && starts_ic(b, j, word) && at(b, j + word.len()) == b' ' {
        let w = &b[j..j + word.len()];
        // All-lowercase or all-uppercase only ("At" starts sentences).
        if w.iter().all(u8::is_ascii_lowercase) || w.iter().all(u8::is_ascii_uppercase) {
            return Some((j + word.len() + 1, Tok::Word));
        }
    }
    None
}

/// A dot token ending at `e` (exclusive), scanning backwards: returns its start.
fn dot_token_before(b: &[u8], e: usize) -> Option<(usize, bool)> {
    if before(b, e) == b'.' {
        return Some((e - 1, false));
    }
    let j = skip_spaces_back(b, e, 2);
    if j > 0 && is_close(b[j - 1]) {
        let k = skip_spaces_back(b, j - 1, 2);
        let k = if k >= 3 && starts_ic(b, k - 3, b"dot") {
            k - 3
        } else if before(b, k) == b'.' {
            k - 1
        } else {
            return None;
        };
        let k = skip_spaces_back(b, k, 2);
        if k == 0 || !is_open(b[k - 1]) {
            return None;
        }
        return Some((skip_spaces_back(b, k - 1, 2), false));
    }
    if j + 1 == e && j >= 4 && starts_ic(b, j - 3, b"dot") && b[j - 4] == b' ' {
        return Some((j - 4, true));
    }
    None
}

static LOCAL_STOP: Words<75> = Words::new([
    b"a",
    b"an",
    b"the",
    b"me",
    b"us",
    b"him",
    b"her",
    b"them",
    b"it",
    b"you",
    b"we",
    b"i",
    b"they",
    b"look",
    b"looks",
    b"looking",
    b"looked",
    b"is",
    b"was",
    b"are",
    b"were",
    b"be",
    b"been",
    b"arrive",
    b"arrived",
    b"stay",
    b"stayed",
    b"meet",
    b"work",
    b"works",
    b"based",
    b"located",
    b"available",
    b"hosted",
    b"here",
    b"there",
    b"now",
    b"this",
    b"that",
    b"error",
    b"failed",
    b"failure",
    b"started",
    b"stopped",
    b"done",
    b"sent",
    b"seen",
    b"found",
    b"all",
    b"only",
    b"even",
    b"and",
    b"or",
    b"but",
    b"not",
    b"point",
    b"least",
    b"most",
    b"once",
    b"time",
    b"up",
    b"down",
    b"in",
    b"out",
    b"off",
    b"on",
    b"home",
    b"aim",
    b"aimed",
    b"good",
    b"bad",
    b"best",
    b"fast",
    b"slow",
    b"peak",
]);

static DOMAIN_STOP: Words<47> = Words::new([
    b"a",
    b"an",
    b"the",
    b"this",
    b"that",
    b"my",
    b"your",
    b"our",
    b"their",
    b"his",
    b"her",
    b"its",
    b"some",
    b"any",
    b"all",
    b"least",
    b"most",
    b"first",
    b"last",
    b"same",
    b"end",
    b"start",
    b"home",
    b"work",
    b"night",
    b"noon",
    b"midnight",
    b"once",
    b"time",
    b"which",
    b"what",
    b"one",
    b"two",
    b"no",
    b"each",
    b"every",
    b"risk",
    b"scale",
    b"startup",
    b"boot",
    b"runtime",
    b"line",
    b"position",
    b"offset",
    b"index",
    b"step",
    b"level",
]);

static MAIL_WORDS: Words<5> = Words::new([b"email", b"mail", b"emails", b"write", b"mailto"]);

fn stop<const N: usize>(list: &Words<N>, w: &[u8]) -> bool {
    list.has_word(w)
}

/// Try an obfuscated address whose at-token starts at `t0` (its leading
/// spaces included) and ends at `t1`.
fn try_at(b: &[u8], t0: usize, t1: usize, kind: Tok) -> Option<(usize, usize)> {
    let at_word = kind == Tok::Word;
    // Local part, backwards, possibly with dot tokens.
    let mut s = t0;
    let mut spelled_dot = false;
    let mut bare = kind != Tok::Bracket;
    let mut runs = 0;
    loop {
        let e = s;
        while s > 0 && e - s < 64 && is_local(b[s - 1]) && b[s - 1] != b'\'' {
            s -= 1;
        }
        while s < e && !is_alnum(b[s]) && b[s] != b'_' {
            s += 1;
        }
        if s == e {
            if runs == 0 {
                return None;
            }
            s = e;
            break;
        }
        runs += 1;
        if runs > 8 {
            break;
        }
        match dot_token_before(b, s) {
            Some((ds, db)) if ds < s - 1 => {
                // Only accept a spelled dot if a run precedes it.
                if ds > 0 && is_local(b[ds - 1]) && b[ds - 1] != b'.' {
                    spelled_dot = true;
                    bare |= db;
                    s = ds;
                    continue;
                }
                break;
            }
            _ => break,
        }
    }
    let local = &b[s..t0];
    // Domain, forwards.
    let mut j = t1;
    let mut labels = 0;
    let mut first: &[u8] = &[];
    let mut last_start;
    loop {
        let ls = j;
        while j < b.len() && (is_alnum(b[j]) || b[j] == b'-') && j - ls < 63 {
            j += 1;
        }
        if j == ls {
            return None;
        }
        if labels == 0 {
            first = &b[ls..j];
        }
        labels += 1;
        last_start = ls;
        if labels > 16 {
            return None;
        }
        if at(b, j) == b'.' && is_alnum(at(b, j + 1)) {
            j += 1;
            continue;
        }
        match token_at(b, j, b"dot", b'.') {
            Some((k, kind)) if is_alnum(at(b, k)) => {
                spelled_dot = true;
                bare |= kind != Tok::Bracket;
                j = k;
            }
            _ => break,
        }
    }
    let end = j;
    let tld = &b[last_start..end];
    if labels < 2 || !tld_ok(tld) {
        return None;
    }
    if bare {
        let mut low = [0u8; 24];
        let n = tld.len().min(24);
        for (d, c) in low.iter_mut().zip(tld) {
            *d = c.to_ascii_lowercase();
        }
        if !is_known_tld(&low[..n]) || stop(&LOCAL_STOP, local) || stop(&DOMAIN_STOP, first) {
            return None;
        }
        // `jane at example.org` reads like prose unless a mail word is near.
        if at_word
            && !spelled_dot
            && local.iter().all(u8::is_ascii_alphabetic)
            && !any_word_in(b, s.saturating_sub(32), s, |w| MAIL_WORDS.has(w))
        {
            return None;
        }
    }
    Some((s, end))
}

/// Find spelled-out / spaced e-mail addresses.
/// An obfuscated address whose at-token contains position `i` (the `a` of
/// `at`, or a spaced `@`): returns (start, end).
#[inline]
pub(crate) fn at_token(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let c = b[i];
    let prev = before(b, i);
    let hit = if c == b'@' {
        prev == b' ' || at(b, i + 1) == b' '
    } else {
        (c | 0x20 == b'a') && (prev == b' ' || is_open(prev)) && at(b, i + 1) | 0x20 == b't'
    };
    if !hit {
        return None;
    }
    // Find where the token starts: the end of the local part.
    let mut t0 = i;
    while t0 > 0 && i - t0 < 3 && (b[t0 - 1] == b' ' || is_open(b[t0 - 1])) {
        t0 -= 1;
    }
    if t0 == i || t0 == 0 || !is_local(b[t0 - 1]) {
        return None;
    }
    let (t1, kind) = token_at(b, t0, b"at", b'@')?;
    try_at(b, t0, t1, kind)
}

/// Find spelled-out / spaced e-mail addresses (whole-text driver, used by tests).
#[cfg(test)]
pub(crate) fn scan(b: &[u8], out: &mut Vec<Match>) {
    let mut i = 1;
    while i < b.len() {
        if let Some((s, e)) = at_token(b, i) {
            push(out, s, e, Rule::Email);
            i = e;
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(t: &str) -> Vec<&str> {
        let mut v = Vec::new();
        scan(t.as_bytes(), &mut v);
        v.iter().map(|m| &t[m.start..m.end]).collect()
    }

    #[test]
    fn positives() {
        for (t, want) in [
            ("mail john [at] example [dot] com now", "john [at] example [dot] com"),
            ("john(at)example(dot)com", "john(at)example(dot)com"),
            ("x john {at} example {dot} com", "john {at} example {dot} com"),
            ("contact: john AT example DOT com", "john AT example DOT com"),
            ("write john at example dot com please", "john at example dot com"),
            ("jane.doe [at] mail.example.org", "jane.doe [at] mail.example.org"),
            ("john.smith at example.com", "john.smith at example.com"),
            ("john [dot] smith [at] example [dot] co [dot] uk", "john [dot] smith [at] example [dot] co [dot] uk"),
            ("john @ example.com", "john @ example.com"),
            ("john[at]example[.]com", "john[at]example[.]com"),
            ("write to john @ example . com", "john @ example . com"),
            ("email me: jane at example.org", "jane at example.org"),
        ] {
            assert_eq!(found(t), [want], "{t}");
        }
    }

    #[test]
    fn negatives() {
        for t in [
            "look at the dot matrix",
            "Server started at port 8080",
            "we meet at noon. dot the i's",
            "Failure at api.example.com",
            "at com.example.Foo.bar(Foo.java:42)",
            "logged in at app.example.com",
            "look at the dot com bubble",
            "cat dog",
            "arrived at home dot com",
        ] {
            assert!(found(t).is_empty(), "{t}: {:?}", found(t));
        }
    }
}
