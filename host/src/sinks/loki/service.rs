//! Pushing entries to Loki: batching by count and bytes, retries of 429,
//! 5xx and network errors with backoff, and Loki's partial failures. A 400
//! means Loki refused some entries (and may have stored the others), so the
//! batch is split in halves and re-sent until each refused entry stands
//! alone; Loki drops exact duplicates, so re-sending the stored ones is
//! harmless. Only the entries Loki named are dead-lettered, with its reason.

use std::time::{Duration, Instant};

use super::config::{Encoding, LokiConfig};
use super::encode::{Entry, json_body, protobuf_body};
use crate::retry::Decision;

/// The outcome of delivering a set of entries.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Entries Loki refused: (event index, Loki's reason).
    pub refused: Vec<(usize, String)>,
    /// Entries not delivered because Loki stayed unavailable: (event index, reason).
    pub undelivered: Vec<(usize, String)>,
    /// Push requests made.
    pub pushes: u64,
}

/// One push's failure.
enum PushError {
    /// 400: some entries refused.
    Refused(String),
    /// Retries exhausted or not retryable.
    Failed(String),
}

/// An HTTP client for one Loki.
#[derive(Clone)]
pub struct LokiClient {
    http: reqwest::Client,
    url: String,
    config: LokiConfig,
    basic_password: Option<String>,
    bearer: Option<String>,
}

impl LokiClient {
    /// Builds the client; secrets come from the configured environment variables.
    pub fn new(config: &LokiConfig) -> anyhow::Result<LokiClient> {
        let env = |var: &Option<String>| -> anyhow::Result<Option<String>> {
            match var {
                Some(v) => {
                    Ok(Some(std::env::var(v).map_err(|_| anyhow::anyhow!("the environment variable {v} is not set"))?))
                }
                None => Ok(None),
            }
        };
        Ok(LokiClient {
            http: reqwest::Client::builder().timeout(Duration::from_millis(config.timeout_ms)).build()?,
            url: format!("{}/loki/api/v1/push", config.endpoint.trim_end_matches('/')),
            basic_password: env(&config.basic_password_env)?,
            bearer: env(&config.bearer_token_env)?,
            config: config.clone(),
        })
    }

    /// Delivers `entries`, in pushes of at most `batch_max_events` entries
    /// and `batch_max_bytes` line bytes.
    pub async fn deliver(&self, entries: &[Entry]) -> Outcome {
        let mut outcome = Outcome::default();
        let mut start = 0;
        while start < entries.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < entries.len()
                && end - start < self.config.batch_max_events
                && (end == start || bytes + entries[end].line.len() <= self.config.batch_max_bytes)
            {
                bytes += entries[end].line.len();
                end += 1;
            }
            let chunk: Vec<&Entry> = entries[start..end].iter().collect();
            self.deliver_chunk(&chunk, &mut outcome).await;
            start = end;
        }
        outcome
    }

    /// Pushes a chunk; on 400 splits it until the refused entries are alone.
    async fn deliver_chunk(&self, chunk: &[&Entry], outcome: &mut Outcome) {
        let mut stack = vec![chunk.to_vec()];
        while let Some(part) = stack.pop() {
            match self.push(&part, outcome).await {
                Ok(()) => {}
                Err(PushError::Refused(reason)) if part.len() == 1 => {
                    outcome.refused.push((part[0].index, format!("Loki refused the entry: {reason}")))
                }
                Err(PushError::Refused(_)) => {
                    let (a, b) = part.split_at(part.len() / 2);
                    stack.push(b.to_vec());
                    stack.push(a.to_vec());
                }
                Err(PushError::Failed(reason)) => {
                    outcome.undelivered.extend(part.iter().map(|e| (e.index, reason.clone())))
                }
            }
        }
    }

    /// One push with retries.
    async fn push(&self, entries: &[&Entry], outcome: &mut Outcome) -> Result<(), PushError> {
        let (body, content_type) = match self.config.encoding {
            Encoding::Protobuf => (protobuf_body(entries), "application/x-protobuf"),
            Encoding::Json => (json_body(entries, self.config.gzip), "application/json"),
        };
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            outcome.pushes += 1;
            let mut request = self.http.post(&self.url).header("Content-Type", content_type).body(body.clone());
            if self.config.encoding == Encoding::Json && self.config.gzip {
                request = request.header("Content-Encoding", "gzip");
            }
            if let Some(tenant) = &self.config.tenant {
                request = request.header("X-Scope-OrgID", tenant);
            }
            if let Some(user) = &self.config.basic_user {
                request = request.basic_auth(user, self.basic_password.as_deref());
            } else if let Some(token) = &self.bearer {
                request = request.bearer_auth(token);
            }
            let (code, reason) = match request.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let body =
                        if r.status().is_success() { Default::default() } else { r.bytes().await.unwrap_or_default() };
                    match classify(status, &body) {
                        Answer::Accepted => return Ok(()),
                        Answer::Refused(reason) => return Err(PushError::Refused(reason)),
                        Answer::Failed(reason) => return Err(PushError::Failed(reason)),
                        Answer::Retryable(code, reason) => (code, reason),
                    }
                }
                Err(e) if e.is_timeout() => (tonic::Code::DeadlineExceeded, format!("push timed out: {e}")),
                Err(e) => (tonic::Code::Unavailable, format!("push failed: {e}")),
            };
            match self.config.retry.decide(code, attempt, started.elapsed()) {
                Decision::Retry(wait) => {
                    tracing::debug!(sink = %self.config.name, attempt, "Loki push failed, retrying in {wait:?}: {reason}");
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(PushError::Failed(format!("{reason} (after {attempt} attempts)"))),
            }
        }
    }
}

/// What Loki's answer to a push means for the entries in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: every entry was taken.
    Accepted,
    /// 400: Loki refused something in the push (it names the line); the
    /// push is split until the refused entries are alone.
    Refused(String),
    /// 429 or 5xx: try the same push again later.
    Retryable(tonic::Code, String),
    /// Any other status: the push cannot succeed as configured (auth, URL).
    Failed(String),
}

/// Longest part of an answer's body quoted in a reason, in characters.
const REASON_CHARS: usize = 500;

/// Reads a push answer: its status decides, the body (any bytes, not
/// necessarily UTF-8) is quoted in the reason, trimmed to 500 characters.
pub fn classify(status: u16, body: &[u8]) -> Answer {
    if (200..300).contains(&status) {
        return Answer::Accepted;
    }
    let text = String::from_utf8_lossy(body);
    let reason = format!("HTTP {status}: {}", text.trim().chars().take(REASON_CHARS).collect::<String>());
    match status {
        400 => Answer::Refused(reason),
        429 => Answer::Retryable(tonic::Code::ResourceExhausted, reason),
        500..=599 => Answer::Retryable(tonic::Code::Unavailable, reason),
        _ => Answer::Failed(reason),
    }
}
