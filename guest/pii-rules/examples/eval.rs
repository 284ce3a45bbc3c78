//! Evaluate the scanner on labelled JSONL corpora:
//! `cargo run -p pii-rules --example eval -- POS.jsonl [NEG.jsonl]`.
//! Prints misses, false positives, recall and false-positive rate.

use pii_rules::{FieldContext, Scanner, redact_with_placeholders};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let s = Scanner::default();
    let ctx = FieldContext::value("message");
    if let Some(p) = args.first() {
        let (mut total, mut missed) = (0, 0);
        for line in std::fs::read_to_string(p).expect("read positives").lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let text = v["text"].as_str().unwrap_or_default();
            let m = s.find(ctx, text);
            let out = redact_with_placeholders(text, &m);
            let labels: Vec<&str> = v["pii"].as_array().into_iter().flatten().filter_map(|x| x.as_str()).collect();
            let mut covered = vec![false; text.len()];
            for l in &labels {
                for (i, _) in text.match_indices(l) {
                    covered[i..i + l.len()].iter_mut().for_each(|c| *c = true);
                }
            }
            let mut i = 0;
            while i < text.len() {
                let s0 = i;
                while i < text.len() && !covered[i] {
                    i += 1;
                }
                if i > s0 && !out.contains(&text[s0..i]) {
                    println!("LOST {:?}\n  in {text:?}\n  -> {out:?}", &text[s0..i]);
                }
                i += 1;
            }
            for x in v["pii"].as_array().into_iter().flatten() {
                let x = x.as_str().unwrap_or_default();
                total += 1;
                if out.contains(x) {
                    missed += 1;
                    println!("MISS {x:?}\n  in {text:?}\n  -> {out:?}");
                }
            }
        }
        println!("recall {:.2}% ({missed} missed of {total})", 100.0 * (total - missed) as f64 / total.max(1) as f64);
    }
    if let Some(p) = args.get(1) {
        let (mut total, mut fp) = (0, 0);
        for line in std::fs::read_to_string(p).expect("read negatives").lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let text = v["text"].as_str().unwrap_or_default();
            let m = s.find(ctx, text);
            total += 1;
            if !m.is_empty() {
                fp += 1;
                let rules: Vec<_> = m.iter().map(|x| x.rule.id()).collect();
                println!("FP {text:?}\n  -> {:?} {rules:?}", redact_with_placeholders(text, &m));
            }
        }
        println!("false positives {:.2}% ({fp} of {total})", 100.0 * fp as f64 / total.max(1) as f64);
    }
}
