//! On-disk cache of precompiled components, keyed by the module's SHA-256
//! and the engine's compatibility hash (so a wasmtime upgrade or a config
//! change never loads stale machine code).
//!
//! A precompiled artifact is machine code: wasmtime's deserialization is
//! unsafe on bytes it did not produce. So beside each artifact
//! `<sha256>-<engine>.cwasm` the cache keeps `<...>.cwasm.digest`, an
//! HMAC-SHA256 over the artifact's name and SHA-256 under a 32-byte key
//! that is generated once into `cache.key` in the cache folder's parent
//! (the state folder, mode 0700; the key file is 0600). Someone who can
//! write the cache folder but not the state folder cannot make a digest the
//! host accepts. An artifact is read into memory, its digest checked, and
//! only those verified bytes are deserialized; a missing or wrong digest is
//! logged as a warning naming the file, and the module is compiled again and
//! both files rewritten. Files are written atomically (0600).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ring::hmac;
use wasmtime::Engine;
use wasmtime::component::Component;

use super::ModuleSource;

/// Name of the digest key file, in the cache folder's parent.
pub(super) const KEY_FILE: &str = "cache.key";
/// Extension added to an artifact's name for its digest file.
const DIGEST_SUFFIX: &str = ".digest";
/// Domain separation for the digest input.
const DIGEST_CONTEXT: &[u8] = b"wasmtel-cache-v1\0";
/// Artifacts larger than this are not read (a precompiled module is a few MiB).
const MAX_ARTIFACT: u64 = 1 << 30;

/// Why the cache cannot be used at all (the runtime then compiles in memory).
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}: {source}", path.display())]
pub struct CacheError {
    op: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// Why one cached artifact was not used.
#[derive(Debug, thiserror::Error)]
enum Rejected {
    #[error("no digest file {} beside it", .0.display())]
    MissingDigest(PathBuf),
    #[error("its digest does not match (the file was changed, or written by someone without the cache key)")]
    WrongDigest,
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
    #[error("it is {0} bytes, more than any precompiled module")]
    TooLarge(u64),
    #[error("wasmtime refused it: {0:#}")]
    Deserialize(anyhow::Error),
}

/// The cache folder and the key its digests are made with.
pub(super) struct ComponentCache {
    dir: PathBuf,
    key: hmac::Key,
}

impl ComponentCache {
    /// Creates `dir` (0700) if needed and loads the digest key from
    /// `<dir>/../cache.key`, generating it (0600) on first use.
    pub(super) fn open(dir: &Path) -> Result<ComponentCache, CacheError> {
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        private_dir(parent)?;
        private_dir(dir)?;
        let key = load_or_create_key(&parent.join(KEY_FILE))?;
        Ok(ComponentCache { dir: dir.to_path_buf(), key: hmac::Key::new(hmac::HMAC_SHA256, &key) })
    }

    /// Returns the compiled component, from the cache when a verified
    /// artifact is there.
    pub(super) fn load_or_compile(&self, engine: &Engine, source: &ModuleSource) -> anyhow::Result<Component> {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let name = format!("{}-{:016x}.cwasm", source.sha256, hasher.finish());
        let file = self.dir.join(&name);
        match self.load_verified(engine, &name, &file) {
            Ok(Some(component)) => return Ok(component),
            Ok(None) => {}
            Err(rejected) => {
                tracing::warn!(file = %file.display(), "not using the cached component: {rejected}; compiling it again")
            }
        }
        let compiled = engine.precompile_component(source.bytes())?;
        // SAFETY: the bytes were produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        let digest = self.digest(&name, &compiled);
        let written = write_atomic(&file, &compiled)
            .and_then(|()| write_atomic(&digest_path(&file), format!("{}\n", hex::encode(digest)).as_bytes()));
        if let Err(e) = written {
            tracing::warn!(dir = %self.dir.display(), "cannot write the component cache (compiling each run instead): {e}");
        }
        Ok(component)
    }

    /// The cached component if its artifact exists and its digest verifies;
    /// `Ok(None)` when there is no artifact yet.
    fn load_verified(&self, engine: &Engine, name: &str, file: &Path) -> Result<Option<Component>, Rejected> {
        let len = match std::fs::metadata(file) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if len > MAX_ARTIFACT {
            return Err(Rejected::TooLarge(len));
        }
        let digest_file = digest_path(file);
        let expected = match std::fs::read_to_string(&digest_file) {
            Ok(text) => hex::decode(text.trim()).map_err(|_| Rejected::WrongDigest)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Rejected::MissingDigest(digest_file)),
            Err(e) => return Err(e.into()),
        };
        // Read once; only these bytes, once verified, are deserialized.
        let bytes = std::fs::read(file)?;
        hmac::verify(&self.key, &digest_input(name, &bytes), &expected).map_err(|_| Rejected::WrongDigest)?;
        // SAFETY: the bytes carry a digest under our secret key, bound to
        // this artifact name (module SHA-256 + engine compatibility hash):
        // this host's engine wrote them.
        let component = unsafe { Component::deserialize(engine, &bytes) }
            .map_err(|e| Rejected::Deserialize(anyhow::Error::from(e)))?;
        Ok(Some(component))
    }

    fn digest(&self, name: &str, artifact: &[u8]) -> hmac::Tag {
        hmac::sign(&self.key, &digest_input(name, artifact))
    }
}

/// What the digest covers: the artifact's name and the SHA-256 of its bytes.
fn digest_input(name: &str, artifact: &[u8]) -> Vec<u8> {
    let sha = ring::digest::digest(&ring::digest::SHA256, artifact);
    let mut input = Vec::with_capacity(DIGEST_CONTEXT.len() + name.len() + 1 + 32);
    input.extend_from_slice(DIGEST_CONTEXT);
    input.extend_from_slice(name.as_bytes());
    input.push(0);
    input.extend_from_slice(sha.as_ref());
    input
}

/// The digest file of an artifact.
fn digest_path(artifact: &Path) -> PathBuf {
    let mut name = artifact.as_os_str().to_os_string();
    name.push(DIGEST_SUFFIX);
    PathBuf::from(name)
}

/// Creates `dir` with mode 0700, or tightens an existing one to 0700.
fn private_dir(dir: &Path) -> Result<(), CacheError> {
    let err = |op| move |source| CacheError { op, path: dir.to_path_buf(), source };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(err("create"))?;
    let meta = std::fs::metadata(dir).map_err(err("stat"))?;
    if meta.permissions().mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err("set mode of"))?;
    }
    Ok(())
}

/// Reads the 32-byte key, or creates it: written to a temporary file, then
/// linked into place so two processes starting at once agree on one key. A
/// key file of the wrong size is replaced (its digests then fail and the
/// artifacts are compiled again).
fn load_or_create_key(path: &Path) -> Result<[u8; 32], CacheError> {
    let err = |op| move |source| CacheError { op, path: path.to_path_buf(), source };
    for _ in 0..3 {
        match std::fs::read(path) {
            Ok(bytes) => {
                if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
                    let meta = std::fs::metadata(path).map_err(err("stat"))?;
                    if meta.permissions().mode() & 0o777 != 0o600 {
                        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                            .map_err(err("set mode of"))?;
                    }
                    return Ok(key);
                }
                tracing::warn!(key = %path.display(), "the cache key is not 32 bytes; replacing it");
                std::fs::remove_file(path).map_err(err("remove"))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err("read")(e)),
        }
        let mut key = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
            .map_err(|_| err("generate")(std::io::Error::other("the system random generator failed")))?;
        let tmp = unique_tmp(path);
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            file.write_all(&key)?;
            file.sync_all()
        };
        let linked = write().and_then(|()| std::fs::hard_link(&tmp, path));
        if let Err(e) = std::fs::remove_file(&tmp)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %tmp.display(), "cannot remove a temporary key file: {e}");
        }
        match linked {
            Ok(()) => return Ok(key),
            // Another process made the key first: read theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err("create")(e)),
        }
    }
    Err(err("create")(std::io::Error::other("the key file keeps changing while it is being read")))
}

/// A temporary name beside `path`, unique in this process and across processes.
fn unique_tmp(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".tmp{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    PathBuf::from(name)
}

/// Writes `bytes` to `path` (0600) through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = unique_tmp(path);
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err()
        && let Err(e) = std::fs::remove_file(&tmp)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %tmp.display(), "cannot remove a temporary cache file: {e}");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_private_and_reused() {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("cache");
        let first = ComponentCache::open(&dir).unwrap();
        let key_file = state.path().join(KEY_FILE);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&key_file), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(state.path()), 0o700);
        let second = ComponentCache::open(&dir).unwrap();
        assert_eq!(first.digest("a", b"x").as_ref(), second.digest("a", b"x").as_ref());
        // The digest binds the name.
        assert_ne!(first.digest("a", b"x").as_ref(), first.digest("b", b"x").as_ref());
    }

    #[test]
    fn a_short_key_is_replaced() {
        let state = tempfile::tempdir().unwrap();
        std::fs::write(state.path().join(KEY_FILE), b"short").unwrap();
        ComponentCache::open(&state.path().join("cache")).unwrap();
        assert_eq!(std::fs::read(state.path().join(KEY_FILE)).unwrap().len(), 32);
    }
}
