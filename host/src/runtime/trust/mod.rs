//! Module trust: which modules may run, by who signed them.
//!
//! An operator lists trusted Ed25519 public keys in `[trust] keys`; a module
//! file `m.wasm` is signed by a detached `m.wasm.sig` (see [`signature`])
//! over its SHA-256, made with `wasmtel sign --key KEY m.wasm`. At load,
//! [`TrustPolicy::check`] decides, before the module is compiled:
//!
//! - a signature file that is present must verify against a listed key and
//!   the module's current bytes, or the module is refused — whatever
//!   `require_signatures` says (a present-but-wrong signature is never
//!   ignored);
//! - with `require_signatures = true`, a module without a signature file is
//!   refused;
//! - builtin modules (`builtin:...`) are part of the wasmtel binary, which
//!   the operator already trusts: they are exempt.
//!
//! The result is the module's [`Provenance`]; the signer's key id goes into
//! every audit record the module causes. A `sha256 = "..."` pin on a module
//! is checked as well: both must pass.

pub mod keys;
pub mod signature;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

pub use keys::{KeyError, PrivateKey, PublicKey};
pub use signature::{SignatureError, SignatureFile, Signed, sign_module, signature_path};

use super::ModuleSource;
use crate::config::ConfigError;

/// `[trust]`: which keys may sign modules, and whether a signature is
/// required.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrustConfig {
    /// Public keys whose signatures are accepted (default: none). Each entry
    /// is a key itself, `ed25519:<base64>` as `wasmtel keygen` prints it, or
    /// the path of a public key file (relative to the config file), such as
    /// the `.pub` file `wasmtel keygen` writes.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Refuse every module that has no valid signature by one of `keys`
    /// (default `false`). Builtin modules are exempt. A signature that is
    /// present but does not verify is refused even when this is `false`.
    #[serde(default)]
    pub require_signatures: bool,
}

impl TrustConfig {
    /// Makes key file paths relative to `base` (the config file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        for entry in &mut self.keys {
            if !entry.starts_with(keys::PUBLIC_KEY_PREFIX) && Path::new(entry.as_str()).is_relative() {
                *entry = base.join(entry.as_str()).display().to_string();
            }
        }
    }

    /// Reads every key; an error names `trust.keys[i]` and what is wrong.
    pub fn policy(&self, file: &Path) -> Result<TrustPolicy, ConfigError> {
        let mut keys = Vec::new();
        for (i, entry) in self.keys.iter().enumerate() {
            let key = if entry.starts_with(keys::PUBLIC_KEY_PREFIX) {
                PublicKey::parse(entry)
            } else {
                PublicKey::read_file(Path::new(entry))
            };
            keys.push(key.map_err(|e| ConfigError::new(file, format!("trust.keys[{i}]"), e.to_string()))?);
        }
        if self.require_signatures && keys.is_empty() {
            return Err(ConfigError::new(
                file,
                "trust.require_signatures",
                "is true but trust.keys is empty, so no module could load; list the signers' public keys \
                 (`wasmtel keygen` prints one)",
            ));
        }
        Ok(TrustPolicy { keys, require_signatures: self.require_signatures })
    }

    /// Checks the keys (see [`TrustConfig::policy`]).
    pub fn validate(&self, file: &Path) -> Result<(), ConfigError> {
        self.policy(file).map(drop)
    }
}

/// Where a loaded module's trust comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// Embedded in the wasmtel binary: trusted with it, never signed.
    Builtin,
    /// A file with no signature (allowed unless `require_signatures`).
    Unsigned,
    /// A file whose signature verified against a listed key.
    Signed {
        /// The signer's key id.
        key_id: Arc<str>,
    },
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Provenance::Builtin => f.write_str("builtin (part of the wasmtel binary, exempt from signatures)"),
            Provenance::Unsigned => f.write_str("unsigned"),
            Provenance::Signed { key_id } => write!(f, "signed by key {key_id}"),
        }
    }
}

/// What is wrong with a module's signature.
#[derive(Debug, thiserror::Error)]
pub enum TrustProblem {
    /// No signature file, and one is required.
    #[error(
        "the file does not exist and [trust] require_signatures = true; sign the module with \
         `wasmtel sign --key KEY {module}` using a key listed in trust.keys"
    )]
    Unsigned {
        /// The module file.
        module: String,
    },
    /// The signature file cannot be read or parsed.
    #[error("{0}")]
    Unreadable(#[from] SignatureError),
    /// The module's bytes are not the ones that were signed.
    #[error(
        "it was made for SHA-256 {signed} but the module now has SHA-256 {actual}: the module changed after \
         it was signed; refusing to run it (sign the new version if it is approved)"
    )]
    ModuleChanged {
        /// SHA-256 named in the signature file.
        signed: String,
        /// SHA-256 of the module's bytes.
        actual: String,
    },
    /// The signer is not a listed key.
    #[error(
        "it was made by key {key_id}, which is not in trust.keys ({}); add that public key to trust.keys if \
         this signer is approved",
        if trusted.is_empty() { "no keys are listed".to_string() } else { format!("listed: {}", trusted.join(", ")) }
    )]
    UnknownKey {
        /// Key id named in the signature file.
        key_id: String,
        /// Key ids that are listed.
        trusted: Vec<String>,
    },
    /// The signature does not verify.
    #[error("it does not verify with key {key_id}: the signature file was altered or made with another key")]
    BadSignature {
        /// Key id named in the signature file.
        key_id: String,
    },
}

/// A module refused by the trust policy: which module, which signature
/// file, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("module {module:?} ({origin}) refused, signature {}: {problem}", signature.display())]
pub struct ModuleTrustError {
    /// The module's configured name.
    pub module: String,
    /// The module file.
    pub origin: String,
    /// The signature file looked at.
    pub signature: PathBuf,
    /// What is wrong.
    pub problem: Box<TrustProblem>,
}

/// The keys and rule a configuration sets (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    keys: Vec<PublicKey>,
    require_signatures: bool,
}

impl TrustPolicy {
    /// A policy with these keys.
    pub fn new(keys: Vec<PublicKey>, require_signatures: bool) -> TrustPolicy {
        TrustPolicy { keys, require_signatures }
    }

    /// Decides whether `source` may run, from its bytes as loaded (the same
    /// bytes that will be compiled), and records its provenance in it.
    pub fn check(&self, mut source: ModuleSource) -> Result<ModuleSource, ModuleTrustError> {
        if source.origin.starts_with("builtin:") {
            source.provenance = Provenance::Builtin;
            return Ok(source);
        }
        let path = signature_path(Path::new(&source.origin));
        match self.verify(&source, &path) {
            Ok(provenance) => {
                source.provenance = provenance;
                Ok(source)
            }
            Err(problem) => Err(ModuleTrustError {
                module: source.name.to_string(),
                origin: source.origin.clone(),
                signature: path,
                problem: Box::new(problem),
            }),
        }
    }

    fn verify(&self, source: &ModuleSource, path: &Path) -> Result<Provenance, TrustProblem> {
        let Some(sig) = SignatureFile::read(path)? else {
            if self.require_signatures {
                return Err(TrustProblem::Unsigned { module: source.origin.clone() });
            }
            return Ok(Provenance::Unsigned);
        };
        if !sig.sha256.eq_ignore_ascii_case(&source.sha256) {
            return Err(TrustProblem::ModuleChanged { signed: sig.sha256, actual: source.sha256.to_string() });
        }
        let Some(key) = self.keys.iter().find(|k| k.key_id() == sig.key_id) else {
            return Err(TrustProblem::UnknownKey {
                key_id: sig.key_id,
                trusted: self.keys.iter().map(PublicKey::key_id).collect(),
            });
        };
        if !key.verify(&signature::message(&source.sha256), &sig.signature) {
            return Err(TrustProblem::BadSignature { key_id: sig.key_id });
        }
        Ok(Provenance::Signed { key_id: Arc::from(sig.key_id) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module file, a key, and a policy trusting it.
    fn setup(dir: &Path) -> (PathBuf, PathBuf, TrustPolicy) {
        let module = dir.join("m.wasm");
        std::fs::write(&module, b"module bytes").unwrap();
        let key = dir.join("k");
        let public = PrivateKey::generate(&key).unwrap().public_key();
        (module, key, TrustPolicy::new(vec![public], true))
    }

    fn load(module: &Path) -> ModuleSource {
        ModuleSource::resolve("m", &module.display().to_string(), None).unwrap()
    }

    #[test]
    fn a_signed_module_is_admitted_with_its_key_id() {
        let dir = tempfile::tempdir().unwrap();
        let (module, key, policy) = setup(dir.path());
        let signed = sign_module(&key, &module).unwrap();
        let source = policy.check(load(&module)).unwrap();
        assert_eq!(source.provenance, Provenance::Signed { key_id: signed.signature.key_id.clone().into() });
        assert_eq!(source.signer(), Some(signed.signature.key_id.as_str()));
    }

    #[test]
    fn each_problem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (module, key, policy) = setup(dir.path());
        let problem = |policy: &TrustPolicy| policy.check(load(&module)).unwrap_err().to_string();
        assert!(problem(&policy).contains("does not exist and [trust] require_signatures = true"));
        let lenient = TrustPolicy::new(policy.keys.clone(), false);
        assert_eq!(lenient.check(load(&module)).unwrap().provenance, Provenance::Unsigned);

        sign_module(&key, &module).unwrap();
        let other = TrustPolicy::new(vec![PrivateKey::generate(&dir.path().join("k2")).unwrap().public_key()], false);
        assert!(problem(&other).contains("which is not in trust.keys"), "{}", problem(&other));

        std::fs::write(&module, b"module bytes, changed").unwrap();
        assert!(problem(&lenient).contains("the module changed after it was signed"));

        // The sha256 line edited to match the new bytes: the signature no longer verifies.
        let sig_path = signature_path(&module);
        let mut sig = SignatureFile::read(&sig_path).unwrap().unwrap();
        sig.sha256 = load(&module).sha256.to_string();
        std::fs::write(&sig_path, sig.render()).unwrap();
        let err = problem(&lenient);
        assert!(err.contains("does not verify with key") && err.contains("m.wasm.sig"), "{err}");
    }

    #[test]
    fn builtins_are_exempt() {
        let policy = TrustPolicy::new(Vec::new(), true);
        let source = ModuleSource::resolve("b", "builtin:redactor-pii", None).unwrap();
        assert_eq!(policy.check(source).unwrap().provenance, Provenance::Builtin);
    }

    #[test]
    fn config_keys_are_checked() {
        let file = Path::new("/etc/wasmtel.toml");
        let bad = TrustConfig { keys: vec!["ed25519:nope".into()], require_signatures: false };
        assert_eq!(bad.validate(file).unwrap_err().key, "trust.keys[0]");
        let missing = TrustConfig { keys: vec!["/nonexistent/k.pub".into()], require_signatures: false };
        assert!(missing.validate(file).unwrap_err().message.contains("/nonexistent/k.pub"));
        let empty = TrustConfig { keys: vec![], require_signatures: true };
        assert_eq!(empty.validate(file).unwrap_err().key, "trust.require_signatures");
    }
}
