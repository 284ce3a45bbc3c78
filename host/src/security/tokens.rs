//! Bearer tokens for the ingest service and the receiver.
//!
//! Tokens come from an environment variable (`tokens_env`), a file
//! (`tokens_file`, re-read within a second of a change), or both. Each entry
//! is `token=value`, separated by commas or new lines (`#` starts a comment
//! line); the value is what the token stands for: an organization id for
//! ingest, the systems it may report for on the receiver.
//!
//! Presented tokens are compared in constant time against every known token
//! (SHA-256 digests, compared with [`subtle`]), so response timing does not
//! reveal how much of a token was right. A file that cannot be read or
//! parsed on reload keeps the tokens already loaded (logged and counted in
//! [`Tokens::reload_failures`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::ConfigError;

/// How often a `tokens_file` is checked for changes (at most once per this).
const RECHECK: Duration = Duration::from_secs(1);

/// Why a caller was not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `authorization: Bearer …` header.
    #[error("missing `authorization: Bearer <token>` metadata")]
    Missing,
    /// A token that is not accepted.
    #[error("the bearer token is not accepted")]
    Rejected,
}

/// A parse problem in token text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {entry}: expected `token=VALUE` where VALUE is {expected}")]
pub struct TokenSyntax {
    /// 1-based entry number.
    pub entry: usize,
    /// What the value should be.
    pub expected: &'static str,
}

/// Where tokens come from, as configured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenSources {
    /// Environment variable holding entries.
    pub env: Option<String>,
    /// File holding entries.
    pub file: Option<PathBuf>,
}

struct Entry {
    digest: [u8; 32],
    value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(Stamp { modified: m.modified().ok(), len: m.len(), inode: m.ino() })
}

/// The accepted tokens.
pub struct Tokens {
    env_entries: Vec<(String, String)>,
    file: Option<PathBuf>,
    expected: &'static str,
    table: RwLock<Arc<Vec<Entry>>>,
    checked: Mutex<(Instant, Option<Stamp>)>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
}

/// Parses `token=value` entries separated by commas or new lines.
pub fn parse(text: &str, expected: &'static str) -> Result<Vec<(String, String)>, TokenSyntax> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
        .map(|(i, pair)| {
            pair.split_once('=')
                .map(|(t, v)| (t.trim().to_string(), v.trim().to_string()))
                .filter(|(t, v)| !t.is_empty() && !v.is_empty())
                .ok_or(TokenSyntax { entry: i + 1, expected })
        })
        .collect()
}

fn table(entries: &[(String, String)]) -> Vec<Entry> {
    entries.iter().map(|(t, v)| Entry { digest: Sha256::digest(t.as_bytes()).into(), value: v.clone() }).collect()
}

impl Tokens {
    /// Loads the tokens of `sources` (`section` names the config table in
    /// errors, e.g. `ingest`); `None` when neither source is configured
    /// (no authentication). A configured source that yields no token at
    /// all is an error: it would lock everybody out.
    pub fn load(
        config_file: &Path,
        section: &str,
        sources: &TokenSources,
        expected: &'static str,
    ) -> Result<Option<Arc<Tokens>>, ConfigError> {
        if sources.env.is_none() && sources.file.is_none() {
            return Ok(None);
        }
        let mut env_entries = Vec::new();
        if let Some(var) = &sources.env {
            let key = format!("{section}.tokens_env");
            let text = std::env::var(var).map_err(|_| {
                ConfigError::new(config_file, &key, format!("the environment variable {var} is not set"))
            })?;
            env_entries =
                parse(&text, expected).map_err(|e| ConfigError::new(config_file, &key, format!("{var}: {e}")))?;
        }
        let mut from_file = Vec::new();
        let mut file_stamp = None;
        if let Some(path) = &sources.file {
            let key = format!("{section}.tokens_file");
            let read = || -> Result<_, String> {
                let s = stamp(path).map_err(|e| e.to_string())?;
                let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
                Ok((s, parse(&text, expected).map_err(|e| e.to_string())?))
            };
            let (s, entries) =
                read().map_err(|e| ConfigError::new(config_file, &key, format!("{}: {e}", path.display())))?;
            warn_if_readable_by_others(path);
            file_stamp = Some(s);
            from_file = entries;
        }
        if env_entries.is_empty() && from_file.is_empty() {
            return Err(ConfigError::new(
                config_file,
                format!("{section}.tokens_env / {section}.tokens_file"),
                "no token configured: nobody could connect (remove both keys to turn authentication off)",
            ));
        }
        let all: Vec<_> = env_entries.iter().chain(&from_file).cloned().collect();
        Ok(Some(Arc::new(Tokens {
            env_entries,
            file: sources.file.clone(),
            expected,
            table: RwLock::new(Arc::new(table(&all))),
            checked: Mutex::new((Instant::now(), file_stamp)),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        })))
    }

    /// Tokens given directly (tests and tools).
    pub fn fixed(entries: Vec<(String, String)>) -> Arc<Tokens> {
        Arc::new(Tokens {
            table: RwLock::new(Arc::new(table(&entries))),
            env_entries: entries,
            file: None,
            expected: "",
            checked: Mutex::new((Instant::now(), None)),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
        })
    }

    /// Successful reloads of a changed `tokens_file` so far.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Reloads that failed (the tokens already loaded were kept) so far.
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// What `presented` stands for, comparing it with every known token in
    /// constant time.
    pub fn lookup(&self, presented: &str) -> Option<String> {
        self.reload_if_changed();
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let table = Arc::clone(&self.table.read().unwrap_or_else(|e| e.into_inner()));
        let mut found = None;
        for entry in table.iter() {
            // No early exit: every entry costs the same.
            if bool::from(entry.digest.ct_eq(&digest)) && found.is_none() {
                found = Some(entry.value.clone());
            }
        }
        found
    }

    /// Checks an `authorization` header value.
    pub fn authorize(&self, header: Option<&str>) -> Result<String, AuthError> {
        let token = header.and_then(|h| h.strip_prefix("Bearer ")).ok_or(AuthError::Missing)?;
        self.lookup(token).ok_or(AuthError::Rejected)
    }

    fn reload_if_changed(&self) {
        let Some(path) = &self.file else { return };
        let Ok(mut checked) = self.checked.try_lock() else { return };
        if checked.0.elapsed() < RECHECK {
            return;
        }
        checked.0 = Instant::now();
        let now = stamp(path).ok();
        if now.is_none() || now == checked.1 {
            if now.is_none() && checked.1.is_some() {
                tracing::error!(file = %path.display(), "tokens_file is gone; keeping the tokens already loaded");
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
                checked.1 = None;
            }
            return;
        }
        checked.1 = now;
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| parse(&text, self.expected).map_err(|e| e.to_string()));
        match parsed {
            Ok(entries) if entries.is_empty() && self.env_entries.is_empty() => {
                tracing::error!(file = %path.display(), "tokens_file has no token; keeping the tokens already loaded");
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
            }
            Ok(entries) => {
                let all: Vec<_> = self.env_entries.iter().chain(&entries).cloned().collect();
                *self.table.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(table(&all));
                self.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(file = %path.display(), tokens = all.len(), "tokens reloaded");
            }
            Err(e) => {
                tracing::error!(file = %path.display(), "cannot reload tokens_file ({e}); keeping the tokens already loaded");
                self.reload_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl std::fmt::Debug for Tokens {
    /// Never prints a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.table.read().map(|t| t.len()).unwrap_or(0);
        f.debug_struct("Tokens").field("count", &n).field("file", &self.file).finish_non_exhaustive()
    }
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path)
        && m.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            file = %path.display(),
            mode = format!("{:o}", m.permissions().mode() & 0o777),
            "tokens_file is readable by other users; chmod 600 it"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_split_on_commas_and_lines_and_skip_comments() {
        let parsed = parse("# ops\na=org1, b=org2\n\nc = org3\n", "an org").unwrap();
        let want = [("a", "org1"), ("b", "org2"), ("c", "org3")].map(|(t, v)| (t.to_string(), v.to_string()));
        assert_eq!(parsed, want);
        assert_eq!(parse("a=1,bare", "an org"), Err(TokenSyntax { entry: 2, expected: "an org" }));
    }

    #[test]
    fn lookup_finds_exact_tokens_only() {
        let tokens = Tokens::fixed(vec![("secret-one".into(), "org1".into()), ("secret-two".into(), "org2".into())]);
        assert_eq!(tokens.lookup("secret-two").as_deref(), Some("org2"));
        assert_eq!(tokens.lookup("secret-tw"), None);
        assert_eq!(tokens.lookup(""), None);
        assert_eq!(tokens.authorize(Some("Bearer secret-one")), Ok("org1".into()));
        assert_eq!(tokens.authorize(Some("secret-one")), Err(AuthError::Missing));
        assert_eq!(tokens.authorize(Some("Bearer nope")), Err(AuthError::Rejected));
    }

    #[test]
    fn a_changed_file_is_reloaded_and_a_broken_one_keeps_the_old_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "old=org1\n").unwrap();
        let sources = TokenSources { env: None, file: Some(path.clone()) };
        let tokens = Tokens::load(Path::new("c.toml"), "ingest", &sources, "an org").unwrap().unwrap();
        assert_eq!(tokens.lookup("old").as_deref(), Some("org1"));
        std::fs::write(&path, "new=org2, newer=org3\n").unwrap();
        tokens.checked.lock().unwrap().0 -= RECHECK;
        assert_eq!(tokens.lookup("new").as_deref(), Some("org2"));
        assert_eq!(tokens.lookup("old"), None);
        std::fs::write(&path, "broken line without equals sign\n").unwrap();
        tokens.checked.lock().unwrap().0 -= RECHECK;
        assert_eq!(tokens.lookup("newer").as_deref(), Some("org3"));
    }

    #[test]
    fn a_configured_source_without_tokens_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "# nobody yet\n").unwrap();
        let sources = TokenSources { env: None, file: Some(path) };
        let err = Tokens::load(Path::new("c.toml"), "receiver", &sources, "x").err().unwrap();
        assert!(err.to_string().contains("no token configured"), "{err}");
    }
}
