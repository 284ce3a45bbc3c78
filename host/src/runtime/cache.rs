//! On-disk cache of precompiled components, keyed by the module's SHA-256
//! and the engine's compatibility hash (so a wasmtime upgrade or a config
//! change never loads stale machine code). Files are written atomically.
//! The cache folder must be trusted: its files are loaded as machine code.

use std::hash::{DefaultHasher, Hash, Hasher};

use wasmtime::component::Component;

use super::{ModuleSource, Runtime};

/// Returns the compiled component, from the cache when possible.
pub(super) fn load_or_compile(runtime: &Runtime, source: &ModuleSource) -> anyhow::Result<Component> {
    let engine = runtime.engine();
    let Some(dir) = &runtime.cache_dir else {
        return Ok(Component::new(engine, source.bytes())?);
    };
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let file = dir.join(format!("{}-{:016x}.cwasm", source.sha256, hasher.finish()));
    if file.exists() {
        // SAFETY: the file was written by `precompile_component` of an engine
        // with the same compatibility hash, into a folder the operator owns.
        match unsafe { Component::deserialize_file(engine, &file) } {
            Ok(component) => return Ok(component),
            Err(e) => {
                tracing::warn!(file = %file.display(), "ignoring unreadable cached component: {e:#}")
            }
        }
    }
    let compiled = engine.precompile_component(source.bytes())?;
    // SAFETY: the bytes were produced just now by this engine.
    let component = unsafe { Component::deserialize(engine, &compiled)? };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &compiled)?;
        std::fs::rename(&tmp, &file)
    };
    if let Err(e) = write() {
        tracing::warn!(dir = %dir.display(), "cannot write the component cache (compiling each run instead): {e}");
    }
    Ok(component)
}
