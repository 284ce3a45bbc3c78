//! Time one text under each single rule (development aid).
use pii_rules::{FieldContext, Rule, RuleSet, Scanner};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = args[0].as_str();
    let path = args.get(1).map_or("message", |s| s.as_str());
    let mut sets: Vec<(String, RuleSet)> = vec![(
        "none".into(),
        RuleSet::empty().with(Rule::Ipv4).without(Rule::Ipv4),
    )];
    sets.extend(
        Rule::ALL
            .iter()
            .map(|r| (r.id().to_string(), RuleSet::empty().with(*r))),
    );
    sets.push(("all".into(), RuleSet::all()));
    let mut out = Vec::with_capacity(64);
    for (name, set) in sets {
        let s = Scanner::new(set);
        let n = 200_000;
        let t = Instant::now();
        for _ in 0..n {
            out.clear();
            s.scan(
                FieldContext::value(path),
                std::hint::black_box(text),
                &mut out,
            );
        }
        println!(
            "{name:>15}: {:>6.0} ns",
            t.elapsed().as_nanos() as f64 / n as f64
        );
    }
}
