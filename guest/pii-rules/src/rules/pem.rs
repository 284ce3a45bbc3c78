//! PEM private key blocks (`-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED |PGP ]
//! PRIVATE KEY[ BLOCK]-----` through the matching END line inclusive), as
//! found in GCP service-account JSON (`"private_key": "-----BEGIN ...\n..."`),
//! config dumps and logs. A block without its END line runs to the end of
//! the text or the closing quote (`"`, or `\"` inside JSON-in-strings).

use super::push;
use crate::Match;
use crate::bytes::{before, find};
use crate::rule::Rule;

/// Find private key blocks.
#[inline(never)]
pub(crate) fn scan(b: &[u8], out: &mut Vec<Match>) {
    let mut i = 0;
    while let Some(p) = find(b, i, b"-----BEGIN ") {
        i = p + 11;
        let lab_s = p + 11;
        let Some(lab_e) = find(b, lab_s, b"-----") else {
            return;
        };
        let label = &b[lab_s..lab_e];
        if lab_e - lab_s > 40 || !(label.ends_with(b"PRIVATE KEY") || label.ends_with(b"PRIVATE KEY BLOCK")) {
            continue;
        }
        let mut end_marker = [0u8; 64];
        let m = 9 + label.len() + 5;
        end_marker[..9].copy_from_slice(b"-----END ");
        end_marker[9..9 + label.len()].copy_from_slice(label);
        end_marker[9 + label.len()..m].copy_from_slice(b"-----");
        let e = match find(b, lab_e + 5, &end_marker[..m]) {
            Some(q) => q + m,
            None => {
                let mut q = lab_e + 5;
                while q < b.len() && b[q] != b'"' {
                    q += 1;
                }
                if before(b, q) == b'\\' {
                    q -= 1;
                }
                q
            }
        };
        push(out, p, e, Rule::CloudKey);
        i = e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        let t =
            r#"{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n", "x": 1}"#;
        let mut v = Vec::new();
        scan(t.as_bytes(), &mut v);
        assert_eq!(&t[v[0].start..v[0].end], r"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----");
        let t = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----";
        let mut v = Vec::new();
        scan(t.as_bytes(), &mut v);
        assert_eq!((v[0].start, v[0].end), (0, t.len()));
        let t = "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----";
        let mut v = Vec::new();
        scan(t.as_bytes(), &mut v);
        assert!(v.is_empty());
        let t = r#"key=\"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\" next"#;
        let mut v = Vec::new();
        scan(t.as_bytes(), &mut v);
        assert_eq!(&t[v[0].start..v[0].end], r"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE");
    }
}
