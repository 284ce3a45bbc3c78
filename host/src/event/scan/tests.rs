use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

/// Rebuilds the value the tokens describe (numbers parsed from their text).
fn rebuild(text: &str, tokens: &mut std::slice::Iter<'_, Token>) -> Value {
    match tokens.next().expect("a token") {
        Token::ObjectStart => {
            let mut map = Map::new();
            loop {
                match tokens.next().expect("a key or '}'") {
                    Token::ObjectEnd => return Value::Object(map),
                    Token::Key(k) => {
                        let v = rebuild(text, tokens);
                        map.insert(k.value(text).into_owned(), v);
                    }
                    other => panic!("unexpected {other:?} in an object"),
                }
            }
        }
        Token::ArrayStart => {
            let mut items = Vec::new();
            let mut peek = tokens.clone();
            if peek.next() == Some(&Token::ArrayEnd) {
                tokens.next();
                return Value::Array(items);
            }
            loop {
                items.push(rebuild(text, tokens));
                let mut peek = tokens.clone();
                if peek.next() == Some(&Token::ArrayEnd) {
                    tokens.next();
                    return Value::Array(items);
                }
            }
        }
        Token::Str(s) => Value::String(s.value(text).into_owned()),
        Token::Number(r) => serde_json::from_str(&text[r.clone()]).expect("a number token parses"),
        Token::Bool(b) => Value::Bool(*b),
        Token::Null => Value::Null,
        other => panic!("unexpected {other:?}"),
    }
}

fn roundtrip(text: &str) -> Value {
    let mut tokens = Vec::new();
    scan(text, &mut tokens).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let mut it = tokens.iter();
    let v = rebuild(text, &mut it);
    assert!(it.next().is_none(), "tokens left over for {text:?}");
    v
}

fn accepts(text: &str) -> bool {
    scan(text, &mut Vec::new()).is_ok()
}

#[test]
fn strings_escapes_and_numbers_as_serde_json_reads_them() {
    for text in [
        r#"{"a":"b\"c\\d\/e\b\f\n\r\t","\u00e9":"\ud83d\ude00","n":[-0,1.5e10,2E-3,0.25,-12]}"#,
        " [ true , false , null , {} , [] ] ",
        r#""plain""#,
        "123",
    ] {
        assert_eq!(roundtrip(text), serde_json::from_str::<Value>(text).unwrap(), "{text}");
    }
}

#[test]
fn what_serde_json_refuses_is_refused() {
    for text in [
        "",
        " ",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "+1",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\"}",
        "{a:1}",
        "\"\\x\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"a\u{1}b\"",
        "[1] 2",
        "tru",
        "nul",
        "\"abc",
        "[",
        "{\"a\":",
        "\"\\u12\"",
        "1e400",
        "-1e999",
    ] {
        assert!(!accepts(text), "accepted {text:?}");
        assert!(serde_json::from_str::<Value>(text).is_err(), "serde_json accepts {text:?}");
    }
    let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
    assert!(!accepts(&deep));
    let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
    assert!(accepts(&ok));
}

#[test]
fn unescaped_strings_are_borrowed_with_their_exact_span() {
    let text = r#"{"email": "a@b.co", "n": "x\ny"}"#;
    let mut tokens = Vec::new();
    scan(text, &mut tokens).unwrap();
    let Token::Str(s) = &tokens[2] else { panic!("{tokens:?}") };
    assert!(!s.escaped && matches!(s.value(text), Cow::Borrowed("a@b.co")));
    assert_eq!(&text[s.raw.clone()], "a@b.co");
    let Token::Str(s) = &tokens[4] else { panic!("{tokens:?}") };
    assert!(s.escaped);
    assert_eq!(s.value(text), "x\ny");
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z@.\"\\\\\u{0}-\u{1f}\u{e9}\u{1F600}]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_json_scans_back_to_the_same_value(v in json_value()) {
        let compact = serde_json::to_string(&v).unwrap();
        prop_assert_eq!(roundtrip(&compact), v.clone());
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        prop_assert_eq!(roundtrip(&pretty), v);
    }

    #[test]
    fn accepts_exactly_what_serde_json_accepts(text in "[\\[\\]{}\",:0-9.eE+\\- a-u\\\\/]{0,24}") {
        let theirs = serde_json::from_str::<Value>(&text).is_ok();
        prop_assert_eq!(accepts(&text), theirs, "{:?}", text);
    }
}
