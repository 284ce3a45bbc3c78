//! The tonic client: endpoint, TLS with a custom CA (rustls), bearer token
//! and extra metadata on every call, and per-call deadlines that surface as
//! DEADLINE_EXCEEDED.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use super::ZitadelConfig;
use crate::proto::zitadel::telemetry_service_client::TelemetryServiceClient;

/// Adds the configured metadata to every request.
#[derive(Clone)]
pub struct AddMetadata(MetadataMap);

impl tonic::service::Interceptor for AddMetadata {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        for kv in self.0.iter() {
            if let tonic::metadata::KeyAndValueRef::Ascii(k, v) = kv {
                request.metadata_mut().insert(k.clone(), v.clone());
            }
        }
        Ok(request)
    }
}

/// The client type the reporter uses.
pub type Client = TelemetryServiceClient<InterceptedService<Channel, AddMetadata>>;

/// Builds a client. The channel connects lazily: nothing is dialed until
/// the first call.
pub fn build(config: &ZitadelConfig) -> anyhow::Result<Client> {
    let mut endpoint = Endpoint::from_str(&config.endpoint)
        .with_context(|| format!("endpoint {:?} is not a valid URL", config.endpoint))?
        .connect_timeout(Duration::from_millis(config.timeout_ms))
        .tcp_nodelay(true);
    if config.endpoint.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &config.tls_ca {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read tls_ca {}", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let Some(domain) = &config.tls_domain {
            tls = tls.domain_name(domain.clone());
        }
        if let (Some(cert), Some(key)) = (&config.tls_client_cert, &config.tls_client_key) {
            let read = |p: &std::path::Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
            tls = tls.identity(tonic::transport::Identity::from_pem(read(cert)?, read(key)?));
        }
        endpoint = endpoint.tls_config(tls).context("invalid TLS settings")?;
    }
    let mut metadata = MetadataMap::new();
    if let Some(var) = &config.bearer_token_env {
        let token = std::env::var(var)
            .with_context(|| format!("bearer_token_env: the environment variable {var} is not set"))?;
        let value = AsciiMetadataValue::try_from(format!("Bearer {token}"))
            .context("the bearer token is not valid header text")?;
        metadata.insert("authorization", value);
    }
    for (k, v) in &config.headers {
        let key = AsciiMetadataKey::from_str(&k.to_ascii_lowercase())
            .with_context(|| format!("header name {k:?} is not valid"))?;
        let value = AsciiMetadataValue::try_from(v.as_str())
            .with_context(|| format!("header {k:?} has a value that is not valid header text"))?;
        metadata.insert(key, value);
    }
    let channel = endpoint.connect_lazy();
    Ok(TelemetryServiceClient::with_interceptor(channel, AddMetadata(metadata)))
}

/// A request carrying `grpc-timeout`.
pub fn request<T>(message: T, timeout: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Awaits a call, turning a missed deadline into DEADLINE_EXCEEDED. (A
/// tonic server that enforces `grpc-timeout` answers CANCELLED "Timeout
/// expired"; that is a missed deadline too.)
pub async fn with_deadline<T>(timeout: Duration, call: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
    let started = std::time::Instant::now();
    match tokio::time::timeout(timeout, call).await {
        Ok(Err(status)) if status.code() == tonic::Code::Cancelled && started.elapsed() >= timeout.mul_f32(0.9) => Err(
            Status::deadline_exceeded(format!("no answer within {} ms ({})", timeout.as_millis(), status.message())),
        ),
        Ok(result) => result,
        Err(_) => Err(Status::deadline_exceeded(format!("no answer within {} ms", timeout.as_millis()))),
    }
}
