//! Module trust, through the real binary: `keygen` and `sign`, `[trust]`
//! refusing unsigned, wrongly signed and tampered modules with an error that
//! names the module and its signature file, the signer's key id in the audit
//! trail — and the compiled-module cache refusing artifacts whose keyed
//! digest does not verify (they are compiled again, never run).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;

fn wasmtel() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasmtel"));
    cmd.env("WASMTEL_LOG", "warn").env("NO_COLOR", "1");
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `wasmtel keygen --out <dir>/<name>`; returns the key file and its key id.
fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = wasmtel().args(["keygen", "--out"]).arg(&key).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let id = stdout.lines().find_map(|l| l.strip_prefix("key id:")).expect("keygen prints the key id").trim();
    (key, id.to_string())
}

/// `wasmtel sign --key <key> <module>`.
fn sign(key: &Path, module: &Path) {
    let out = wasmtel().arg("sign").arg("--key").arg(key).arg(module).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// A copy of the hostile guest (it redacts the word `secret` when given no
/// `behavior`) as `<dir>/m.wasm`, plus one event and a config `w.toml`
/// running it, then the builtin redactor, with `trust` as the `[trust]` table.
fn setup(dir: &Path, trust: &str) -> (PathBuf, PathBuf) {
    let module = dir.join("m.wasm");
    std::fs::copy(wasmtel::guests::REDACTOR_HOSTILE, &module).unwrap();
    std::fs::write(dir.join("in.jsonl"), "{\"orgId\":\"o\",\"metadata\":{\"m\":\"a secret\"}}\n").unwrap();
    let config = dir.join("w.toml");
    let text = format!(
        "state_dir = \"state\"\n[events]\npath = \"in.jsonl\"\n[trust]\n{trust}\n\
         [[redactors]]\nname = \"signed\"\nmodule = \"m.wasm\"\n\
         [[redactors]]\nname = \"pii\"\nmodule = \"builtin:redactor-pii\"\n\
         [[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n"
    );
    std::fs::write(&config, text).unwrap();
    (module, config)
}

/// `wasmtel check` must refuse the config; returns its error output after
/// checking that it names the module file and its signature file.
fn refused(config: &Path, module: &Path) -> String {
    let out = wasmtel().args(["check", "--config"]).arg(config).output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "the config was accepted: {err}");
    assert!(err.contains("redactors[0].module") && err.contains(&module.display().to_string()), "{err}");
    assert!(err.contains(&format!("{}.sig", module.display())), "the signature file is named: {err}");
    err
}

#[test]
fn keygen_writes_an_owner_only_private_key_and_a_public_key_file() {
    let dir = tempdir();
    let (key, id) = keygen(dir.path(), "k");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let public = std::fs::read_to_string(dir.path().join("k.pub")).unwrap();
    assert!(public.contains(&id) && public.contains("ed25519:"), "{public}");
    let again = wasmtel().args(["keygen", "--out"]).arg(&key).output().unwrap();
    assert!(!again.status.success() && stderr(&again).contains("refusing to overwrite"), "{}", stderr(&again));
}

#[test]
fn an_unsigned_module_is_refused_under_require_signatures() {
    let dir = tempdir();
    keygen(dir.path(), "k");
    let (module, config) = setup(dir.path(), "keys = [\"k.pub\"]\nrequire_signatures = true");
    let err = refused(&config, &module);
    assert!(err.contains("does not exist") && err.contains("require_signatures = true"), "{err}");
    // The run refuses too, before reading any event.
    let out = wasmtel().args(["run", "--once", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success());
    assert!(!dir.path().join("out.jsonl").exists());
}

#[test]
fn a_module_signed_by_an_unlisted_key_is_refused() {
    let dir = tempdir();
    keygen(dir.path(), "trusted");
    let (other, other_id) = keygen(dir.path(), "other");
    // Refused whether or not signatures are required: a signature that is
    // present but does not verify is never ignored.
    for require in ["true", "false"] {
        let (module, config) = setup(dir.path(), &format!("keys = [\"trusted.pub\"]\nrequire_signatures = {require}"));
        sign(&other, &module);
        let err = refused(&config, &module);
        assert!(err.contains(&format!("made by key {other_id}, which is not in trust.keys")), "{err}");
    }
}

#[test]
fn a_tampered_module_is_refused() {
    let dir = tempdir();
    let (key, _) = keygen(dir.path(), "k");
    let (module, config) = setup(dir.path(), "keys = [\"k.pub\"]");
    sign(&key, &module);
    // One byte changed inside a custom-section-free spot: the last byte.
    let mut bytes = std::fs::read(&module).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&module, bytes).unwrap();
    let err = refused(&config, &module);
    assert!(err.contains("the module changed after it was signed"), "{err}");
}

#[test]
fn a_tampered_signature_file_is_refused() {
    let dir = tempdir();
    let (key, id) = keygen(dir.path(), "k");
    let (module, config) = setup(dir.path(), "keys = [\"k.pub\"]");
    sign(&key, &module);
    let sig = PathBuf::from(format!("{}.sig", module.display()));
    let text = std::fs::read_to_string(&sig).unwrap();
    // Another signature value of the right shape.
    let line = text.lines().find(|l| l.starts_with("signature: ")).unwrap();
    let forged = format!("signature: {}", "A".repeat(86) + "==");
    std::fs::write(&sig, text.replace(line, &forged)).unwrap();
    let err = refused(&config, &module);
    assert!(err.contains(&format!("does not verify with key {id}")), "{err}");
}

#[test]
fn a_signed_module_runs_and_its_key_id_is_in_the_audit_trail() {
    let dir = tempdir();
    let (key, id) = keygen(dir.path(), "k");
    let (module, config) = setup(dir.path(), "keys = [\"k.pub\"]\nrequire_signatures = true");
    sign(&key, &module);
    let check = wasmtel().args(["check", "--config"]).arg(&config).output().unwrap();
    let report = stderr(&check);
    assert!(check.status.success(), "{report}");
    assert!(report.contains(&format!("module \"signed\" ({}): sha256 ", module.display())), "{report}");
    assert!(report.contains(&format!("signed by key {id}")), "{report}");
    assert!(report.contains("module \"pii\" (builtin:redactor-pii)") && report.contains("exempt"), "{report}");

    let out = wasmtel().args(["run", "--once", "--config"]).arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let delivered = read_jsonl(&dir.path().join("out.jsonl"));
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["metadata"]["m"], "a <WORD>");
    let audit = read_jsonl(&dir.path().join("state/audit.jsonl"));
    let ours: Vec<_> = audit.iter().filter(|r| r["module"] == "signed").collect();
    assert_eq!(ours.len(), 1, "{audit:?}");
    assert_eq!(ours[0]["signer"], id.as_str());
    assert!(audit.iter().filter(|r| r["module"] == "pii").all(|r| r["signer"].is_null()), "{audit:?}");
}

#[test]
fn a_sha256_pin_still_applies_to_a_signed_module() {
    let dir = tempdir();
    let (key, _) = keygen(dir.path(), "k");
    let (module, config) = setup(dir.path(), "keys = [\"k.pub\"]\nrequire_signatures = true");
    sign(&key, &module);
    let text = std::fs::read_to_string(&config).unwrap();
    let pinned =
        text.replace("module = \"m.wasm\"\n", &format!("module = \"m.wasm\"\nsha256 = \"{}\"\n", "0".repeat(64)));
    std::fs::write(&config, pinned).unwrap();
    let out = wasmtel().args(["check", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success() && stderr(&out).contains("but the config pins"), "{}", stderr(&out));
}

// ---- the compiled-module cache --------------------------------------------

/// Runs `wasmtel run --once` on an email and the word `secret` with one
/// redactor (`module`) in `dir`; returns (what was delivered, stderr).
fn run_cached(dir: &Path, module: &str) -> (String, String) {
    std::fs::write(
        dir.join("in.jsonl"),
        "{\"orgId\":\"o\",\"userId\":\"alice@example.com\",\"metadata\":{\"m\":\"a secret\"}}\n",
    )
    .unwrap();
    let config = dir.join("c.toml");
    let text = format!(
        "state_dir = \"state\"\n[events]\npath = \"in.jsonl\"\ncheckpoint = false\n[[redactors]]\nname = \"r\"\nmodule = {module:?}\n\
         [[sinks]]\nkind = \"jsonl\"\npath = \"out.jsonl\"\n"
    );
    std::fs::write(&config, text).unwrap();
    std::fs::remove_file(dir.join("out.jsonl")).ok();
    std::fs::remove_dir_all(dir.join("state/log")).ok();
    let out = wasmtel().args(["run", "--once", "--config"]).arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    (std::fs::read_to_string(dir.join("out.jsonl")).unwrap(), stderr(&out))
}

/// The cached artifact of the module with this SHA-256 in `dir`'s state folder.
fn artifact(dir: &Path, sha256: &str) -> PathBuf {
    let cache = dir.join("state/cache");
    let found: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(sha256) && name.ends_with(".cwasm")
        })
        .collect();
    assert_eq!(found.len(), 1, "one artifact of {sha256} in {}", cache.display());
    found[0].clone()
}

fn digest_of(artifact: &Path) -> PathBuf {
    PathBuf::from(format!("{}.digest", artifact.display()))
}

fn pii_sha256() -> String {
    wasmtel::runtime::ModuleSource::resolve("pii", "builtin:redactor-pii", None).unwrap().sha256.to_string()
}

/// The builtin redactor's output: the email replaced, `secret` kept.
fn assert_redacted_by_pii(delivered: &str) {
    assert!(!delivered.contains("alice@example.com"), "{delivered}");
    assert!(delivered.contains("a secret") && !delivered.contains("<WORD>"), "{delivered}");
}

#[test]
fn cache_files_are_private_and_the_key_is_in_the_state_folder() {
    let dir = tempdir();
    let (delivered, _) = run_cached(dir.path(), "builtin:redactor-pii");
    assert_redacted_by_pii(&delivered);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let file = artifact(dir.path(), &pii_sha256());
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    assert_eq!(mode(&dir.path().join("state/cache")), 0o700);
    assert_eq!(mode(&dir.path().join("state/cache.key")), 0o600);
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&digest_of(&file)), 0o600);
}

#[test]
fn a_tampered_cache_file_is_recompiled_not_run() {
    let dir = tempdir();
    run_cached(dir.path(), "builtin:redactor-pii");
    let file = artifact(dir.path(), &pii_sha256());
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0xa5;
    }
    std::fs::write(&file, &bytes).unwrap();

    let (delivered, log) = run_cached(dir.path(), "builtin:redactor-pii");
    assert_redacted_by_pii(&delivered);
    assert!(log.contains("not using the cached component: its digest does not match"), "{log}");
    assert!(log.contains(&file.display().to_string()), "the warning names the file: {log}");
    assert_ne!(std::fs::read(&file).unwrap(), bytes, "the artifact was rewritten");
    // The rewritten artifact verifies: the next run uses it without a word.
    let (_, log) = run_cached(dir.path(), "builtin:redactor-pii");
    assert!(!log.contains("not using the cached component"), "{log}");
}

/// The digest binds an artifact to its name: a genuine artifact (with its
/// genuine digest) of another module, put in place of the builtin
/// redactor's, is not run.
#[test]
fn an_artifact_of_another_module_is_not_run_in_its_place() {
    let dir = tempdir();
    let hostile = wasmtel::runtime::ModuleSource::resolve("h", wasmtel::guests::REDACTOR_HOSTILE, None).unwrap();
    let (delivered, _) = run_cached(dir.path(), wasmtel::guests::REDACTOR_HOSTILE);
    assert!(delivered.contains("<WORD>"), "the other module redacts differently: {delivered}");
    run_cached(dir.path(), "builtin:redactor-pii");
    let (theirs, ours) = (artifact(dir.path(), &hostile.sha256), artifact(dir.path(), &pii_sha256()));
    std::fs::copy(&theirs, &ours).unwrap();
    std::fs::copy(digest_of(&theirs), digest_of(&ours)).unwrap();

    let (delivered, log) = run_cached(dir.path(), "builtin:redactor-pii");
    assert_redacted_by_pii(&delivered);
    assert!(log.contains("its digest does not match") && log.contains(&ours.display().to_string()), "{log}");
}

#[test]
fn a_missing_cache_digest_recompiles() {
    let dir = tempdir();
    run_cached(dir.path(), "builtin:redactor-pii");
    let file = artifact(dir.path(), &pii_sha256());
    std::fs::remove_file(digest_of(&file)).unwrap();
    let (delivered, log) = run_cached(dir.path(), "builtin:redactor-pii");
    assert_redacted_by_pii(&delivered);
    assert!(log.contains("no digest file") && log.contains(&digest_of(&file).display().to_string()), "{log}");
    assert!(digest_of(&file).exists(), "the digest was written again");
}
