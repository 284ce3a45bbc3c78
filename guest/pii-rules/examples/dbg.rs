use pii_rules::*;
fn main() {
    let s = Scanner::default();
    for t in std::env::args().skip(1) {
        let m = s.find(FieldContext::value("msg"), &t);
        println!("{:?}\n -> {}", m, redact_with_placeholders(&t, &m));
    }
}
