//! Corpus tests: recall on labelled PII, false positives on hard negatives,
//! preservation of non-PII text, pseudonyms, and char-boundary safety.

use pii_rules::{FieldContext, Match, Rule, RuleSet, Scanner, pseudonym, redact_with_placeholders};

const PII: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/corpus/pii.jsonl"));
const NEG: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/corpus/negatives.jsonl"));

struct Pos {
    text: String,
    pii: Vec<String>,
    rule: String,
}

fn positives() -> Vec<Pos> {
    PII.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("valid JSON line");
            Pos {
                text: v["text"].as_str().unwrap().to_string(),
                pii: v["pii"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect(),
                rule: v["rule"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

fn negatives() -> Vec<(String, String)> {
    NEG.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("valid JSON line");
            (v["text"].as_str().unwrap().to_string(), v["kind"].as_str().unwrap().to_string())
        })
        .collect()
}

fn redact(s: &Scanner, text: &str) -> (String, Vec<Match>) {
    let mut m = Vec::new();
    s.scan(FieldContext::value("message"), text, &mut m);
    check_invariants(text, &m);
    (redact_with_placeholders(text, &m), m)
}

fn check_invariants(text: &str, m: &[Match]) {
    let mut last = 0;
    for x in m {
        assert!(x.start < x.end, "empty match {x:?} in {text:?}");
        assert!(x.start >= last, "unsorted/overlapping {m:?} in {text:?}");
        assert!(x.end <= text.len());
        assert!(text.is_char_boundary(x.start) && text.is_char_boundary(x.end), "{x:?} in {text:?}");
        last = x.end;
    }
}

#[test]
fn corpus_sizes() {
    let p = positives();
    assert!(p.len() >= 250, "{} positives", p.len());
    assert!(negatives().len() >= 200);
    for x in &p {
        assert!(Rule::from_id(&x.rule).is_some(), "bad rule {}", x.rule);
        for v in &x.pii {
            assert!(x.text.contains(v.as_str()), "label {v:?} not in {:?}", x.text);
        }
    }
}

#[test]
fn recall_on_labelled_pii() {
    let s = Scanner::new(RuleSet::all());
    let (mut total, mut missed) = (0, 0);
    for p in positives() {
        let (out, _) = redact(&s, &p.text);
        for v in &p.pii {
            total += 1;
            if out.contains(v.as_str()) {
                missed += 1;
                println!("MISS [{}] {:?}\n   -> {:?}", p.rule, v, out);
            }
        }
    }
    let recall = 1.0 - missed as f64 / total as f64;
    println!("recall: {:.2}% ({} of {} labelled values)", recall * 100.0, total - missed, total);
    assert!(recall >= 0.97, "recall {recall}");
}

#[test]
fn false_positives_on_negatives() {
    let s = Scanner::new(RuleSet::all());
    let negs = negatives();
    let mut changed = 0;
    for (text, kind) in &negs {
        let (out, m) = redact(&s, text);
        if out != *text {
            changed += 1;
            let rules: Vec<_> = m.iter().map(|x| x.rule.id()).collect();
            println!("FP [{kind}] {text:?}\n   -> {out:?} {rules:?}");
        }
    }
    let rate = changed as f64 / negs.len() as f64;
    println!("false-positive rate: {:.2}% ({changed} of {})", rate * 100.0, negs.len());
    assert!(rate <= 0.02, "fp rate {rate}");
}

/// Maximal chunks of `text` not covered by any occurrence of a label.
fn non_pii_chunks<'a>(text: &'a str, labels: &[String]) -> Vec<&'a str> {
    let mut covered = vec![false; text.len()];
    for l in labels {
        for (i, _) in text.match_indices(l.as_str()) {
            covered[i..i + l.len()].iter_mut().for_each(|c| *c = true);
        }
    }
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if covered[i] {
            i += 1;
            continue;
        }
        let s = i;
        while i < text.len() && !covered[i] {
            i += 1;
        }
        chunks.push(&text[s..i]);
    }
    chunks
}

#[test]
fn text_outside_pii_is_preserved() {
    let s = Scanner::new(RuleSet::all());
    let mut bad = 0;
    for p in positives() {
        let (out, _) = redact(&s, &p.text);
        for c in non_pii_chunks(&p.text, &p.pii) {
            if !out.contains(c) {
                bad += 1;
                println!("LOST {c:?}\n  in {:?}\n  -> {out:?}", p.text);
            }
        }
    }
    assert_eq!(bad, 0, "{bad} non-PII chunks were altered");
}

#[test]
fn pseudonyms_are_keyed_and_deterministic() {
    let a = pseudonym(b"key-one", "k1", Rule::Email, "john@example.com");
    let b = pseudonym(b"key-one", "k1", Rule::Email, "john@example.com");
    let c = pseudonym(b"key-two", "k2", Rule::Email, "john@example.com");
    let d = pseudonym(b"key-one", "k1", Rule::Email, "jane@example.com");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, d);
    assert!(a.starts_with("<EMAIL:k1:") && a.ends_with('>'), "{a}");
    assert!(c.contains(":k2:"));
    let hex = &a["<EMAIL:k1:".len()..a.len() - 1];
    assert_eq!(hex.len(), 16);
    assert!(hex.bytes().all(|x| x.is_ascii_hexdigit()));
    let p = pseudonym(b"k", "2024-01", Rule::CreditCard, "4111111111111111");
    assert!(p.starts_with("<CREDIT_CARD:2024-01:"), "{p}");
}

/// Tiny xorshift PRNG (no dependencies).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[(self.next() % v.len() as u64) as usize]
    }
}

#[test]
fn matches_are_on_char_boundaries() {
    const PIECES: &[&str] = &[
        "a",
        "Z",
        "0",
        "7",
        "@",
        ".",
        "-",
        "+",
        "%",
        "%40",
        "%2B",
        ":",
        "/",
        "=",
        "&",
        " ",
        "_",
        "(",
        ")",
        "[at]",
        " at ",
        " dot ",
        "é",
        "ß",
        "中",
        "文",
        "😀",
        "\u{200B}",
        "\u{00AD}",
        "\u{FEFF}",
        "＠",
        "．",
        "﹫",
        "０",
        "９",
        "٣",
        "۷",
        "९",
        "\u{1D7D8}",
        "\u{00A0}",
        "\u{2013}",
        "john",
        "example.com",
        "+49 ",
        "151 ",
        "4111",
        " 1111",
        "192.",
        "0.2.",
        "2001:db8::",
        "eyJhbGciOi",
        "Bearer ",
        "password=",
        "\"",
        "\\",
        "'",
        "DE89",
        "3704",
        "ghp_",
        "AKIA",
        "://",
        "u:p@",
        "-----BEGIN PRIVATE KEY-----",
        "ssn ",
        "123-45-6789",
        "phone ",
    ];
    let s = Scanner::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    for round in 0..20_000 {
        let n = 1 + (rng.next() % 24) as usize;
        let mut text = String::new();
        for _ in 0..n {
            text.push_str(rng.pick(PIECES));
        }
        out.clear();
        let path = if round % 7 == 0 { "user.phone" } else { "msg" };
        s.scan(FieldContext::value(path), &text, &mut out);
        check_invariants(&text, &out);
        let _ = redact_with_placeholders(&text, &out);
        out.clear();
        s.scan(FieldContext::key("m"), &text, &mut out);
        check_invariants(&text, &out);
    }
    // Arbitrary code points, mostly ASCII punctuation and digits.
    for _ in 0..20_000 {
        let n = 1 + (rng.next() % 48) as usize;
        let text: String = (0..n)
            .map(|_| match rng.next() % 8 {
                0..=3 => (b' ' + (rng.next() % 95) as u8) as char,
                4 => (b'0' + (rng.next() % 10) as u8) as char,
                5 => char::from_u32(0x80 + (rng.next() % 0x800) as u32).unwrap_or('x'),
                6 => char::from_u32(0x2000 + (rng.next() % 0xE000) as u32).unwrap_or('y'),
                _ => char::from_u32(0x1_0000 + (rng.next() % 0x1_0000) as u32).unwrap_or('z'),
            })
            .collect();
        out.clear();
        s.scan(FieldContext::value("msg"), &text, &mut out);
        check_invariants(&text, &out);
    }
}

#[test]
fn key_aware_secret_values() {
    let s = Scanner::default();
    let find = |path: &str, text: &str| s.find(FieldContext::value(path), text);
    let m = find("metadata.user.password", "hunter2 with spaces");
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].start, m[0].end, m[0].rule), (0, 19, Rule::SecretValue));
    assert_eq!(find("metadata.headers.x-api-key", "abc").len(), 1);
    assert_eq!(find("metadata.github_token", "abc").len(), 1);
    assert_eq!(find("metadata.db_password", "abc").len(), 1);
    let m = find("metadata.headers.authorization", "Bearer abc123");
    assert_eq!(&"Bearer abc123"[m[0].start..m[0].end], "abc123");
    assert!(find("metadata.token_count", "1523").is_empty());
    assert!(find("metadata.password_reset_required", "yes").is_empty());
    assert!(find("metadata.secret_santa_enabled", "yes").is_empty());
    // Keys: content rules only.
    let m = s.find(FieldContext::key("metadata"), "john@example.com");
    assert_eq!(m[0].rule, Rule::Email);
    assert!(s.find(FieldContext::key("metadata.password"), "hunter2").is_empty());
    // Phone/SSN hints from the path enable bare digit runs.
    assert_eq!(find("user.phone", "4155552671")[0].rule, Rule::Phone);
    assert!(find("user.order_id", "4155552671").is_empty());
    assert_eq!(find("user.mobile_number", "+4915123456789")[0].rule, Rule::Phone);
}

#[test]
fn rule_subsets_are_respected() {
    let text = "mail john@example.com from 192.0.2.1";
    let s = Scanner::new(RuleSet::empty().with(Rule::Ipv4));
    let m = s.find(FieldContext::value("msg"), text);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].rule, Rule::Ipv4);
    assert!(Scanner::new(RuleSet::empty()).find(FieldContext::value("msg"), text).is_empty());
}

#[test]
fn adversarial_inputs_are_handled() {
    let s = Scanner::default();
    let unit_patterns = [
        "password:",
        "a.a [dot] ",
        "@",
        "a@",
        "eyJ",
        "eyJhbGciOi.",
        "1-",
        "1 ",
        "+1 ",
        "::",
        "1.",
        "-----BEGIN PRIVATE KEY-----",
        "://u:p@",
        "\"password\":\"",
        "at ",
        " [at] ",
        "%4",
        "\u{200B}",
        "０",
        "Bearer ",
        "x=y&",
        "DE89 ",
        "4111 ",
    ];
    let mut out = Vec::new();
    for p in unit_patterns {
        let text = p.repeat(50_000 / p.len() + 1);
        out.clear();
        let t = std::time::Instant::now();
        s.scan(FieldContext::value("msg"), &text, &mut out);
        check_invariants(&text, &out);
        println!("{:>30?}: {} bytes, {} matches, {:?}", p, text.len(), out.len(), t.elapsed());
    }
}
