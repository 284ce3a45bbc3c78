//! The HTTP JSON reporter (Scout/Metriton-style endpoints): POSTs
//! `{application, install_id, version, metadata}` per report, where
//! `install_id` is the persisted system ID and `metadata` carries the counts
//! and base information merged over the configured static metadata.
//!
//! A response `{"disable_scout": true}` stops all reporting for the rest of
//! the process; `{"latest_version": "..."}` is logged when newer than ours.
//! 5xx and 429 are retried with the same backoff as the gRPC reporter; other
//! 4xx are not (the report moves to `rejected/`). Outbox, draining and the
//! task are shared with the gRPC reporter ([`super`]).

mod config;

use std::path::Path;
use std::time::{Duration, Instant};

pub use config::HttpReportConfig;
use serde_json::{Map, Value, json};

use super::{Deliver, PendingReport, ReportSink, Save, Stop};
use crate::installation::ReportingSwitch;
use crate::report::Report;
use crate::retry::Decision;
use crate::sinks::BoxFuture;

/// Delivers reports as HTTP POSTs.
pub struct HttpDelivery {
    config: HttpReportConfig,
    install_id: String,
    client: reqwest::Client,
    switch: ReportingSwitch,
    token: Option<String>,
}

/// The HTTP JSON reporter sink: opens the outbox and builds the HTTP client.
pub fn sink(config: HttpReportConfig, state_dir: &Path, switch: ReportingSwitch) -> anyhow::Result<ReportSink> {
    Ok(ReportSink::open(
        &config.name.clone(),
        Box::new(HttpDelivery::new(config, state_dir, switch.clone())?),
        state_dir,
        switch,
    )?)
}

impl HttpDelivery {
    /// The delivery half of the sink (also used to render bodies in tests).
    pub fn new(config: HttpReportConfig, state_dir: &Path, switch: ReportingSwitch) -> anyhow::Result<HttpDelivery> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .user_agent(concat!("wasmtel/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let token = match &config.bearer_token_env {
            Some(var) => Some(
                std::env::var(var)
                    .map_err(|_| anyhow::anyhow!("bearer_token_env: the environment variable {var} is not set"))?,
            ),
            None => None,
        };
        let install_id = crate::installation::system_id(state_dir)?;
        Ok(HttpDelivery { config, install_id, client, switch, token })
    }
}

impl Deliver for HttpDelivery {
    fn deliver<'a>(&'a mut self, pending: &'a mut PendingReport, save: Save<'a>) -> BoxFuture<'a, Result<(), Stop>> {
        Box::pin(async move {
            let body = self.body(&pending.report);
            let result = self.post(&body, pending).await;
            save(pending);
            result
        })
    }
}

impl HttpDelivery {
    /// The JSON body for a report.
    pub fn body(&self, report: &Report) -> Value {
        let mut metadata = Map::new();
        for (k, v) in &self.config.metadata {
            metadata.insert(k.clone(), serde_json::to_value(v).unwrap_or(Value::Null));
        }
        if let Value::Object(own) = json!({
            "collector": report.collector,
            "collected_at": crate::event::format_time(report.collected_at),
            "counts": report.counts,
            "base": report.base,
        }) {
            metadata.extend(own);
        }
        json!({
            "application": self.config.application,
            "install_id": self.install_id,
            "version": self.config.version,
            "metadata": metadata,
        })
    }

    async fn post(&self, body: &Value, pending: &mut PendingReport) -> Result<(), Stop> {
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            pending.attempts += 1;
            let mut request = self.client.post(&self.config.url).json(body);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let (code, reason) = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    let answer: Value = response.json().await.unwrap_or(Value::Null);
                    self.handle_answer(&answer);
                    return Ok(());
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    let reason = format!("HTTP {status}: {}", text.chars().take(200).collect::<String>());
                    let code = match status.as_u16() {
                        429 => tonic::Code::ResourceExhausted,
                        500..=599 => tonic::Code::Unavailable,
                        404 => tonic::Code::NotFound,
                        _ => tonic::Code::InvalidArgument,
                    };
                    (code, reason)
                }
                Err(e) if e.is_timeout() => (tonic::Code::DeadlineExceeded, format!("timeout: {e}")),
                Err(e) => (tonic::Code::Unavailable, format!("request failed: {e}")),
            };
            match self.config.retry.decide(code, attempt, started.elapsed()) {
                Decision::Retry(wait) => tokio::time::sleep(wait).await,
                _ if code == tonic::Code::InvalidArgument => return Err(Stop::Rejected(reason)),
                _ => return Err(Stop::Deferred(reason)),
            }
        }
    }

    fn handle_answer(&self, answer: &Value) {
        if answer.get("disable_scout").and_then(Value::as_bool) == Some(true) {
            tracing::warn!(sink = %self.config.name, "the endpoint asked to stop reporting: no more reports for the rest of this process");
            self.switch.stop();
        }
        if let Some(latest) = answer.get("latest_version").and_then(Value::as_str)
            && is_newer(latest, &self.config.version)
        {
            tracing::info!(latest, ours = %self.config.version, "a newer version is available");
        }
    }
}

/// True when dotted version `a` is newer than `b` (`v` prefixes and
/// pre-release suffixes ignored).
pub fn is_newer(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> {
        v.trim_start_matches('v')
            .split(['-', '+'])
            .next()
            .unwrap_or("")
            .split('.')
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    parse(a) > parse(b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_versions() {
        assert!(super::is_newer("0.2.0", "0.1.9"));
        assert!(super::is_newer("v1.10.0", "1.9.3"));
        assert!(!super::is_newer("0.1.0", "0.1.0"));
        assert!(!super::is_newer("0.1.0-rc1", "0.1.0"));
    }
}
