//! The word-start pass: one walk over the text that visits each word start
//! (a letter, digit or `_` after a non-word byte) and each stray `@`, and
//! hands it to the rules anchored there — self-identifying tokens, auth
//! schemes, spelled-out `at` e-mail tokens and IBANs — instead of each of
//! them scanning the whole text.

use super::{auth, email_obf, iban, push, tokens};
use crate::Match;
use crate::bytes::{F_LOWER, F_SPACE, F_UPPER};
use crate::rule::Rule;
use crate::scanner::Cx;

const fn build_word() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric() || c == b'_';
        i += 1;
    }
    t
}

/// ASCII letters, digits and `_`.
static WORD: [bool; 256] = build_word();

/// Run the word-anchored rules.
#[inline(never)]
pub(crate) fn scan(b: &[u8], cx: &Cx, out: &mut Vec<Match>) {
    let s = &cx.sum;
    let n = b.len();
    let tok = n >= 10 && (cx.on(Rule::Jwt) || cx.on(Rule::ApiToken) || cx.on(Rule::CloudKey));
    let auth_on = n >= 10 && s.any(F_SPACE) && cx.on(Rule::BearerToken);
    let obf = n >= 10 && cx.on(Rule::Email);
    let iban_on = n >= 15 && s.digits >= 6 && s.any(F_UPPER | F_LOWER) && cx.on(Rule::Iban);
    if !(tok || auth_on || obf || iban_on) {
        return;
    }
    let mut i = 0;
    while i < n {
        let c = b[i];
        if !WORD[c as usize] {
            if c == b'@'
                && obf
                && let Some((s, e)) = email_obf::at_token(b, i)
            {
                push(out, s, e, Rule::Email);
                i = e;
                continue;
            }
            i += 1;
            continue;
        }
        // `i` is a word start.
        if obf
            && c | 0x20 == b'a'
            && let Some((s, e)) = email_obf::at_token(b, i)
        {
            push(out, s, e, Rule::Email);
            i = e;
            continue;
        }
        if auth_on
            && matches!(c | 0x20, b'b' | b't' | b'd')
            && let Some((cs, e)) = auth::at_word(b, i)
        {
            push(out, cs, e, Rule::BearerToken);
            // Continue at the credential so a JWT inside is seen too.
            i = cs;
            continue;
        }
        if tok
            && tokens::first(c)
            && let Some((s, e, rule)) = tokens::at_word(b, i, cx)
        {
            if cx.on(rule) {
                push(out, s, e, rule);
                if rule == Rule::CloudKey
                    && let Some((ss, se)) = tokens::aws_secret_after(b, e)
                {
                    push(out, ss, se, Rule::CloudKey);
                }
            }
            i = e.max(i + 1);
            continue;
        }
        if iban_on
            && c.is_ascii_alphabetic()
            && let Some(e) = iban::at_word(b, i)
        {
            push(out, i, e, Rule::Iban);
            i = e;
            continue;
        }
        i += 1;
        while i < n && WORD[b[i] as usize] {
            i += 1;
        }
    }
}
