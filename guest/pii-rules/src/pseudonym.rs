//! Keyed pseudonyms: HMAC-SHA256 (RFC 2104, built on `sha2`) and the
//! `<EMAIL:{key_id}:{hex}>` rendering used instead of plain placeholders when
//! redacted values must stay joinable.

use crate::rule::Rule;
use sha2::{Digest, Sha256};

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for i in 0..64 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for p in parts {
        inner.update(p);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(opad);
    outer.update(inner);
    outer.finalize().into()
}

/// Keyed pseudonym: HMAC-SHA256(key, rule.id() + ":" + value), rendered as
/// `"<EMAIL:{key_id}:{first 16 hex chars}>"` (placeholder name without the
/// closing '>' + ":" + key_id + ":" + hex + ">"). Same input+key → same output
/// (joinable); the key id lets keys be rotated.
pub fn pseudonym(key: &[u8], key_id: &str, rule: Rule, value: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mac = hmac_sha256(key, &[rule.id().as_bytes(), b":", value.as_bytes()]);
    let ph = rule.placeholder();
    let mut s = String::with_capacity(ph.len() + key_id.len() + 19);
    s.push_str(&ph[..ph.len() - 1]);
    s.push(':');
    s.push_str(key_id);
    s.push(':');
    for &byte in &mac[..8] {
        s.push(HEX[(byte >> 4) as usize] as char);
        s.push(HEX[(byte & 15) as usize] as char);
    }
    s.push('>');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn rfc4231_vectors() {
        // Test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6 (key longer than the block size).
        assert_eq!(
            hex(&hmac_sha256(&[0xaa; 131], &[b"Test Using Larger Than Block-Size Key - Hash Key First"])),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn pseudonym_shape() {
        let p = pseudonym(b"k", "k1", Rule::Email, "john@example.com");
        assert!(p.starts_with("<EMAIL:k1:") && p.ends_with('>'));
        assert_eq!(p.len(), "<EMAIL:k1:".len() + 16 + 1);
        assert_eq!(p, pseudonym(b"k", "k1", Rule::Email, "john@example.com"));
        assert_ne!(p, pseudonym(b"k2", "k1", Rule::Email, "john@example.com"));
        assert_ne!(p, pseudonym(b"k", "k1", Rule::Phone, "john@example.com"));
    }
}
