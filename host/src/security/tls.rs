//! Server TLS (rustls only) for the ingest gRPC and HTTP listeners and the
//! receiver: a certificate chain and key (`tls_cert`, `tls_key`, both or
//! neither) and, optionally, a CA whose client certificates are required
//! (`client_ca`, mutual TLS). Settings are checked when the config is
//! loaded, so a half-configured TLS never falls back to plaintext.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::config::ConfigError;

/// Longest a TLS handshake on the HTTP listener may take (10 s).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Checked TLS files of one listener.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA certificates client certificates must chain to; `None` = no
    /// client certificates asked for.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Checks one listener's TLS keys in `section` of `file`: `Ok(None)`
    /// for plaintext (none set); an error for one of `tls_cert`/`tls_key`
    /// without the other, `client_ca` without both, or a file that cannot
    /// be read or holds no PEM object of the expected kind.
    pub fn from_config(
        file: &Path,
        section: &str,
        cert: Option<&PathBuf>,
        key: Option<&PathBuf>,
        client_ca: Option<&PathBuf>,
    ) -> Result<Option<TlsFiles>, ConfigError> {
        let both = format!("{section}.tls_cert and {section}.tls_key");
        let files = match (cert, key) {
            (None, None) => {
                if client_ca.is_some() {
                    return Err(ConfigError::new(
                        file,
                        format!("{section}.client_ca"),
                        format!("client certificates need TLS: set {both} as well"),
                    ));
                }
                return Ok(None);
            }
            (Some(_), None) | (None, Some(_)) => {
                let (set, missing) = if cert.is_some() { ("tls_cert", "tls_key") } else { ("tls_key", "tls_cert") };
                return Err(ConfigError::new(
                    file,
                    format!("{section}.{missing}"),
                    format!(
                        "{section}.{set} is set but {section}.{missing} is not: TLS needs both {both} \
                         (refusing to serve plaintext)"
                    ),
                ));
            }
            (Some(cert), Some(key)) => TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: client_ca.cloned() },
        };
        let at = |name: &str| format!("{section}.{name}");
        certificates(&files.cert).map_err(|e| ConfigError::new(file, at("tls_cert"), e))?;
        private_key(&files.key).map_err(|e| ConfigError::new(file, at("tls_key"), e))?;
        if let Some(ca) = &files.client_ca {
            certificates(ca).map_err(|e| ConfigError::new(file, at("client_ca"), e))?;
        }
        Ok(Some(files))
    }

    /// The tonic server settings.
    pub fn tonic(&self) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("cannot read {}", p.display()));
        let mut config = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(read(&self.cert)?, read(&self.key)?));
        if let Some(ca) = &self.client_ca {
            config =
                config.client_ca_root(tonic::transport::Certificate::from_pem(read(ca)?)).client_auth_optional(false);
        }
        Ok(config)
    }

    /// The rustls server settings (HTTP/1.1).
    pub fn rustls(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in certificates(ca).map_err(anyhow::Error::msg)? {
                    roots.add(cert).with_context(|| format!("client_ca {}", ca.display()))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .with_context(|| format!("client_ca {}", ca.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(
                certificates(&self.cert).map_err(anyhow::Error::msg)?,
                private_key(&self.key).map_err(anyhow::Error::msg)?,
            )
            .context("the TLS certificate does not match its key")?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file ({e})", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate (expected -----BEGIN CERTIFICATE-----)", path.display()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| format!("{}: no PEM private key (PKCS#8, PKCS#1 or SEC1) ({e})", path.display()))
}

/// A TCP listener whose connections are TLS, for `axum::serve`. Handshakes
/// run in their own tasks (a slow client does not hold up others) and are
/// given up after 10 s; failed handshakes are logged at debug level.
pub struct TlsListener {
    incoming: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, std::net::SocketAddr)>,
    local: std::net::SocketAddr,
}

impl TlsListener {
    /// Accepts on `listener`, handshaking with `config`.
    pub fn new(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, incoming) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!("HTTP listener: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!("TCP_NODELAY: {e}");
                    }
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            if tx.send((tls, peer)).await.is_err() {
                                tracing::debug!(%peer, "HTTP listener closed during a handshake");
                            }
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { incoming, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(accepted) => accepted,
            // The accept task only ends once this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
