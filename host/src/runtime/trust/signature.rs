//! The detached signature file, `<module>.sig`, and signing.
//!
//! The file is four lines of text:
//!
//! ```text
//! wasmtel-signature-v1
//! key-id: 3f9a0c1b2d4e5f60
//! sha256: <64 hex characters: the SHA-256 of the module file>
//! signature: <base64 of the 64-byte Ed25519 signature>
//! ```
//!
//! The signed message is the ASCII text `wasmtel-signature-v1
//! sha256:<hex>` (no newline), so a signature is over the module's SHA-256
//! and cannot be mistaken for a signature of anything else. It can be made
//! without wasmtel: `printf 'wasmtel-signature-v1 sha256:%s' "$(sha256sum m.wasm
//! | cut -d' ' -f1)" | openssl pkeyutl -sign -inkey key.pem -rawin -in /dev/stdin
//! | base64 -w0`.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use super::keys::{KeyError, PrivateKey};

/// First line of a signature file; also the prefix of the signed message.
pub const FORMAT: &str = "wasmtel-signature-v1";
/// Largest signature file read.
const MAX_SIGNATURE_FILE: u64 = 4096;

/// A parsed signature file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureFile {
    /// Key id of the signer (16 hex characters).
    pub key_id: String,
    /// SHA-256 of the signed module, lowercase hex.
    pub sha256: String,
    /// The Ed25519 signature (64 bytes).
    pub signature: Vec<u8>,
}

/// Why a signature file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// Reading or writing failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not in the documented format.
    #[error("{} is not a wasmtel signature file: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The signing key could not be used.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The message an Ed25519 signature covers for a module with this SHA-256.
pub fn message(sha256_hex: &str) -> Vec<u8> {
    format!("{FORMAT} sha256:{}", sha256_hex.to_ascii_lowercase()).into_bytes()
}

/// Where the detached signature of `module` lives: `<module>.sig`.
pub fn signature_path(module: &Path) -> PathBuf {
    let mut name = module.as_os_str().to_os_string();
    name.push(".sig");
    PathBuf::from(name)
}

impl SignatureFile {
    /// The file's text.
    pub fn render(&self) -> String {
        format!(
            "{FORMAT}\nkey-id: {}\nsha256: {}\nsignature: {}\n",
            self.key_id,
            self.sha256,
            BASE64.encode(&self.signature)
        )
    }

    /// Parses a signature file's text (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<SignatureFile, SignatureError> {
        let bad = |reason: String| SignatureError::Malformed { path: path.to_path_buf(), reason };
        let mut lines = text.lines().map(str::trim_end).filter(|l| !l.is_empty());
        match lines.next() {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(bad(format!(
                    "the first line is {:?}, expected {FORMAT:?}",
                    other.chars().take(40).collect::<String>()
                )));
            }
            None => return Err(bad("the file is empty".into())),
        }
        let (mut key_id, mut sha256, mut signature) = (None, None, None);
        for line in lines {
            let Some((key, value)) = line.split_once(':') else {
                return Err(bad(format!(
                    "expected `key: value` lines, found {:?}",
                    line.chars().take(40).collect::<String>()
                )));
            };
            let value = value.trim();
            let slot = match key.trim() {
                "key-id" => &mut key_id,
                "sha256" => &mut sha256,
                "signature" => &mut signature,
                other => return Err(bad(format!("unknown key {other:?} (expected key-id, sha256, signature)"))),
            };
            if slot.replace(value.to_string()).is_some() {
                return Err(bad(format!("`{}` appears twice", key.trim())));
            }
        }
        let missing = |name: &str| bad(format!("the `{name}` line is missing"));
        let key_id = key_id.ok_or_else(|| missing("key-id"))?;
        let sha256 = sha256.ok_or_else(|| missing("sha256"))?.to_ascii_lowercase();
        let signature = signature.ok_or_else(|| missing("signature"))?;
        if key_id.len() != 16 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("key-id {key_id:?} is not 16 hex characters")));
        }
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("sha256 is not 64 hex characters".into()));
        }
        let signature = BASE64
            .decode(&signature)
            .ok()
            .filter(|s| s.len() == 64)
            .ok_or_else(|| bad("signature is not the base64 of 64 bytes".into()))?;
        Ok(SignatureFile { key_id: key_id.to_ascii_lowercase(), sha256, signature })
    }

    /// Reads and parses `path`; `Ok(None)` when it does not exist.
    pub fn read(path: &Path) -> Result<Option<SignatureFile>, SignatureError> {
        let io = |op| move |source| SignatureError::Io { op, path: path.to_path_buf(), source };
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read")(e)),
        };
        if meta.len() > MAX_SIGNATURE_FILE {
            return Err(SignatureError::Malformed {
                path: path.to_path_buf(),
                reason: format!("{} bytes is too large for a signature file", meta.len()),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io("read"))?;
        SignatureFile::parse(path, &text).map(Some)
    }
}

/// What [`sign_module`] did.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The signature file written.
    pub path: PathBuf,
    /// Its contents.
    pub signature: SignatureFile,
}

/// Signs the module file at `module` with the private key file `key` and
/// writes `<module>.sig` (replacing an older one atomically).
pub fn sign_module(key: &Path, module: &Path) -> Result<Signed, SignatureError> {
    let key = PrivateKey::read_file(key)?;
    let bytes = std::fs::read(module).map_err(|source| SignatureError::Io {
        op: "read",
        path: module.to_path_buf(),
        source,
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let signature = SignatureFile { key_id: key.public_key().key_id(), signature: key.sign(&message(&sha256)), sha256 };
    let path = signature_path(module);
    let mut tmp = path.clone().into_os_string();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| SignatureError::Io { op, path, source }
    };
    std::fs::write(&tmp, signature.render()).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("write", &path))?;
    Ok(Signed { path, signature })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SignatureFile {
        SignatureFile { key_id: "0123456789abcdef".into(), sha256: "ab".repeat(32), signature: vec![7; 64] }
    }

    #[test]
    fn the_file_round_trips() {
        let s = sample();
        assert_eq!(SignatureFile::parse(Path::new("m.sig"), &s.render()).unwrap(), s);
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        let good = sample().render();
        let cases = [
            (String::new(), "empty"),
            (good.replace(FORMAT, "wasmtel-signature-v9"), "first line"),
            (good.replace("key-id: 0123456789abcdef\n", ""), "key-id"),
            (good.replace("key-id", "key-ib"), "unknown key"),
            (format!("{good}sha256: {}\n", "cd".repeat(32)), "twice"),
            (good.replace(&"ab".repeat(32), "ab"), "64 hex"),
            (good.replace("signature: ", "signature: AAAA"), "base64 of 64 bytes"),
        ];
        for (text, expected) in cases {
            let err = SignatureFile::parse(Path::new("m.wasm.sig"), &text).unwrap_err().to_string();
            assert!(err.contains(expected) && err.contains("m.wasm.sig"), "{expected}: {err}");
        }
    }

    #[test]
    fn the_signature_path_appends_sig() {
        assert_eq!(signature_path(Path::new("/x/m.wasm")), PathBuf::from("/x/m.wasm.sig"));
    }
}
