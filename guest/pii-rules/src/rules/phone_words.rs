//! Phone keywords: "phone", "tel", "mobile", ... (strong) and "call",
//! "contact", ... (weak), matched as packed words in a window around a
//! candidate, tightly (only filler words in between) for undelimited digit
//! runs, plus a few keywords in other scripts.

use crate::bytes::{Words, any_word_in, find, pack};

/// Keyword strength: 2 for phone words, 1 for "call"-like verbs, 0 otherwise.
fn phone_word(w: u128) -> u8 {
    static STRONG: Words<24> = Words::new([
        b"phone",
        b"phones",
        b"tel",
        b"telephone",
        b"telefon",
        b"telefono",
        b"telefone",
        b"telefonnummer",
        b"mobile",
        b"mobil",
        b"mob",
        b"cell",
        b"cellphone",
        b"fax",
        b"whatsapp",
        b"ph",
        b"sms",
        b"msisdn",
        b"handy",
        b"tlf",
        b"tfn",
        b"callback",
        b"phoneno",
        b"tele",
    ]);
    static WEAK: Words<9> =
        Words::new([b"call", b"called", b"calling", b"dial", b"dialed", b"ring", b"text", b"contact", b"reach"]);
    if STRONG.has(w) || w >> 40 != 0 && contains_phone(w) {
        2
    } else if WEAK.has(w) {
        1
    } else {
        0
    }
}

/// Whether a packed word contains "phone" (`cellphone`, `homephone`).
fn contains_phone(w: u128) -> bool {
    const PHONE: u128 = pack(b"phone");
    (0..12).any(|k| (w >> (8 * k)) & 0xff_ffff_ffff == PHONE)
}

/// Strongest phone keyword in `b[lo..hi]`.
pub(crate) fn phone_words_in(b: &[u8], lo: usize, hi: usize) -> u8 {
    let mut best = 0;
    any_word_in(b, lo, hi, |w| {
        best = best.max(phone_word(w));
        best == 2
    });
    best
}

/// A phone keyword right before `b[s..]` (separated only by punctuation and
/// filler words such as "number", "is", "me at") or right after `b[..e]`.
/// Undelimited digit runs need this tight evidence.
pub(crate) fn tight_phone_word(b: &[u8], s: usize, e: usize) -> u8 {
    static FILLER: Words<51> = Words::new([
        b"number",
        b"sent",
        b"send",
        b"sending",
        b"texted",
        b"numbers",
        b"no",
        b"nr",
        b"num",
        b"is",
        b"at",
        b"me",
        b"us",
        b"on",
        b"to",
        b"via",
        b"from",
        b"the",
        b"my",
        b"our",
        b"his",
        b"her",
        b"your",
        b"their",
        b"nummer",
        b"numero",
        b"de",
        b"du",
        b"di",
        b"mit",
        b"unter",
        b"was",
        b"please",
        b"or",
        b"and",
        b"primary",
        b"home",
        b"work",
        b"office",
        b"main",
        b"personal",
        b"alt",
        b"new",
        b"old",
        b"updated",
        b"changed",
        b"customer",
        b"user",
        b"a",
        b"an",
        b"contact",
    ]);
    let mut k = s;
    for _ in 0..5 {
        let mut skipped = 0;
        while k > 0 && !b[k - 1].is_ascii_alphanumeric() && b[k - 1] != b'\n' && skipped < 6 {
            k -= 1;
            skipped += 1;
        }
        if k == 0 || !b[k - 1].is_ascii_alphabetic() {
            break;
        }
        let we = k;
        while k > 0 && b[k - 1].is_ascii_alphabetic() {
            k -= 1;
        }
        let w = pack(&b[k..we]);
        let st = phone_word(w);
        if st > 0 {
            return st;
        }
        if !FILLER.has(w) {
            break;
        }
    }
    // `4155552671 (mobile)`
    let mut k = e;
    while k < b.len() && matches!(b[k], b' ' | b'(' | b'[' | b',' | b'-' | b':') && k - e < 4 {
        k += 1;
    }
    let ws = k;
    while k < b.len() && b[k].is_ascii_alphabetic() {
        k += 1;
    }
    phone_word(pack(&b[ws..k]))
}

/// Phone keywords in other scripts, matched as substrings of the window.
pub(crate) fn non_ascii_phone_word(b: &[u8], lo: usize, hi: usize) -> bool {
    const WORDS: &[&str] = &[
        "телефон",
        "тел.",
        "моб",
        "هاتف",
        "جوال",
        "موبايل",
        "تلفن",
        "电话",
        "電話",
        "手机",
        "携帯",
        "फ़ोन",
        "फोन",
        "मोबाइल",
        "téléphone",
        "teléfono",
        "telefone",
        "전화",
        "โทร",
        "טלפון",
    ];
    let w = &b[lo.min(b.len())..hi.min(b.len())];
    w.iter().any(|&c| c >= 0x80) && WORDS.iter().any(|k| find(w, 0, k.as_bytes()).is_some())
}
