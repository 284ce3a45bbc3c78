//! Finding a module's bytes (a file or a builtin), its SHA-256, and turning
//! it into a compiled `Component` (through the cache). Whether the bytes may
//! run at all is decided by [`super::trust::TrustPolicy::check`].

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::Runtime;
use super::trust::Provenance;

/// The bytes of a component plus what identifies it in audits.
#[derive(Clone)]
pub struct ModuleSource {
    /// The configured module name.
    pub name: Arc<str>,
    /// Where it came from: a path or `builtin:<name>`.
    pub origin: String,
    /// SHA-256 of the bytes, hex.
    pub sha256: Arc<str>,
    /// Builtin, unsigned or signed by whom; set by the trust policy
    /// (default: `Builtin` for builtins, else `Unsigned`).
    pub provenance: Provenance,
    bytes: Arc<[u8]>,
}

impl std::fmt::Debug for ModuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleSource")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("sha256", &self.sha256)
            .field("provenance", &self.provenance)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// Builtin components compiled into the binary.
const BUILTINS: &[(&str, &[u8])] = &[
    ("builtin:redactor-pii", crate::guests::REDACTOR_PII_BYTES),
    ("builtin:collector-sql", crate::guests::COLLECTOR_SQL_BYTES),
];

impl ModuleSource {
    /// Reads `spec` (a `.wasm` path or `builtin:...`) and, when `pin` is
    /// given, checks the bytes' SHA-256 against it.
    pub fn resolve(name: &str, spec: &str, pin: Option<&str>) -> anyhow::Result<ModuleSource> {
        let bytes: Arc<[u8]> = if spec.starts_with("builtin:") {
            let Some((_, bytes)) = BUILTINS.iter().find(|(id, _)| *id == spec) else {
                let known: Vec<_> = BUILTINS.iter().map(|(id, _)| *id).collect();
                bail!("module {name:?}: unknown builtin {spec:?}; expected one of {}", known.join(", "));
            };
            Arc::from(*bytes)
        } else {
            let data = std::fs::read(Path::new(spec)).with_context(|| {
                format!("module {name:?}: cannot read {spec} (expected a WebAssembly component file)")
            })?;
            Arc::from(data)
        };
        let source = ModuleSource::from_bytes(name, spec, bytes);
        if let Some(pin) = pin
            && !pin.eq_ignore_ascii_case(&source.sha256)
        {
            bail!(
                "module {name:?} ({spec}) has SHA-256 {} but the config pins {pin}; refusing to run it \
                 (update `sha256` if this version is approved)",
                source.sha256
            );
        }
        Ok(source)
    }

    /// Wraps bytes already in memory.
    pub fn from_bytes(name: &str, origin: &str, bytes: Arc<[u8]>) -> ModuleSource {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let provenance = if origin.starts_with("builtin:") { Provenance::Builtin } else { Provenance::Unsigned };
        ModuleSource { name: Arc::from(name), origin: origin.to_string(), sha256: Arc::from(sha256), provenance, bytes }
    }

    /// The key id of the module's verified signer, if it is signed.
    pub fn signer(&self) -> Option<&str> {
        match &self.provenance {
            Provenance::Signed { key_id } => Some(key_id),
            Provenance::Builtin | Provenance::Unsigned => None,
        }
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Compiles the component, or loads it precompiled from the cache.
    pub fn compile(&self, runtime: &Runtime) -> anyhow::Result<Component> {
        if self.bytes.starts_with(b"\0asm\x01\0\0\0") {
            bail!(
                "module {:?} ({}) is a core WebAssembly module, not a component; build it for \
                 wasm32-wasip2 (or run `wasm-tools component new`)",
                self.name,
                self.origin
            );
        }
        let compiled = match &runtime.cache {
            Some(cache) => cache.load_or_compile(runtime.engine(), self),
            None => Component::new(runtime.engine(), self.bytes()).map_err(anyhow::Error::from),
        };
        compiled.with_context(|| format!("module {:?} ({}) failed to compile", self.name, self.origin))
    }
}
