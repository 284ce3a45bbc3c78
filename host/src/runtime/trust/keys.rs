//! Ed25519 keys for module signatures: the public key text form
//! (`ed25519:<base64>`), its key id, and the private key file (PKCS#8 in
//! PEM, the format `openssl genpkey -algorithm ed25519` writes, so keys made
//! either way work).
//!
//! A **key id** is the first 8 bytes of the SHA-256 of the 32-byte public
//! key, as 16 lowercase hex characters. It names the signer in signature
//! files, error messages and the audit trail.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

/// Prefix of a public key in text form.
pub const PUBLIC_KEY_PREFIX: &str = "ed25519:";
/// PEM label of the private key file.
const PEM_LABEL: &str = "PRIVATE KEY";
/// Largest key file read (a key file is a few hundred bytes).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// What can go wrong with a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read or written.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`read`, `create`, ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `keygen` would overwrite an existing file.
    #[error("{} already exists; refusing to overwrite a key (choose another --out or remove it first)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A public key's text is not `ed25519:<base64 of 32 bytes>`.
    #[error(
        "{text:?} is not a public key: expected `ed25519:` followed by the base64 of 32 bytes (as `wasmtel keygen` prints)"
    )]
    BadPublicKey {
        /// The text (a public key is not secret).
        text: String,
    },
    /// A private key file is not a PEM-encoded Ed25519 PKCS#8 key.
    #[error("{} is not an Ed25519 private key: {reason} (expected the PEM file `wasmtel keygen` writes)", path.display())]
    BadPrivateKey {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the key material).
        reason: String,
    },
    /// The system random generator failed.
    #[error("cannot generate a key: the system random generator failed")]
    Random,
}

/// An Ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    bytes: [u8; 32],
}

impl PublicKey {
    /// Parses `ed25519:<base64>`.
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let bad = || KeyError::BadPublicKey { text: text.chars().take(120).collect() };
        let encoded = text.trim().strip_prefix(PUBLIC_KEY_PREFIX).ok_or_else(bad)?;
        let bytes = BASE64.decode(encoded.trim()).map_err(|_| bad())?;
        Ok(PublicKey { bytes: bytes.try_into().map_err(|_| bad())? })
    }

    /// Reads a public key file: one `ed25519:<base64>` line; blank lines and
    /// lines starting with `#` are ignored.
    pub fn read_file(path: &Path) -> Result<PublicKey, KeyError> {
        let text = read_small(path)?;
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
        match (lines.next(), lines.next()) {
            (Some(line), None) => PublicKey::parse(line),
            _ => Err(KeyError::BadPublicKey { text: format!("the contents of {}", path.display()) }),
        }
    }

    /// The key id: 16 hex characters of the SHA-256 of the key.
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.bytes)[..8])
    }

    /// Checks an Ed25519 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.bytes).verify(message, signature).is_ok()
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_KEY_PREFIX}{}", BASE64.encode(self.bytes))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

/// An Ed25519 key pair read from a private key file.
pub struct PrivateKey {
    pair: Ed25519KeyPair,
}

impl PrivateKey {
    /// Reads a PEM `PRIVATE KEY` (PKCS#8 v1 or v2) file.
    pub fn read_file(path: &Path) -> Result<PrivateKey, KeyError> {
        let bad = |reason: &str| KeyError::BadPrivateKey { path: path.to_path_buf(), reason: reason.into() };
        let text = read_small(path)?;
        let begin = format!("-----BEGIN {PEM_LABEL}-----");
        let end = format!("-----END {PEM_LABEL}-----");
        let body = text
            .split_once(&begin)
            .and_then(|(_, rest)| rest.split_once(&end))
            .map(|(body, _)| body)
            .ok_or_else(|| bad("no `-----BEGIN PRIVATE KEY-----` block"))?;
        let der: String = body.split_whitespace().collect();
        let der = BASE64.decode(der).map_err(|_| bad("the PEM block is not valid base64"))?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| bad(&format!("not an Ed25519 PKCS#8 key ({e})")))?;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                key = %path.display(),
                "the private key file is readable by other users; `chmod 600` it"
            );
        }
        Ok(PrivateKey { pair })
    }

    /// Generates a key pair and writes the private key to `path` (PEM,
    /// created with mode 0600; an existing file is never overwritten).
    pub fn generate(path: &Path) -> Result<PrivateKey, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Random)?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|e| KeyError::BadPrivateKey { path: path.to_path_buf(), reason: e.to_string() })?;
        let mut pem = format!("-----BEGIN {PEM_LABEL}-----\n");
        for chunk in BASE64.encode(pkcs8.as_ref()).as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str(&format!("-----END {PEM_LABEL}-----\n"));
        write_new(path, pem.as_bytes(), 0o600)?;
        Ok(PrivateKey { pair })
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        let bytes = self.pair.public_key().as_ref().try_into().expect("an Ed25519 public key is 32 bytes");
        PublicKey { bytes }
    }

    /// Signs `message`; the signature is 64 bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// Writes the public key file beside a private key: a comment naming the
/// key id, then the `ed25519:` line (mode 0644; never overwrites).
pub fn write_public_key_file(path: &Path, key: &PublicKey) -> Result<(), KeyError> {
    let text = format!("# wasmtel module signing key, key id {}\n{key}\n", key.key_id());
    write_new(path, text.as_bytes(), 0o644)
}

/// Creates `path` (it must not exist) with `mode` and writes `bytes`, synced.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let io = |op| move |source| KeyError::Io { op, path: path.to_path_buf(), source };
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists { path: path.to_path_buf() }
        } else {
            io("create")(e)
        }
    })?;
    file.write_all(bytes).map_err(io("write"))?;
    file.sync_all().map_err(io("sync"))
}

/// Reads a key file, refusing anything larger than a key file can be.
fn read_small(path: &Path) -> Result<String, KeyError> {
    let io = |op| move |source| KeyError::Io { op, path: path.to_path_buf(), source };
    let len = std::fs::metadata(path).map_err(io("read"))?.len();
    if len > MAX_KEY_FILE {
        return Err(io("read")(std::io::Error::other(format!("{len} bytes is too large for a key file"))));
    }
    std::fs::read_to_string(path).map_err(io("read"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_through_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = PrivateKey::generate(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let again = PrivateKey::read_file(&path).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = key.public_key();
        assert_eq!(PublicKey::parse(&public.to_string()).unwrap(), public);
        write_public_key_file(&dir.path().join("k.pub"), &public).unwrap();
        assert_eq!(PublicKey::read_file(&dir.path().join("k.pub")).unwrap(), public);
        assert_eq!(public.key_id().len(), 16);
        let sig = key.sign(b"m");
        assert!(public.verify(b"m", &sig));
        assert!(!public.verify(b"n", &sig));
        assert!(matches!(PrivateKey::generate(&path), Err(KeyError::Exists { .. })));
    }

    #[test]
    fn malformed_public_keys_are_refused() {
        for text in ["", "ed25519:", "ed25519:AAAA", "rsa:AAAA", "ed25519:!!!"] {
            assert!(PublicKey::parse(text).is_err(), "{text:?}");
        }
    }
}
