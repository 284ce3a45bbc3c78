//! Finding a module's bytes (a file or a builtin), its SHA-256, and turning
//! it into a compiled `Component` (through the cache).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;

use super::Runtime;

/// The bytes of a component plus what identifies it in audits.
#[derive(Clone)]
pub struct ModuleSource {
    /// The configured module name.
    pub name: Arc<str>,
    /// Where it came from: a path or `builtin:<name>`.
    pub origin: String,
    /// SHA-256 of the bytes, hex.
    pub sha256: Arc<str>,
    bytes: Arc<[u8]>,
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
        ModuleSource { name: Arc::from(name), origin: origin.to_string(), sha256: Arc::from(sha256), bytes }
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
        super::cache::load_or_compile(runtime, self)
            .with_context(|| format!("module {:?} ({}) failed to compile", self.name, self.origin))
    }
}
