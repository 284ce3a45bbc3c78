//! `wasmtel bench load`: what module trust costs when a module is loaded,
//! in one run on the same files. The builtin redactor-pii is written to a
//! temporary folder as a file, signed with a fresh key and compiled once
//! into a cache; then, `loads` times each (medians printed):
//!
//! - reading the file and its SHA-256, without and with the signature check
//!   (read `.sig`, parse, Ed25519 verify);
//! - taking the compiled artifact from the cache the unchecked way
//!   (`Component::deserialize_file`, as before digests) and the way the
//!   host does now (read, HMAC-SHA256 digest check, deserialize the
//!   verified bytes);
//! - the sum of both steps with and without the checks, and the ratio.
//!
//! The whole `RedactorModule` load (linking and the first instantiation
//! included) is printed for scale.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::component::Component;

use crate::config::Limits;
use crate::runtime::redactor::RedactorModule;
use crate::runtime::trust::{PrivateKey, TrustPolicy, sign_module};
use crate::runtime::{ModuleSource, Runtime, RuntimeOptions};

/// Medians of one run, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct LoadFigures {
    /// Read + SHA-256 of the module file.
    pub read_ms: f64,
    /// The same plus the signature check.
    pub read_signed_ms: f64,
    /// `deserialize_file` of the cached artifact, unchecked.
    pub deserialize_ms: f64,
    /// Read + digest check + deserialize of the cached artifact.
    pub deserialize_checked_ms: f64,
    /// `RedactorModule::new` with both checks (cache hit).
    pub whole_load_ms: f64,
}

/// Runs the benchmark and prints the figures.
pub fn run(loads: usize) -> anyhow::Result<LoadFigures> {
    let loads = loads.max(1);
    let dir = std::env::temp_dir().join(format!("wasmtel-bench-load-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let result = measure(&dir, loads);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        eprintln!("cannot remove {}: {e}", dir.display());
    }
    result
}

fn measure(dir: &Path, loads: usize) -> anyhow::Result<LoadFigures> {
    let module = dir.join("redactor-pii.wasm");
    std::fs::write(&module, crate::guests::REDACTOR_PII_BYTES)?;
    let key = PrivateKey::generate(&dir.join("key"))?;
    sign_module(&dir.join("key"), &module)?;
    let policy = TrustPolicy::new(vec![key.public_key()], true);
    let origin = module.display().to_string();

    let cache_dir = dir.join("state/cache");
    let runtime = Runtime::new(RuntimeOptions { cache_dir: Some(cache_dir.clone()), ..RuntimeOptions::default() })?;
    let source = policy.check(ModuleSource::resolve("pii", &origin, None)?)?;
    source.compile(&runtime)?;
    let artifact = find_artifact(&cache_dir)?;
    println!(
        "bench load: redactor-pii ({} KiB module, {} KiB compiled), {loads} loads of each, medians",
        crate::guests::REDACTOR_PII_BYTES.len() / 1024,
        std::fs::metadata(&artifact)?.len() / 1024
    );

    let read_ms = median(loads, || ModuleSource::resolve("pii", &origin, None).map(drop))?;
    let read_signed_ms = median(loads, || {
        let source = ModuleSource::resolve("pii", &origin, None)?;
        policy.check(source).map(drop).map_err(anyhow::Error::from)
    })?;
    let engine = runtime.engine();
    let deserialize_ms = median(loads, || {
        // SAFETY: the artifact was written by this engine moments ago into
        // a folder this process created; this is the unchecked baseline.
        unsafe { Component::deserialize_file(engine, &artifact) }.map(drop).map_err(anyhow::Error::from)
    })?;
    let deserialize_checked_ms = median(loads, || source.compile(&runtime).map(drop))?;
    let hash_artifact_ms = median(loads, || {
        let bytes = std::fs::read(&artifact)?;
        std::hint::black_box(ring::digest::digest(&ring::digest::SHA256, &bytes));
        Ok(())
    })?;
    let whole_load_ms = median(loads, || {
        let source = policy.check(ModuleSource::resolve("pii", &origin, None)?)?;
        RedactorModule::new(runtime.clone(), source, Limits::default(), Default::default()).map(drop)
    })?;

    let row = |label: &str, ms: f64, base: Option<f64>| match base {
        Some(base) => println!("  {label:<52} {ms:>8.3} ms  (+{:.3} ms, {:.2}x)", ms - base, ms / base),
        None => println!("  {label:<52} {ms:>8.3} ms"),
    };
    row("read + sha256, no signature check", read_ms, None);
    row("read + sha256 + signature check", read_signed_ms, Some(read_ms));
    row("cached artifact: deserialize_file, no digest", deserialize_ms, None);
    row("cached artifact: read + digest check + deserialize", deserialize_checked_ms, Some(deserialize_ms));
    row("  of which reading the artifact and its SHA-256", hash_artifact_ms, None);
    let (without, with) = (read_ms + deserialize_ms, read_signed_ms + deserialize_checked_ms);
    row("module load without the checks (sum of the above)", without, None);
    row("module load with both checks", with, Some(without));
    row("whole load with both checks (+ link, instantiate)", whole_load_ms, None);
    println!(
        "  the checks cost {:.3} ms per module load, {:.0}% of the whole load",
        with - without,
        100.0 * (with - without) / whole_load_ms
    );
    Ok(LoadFigures { read_ms, read_signed_ms, deserialize_ms, deserialize_checked_ms, whole_load_ms })
}

/// The one `.cwasm` file in the cache folder.
fn find_artifact(cache_dir: &Path) -> anyhow::Result<PathBuf> {
    for entry in std::fs::read_dir(cache_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            return Ok(path);
        }
    }
    anyhow::bail!("no compiled artifact in {}", cache_dir.display())
}

/// Runs `f` once to warm up, then `n` times; the median duration in ms.
fn median(n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?;
    let mut times: Vec<Duration> = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[n / 2].as_secs_f64() * 1e3)
}
