//! TLS for nodes: TLS 1.3 only, rustls with the ring provider only, and quinn configurations
//! built from it. Two modes:
//!
//! * **mutual TLS with a cluster CA** ([`ClusterTls`]): every node presents a certificate chain
//!   signed by the cluster CA and accepts only peers that do the same, in both directions. Node
//!   certificates need not name a host: membership is proven by the CA's signature (the chain,
//!   validity period and key usage are checked; the server name is not).
//! * **development**: a generated certificate per node, not checked; peers prove the shared
//!   cluster secret in the handshake instead.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::server::WebPkiClientVerifier;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::node::NodeError;

pub(crate) const ALPN: &[u8] = b"actor-remote/1";
pub(crate) const SERVER_NAME: &str = "actor-node";

/// Mutual TLS with a cluster CA: PEM files of the CA certificate(s), this node's certificate
/// chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
///
/// ```no_run
/// use actor_core::{ActorSystem, SystemConfig};
/// use actor_remote::node::{ClusterTls, Node, NodeConfig};
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = ActorSystem::new(SystemConfig::default())?;
/// // No shared secret: the cluster CA's signature is what admits a peer.
/// let mut config = NodeConfig::new("alpha", "0.0.0.0:7400".parse()?, Vec::new());
/// config.tls = Some(ClusterTls {
///     ca_cert: "/etc/game/cluster-ca.pem".into(),
///     cert_chain: "/etc/game/alpha.pem".into(),
///     private_key: "/etc/game/alpha.key".into(),
/// });
/// let node = Node::start(&system, config)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterTls {
    /// The cluster CA certificate(s) every peer's chain must lead to.
    pub ca_cert: PathBuf,
    /// This node's certificate chain, signed by the cluster CA.
    pub cert_chain: PathBuf,
    /// This node's private key.
    pub private_key: PathBuf,
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> NodeError {
    NodeError::Tls(format!("{what}: {e}"))
}

/// The QUIC configurations of mutual TLS with the cluster CA in `files`, and the given idle
/// timeout.
pub(crate) fn cluster_quic_configs(
    files: &ClusterTls,
    idle_timeout: Duration,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), NodeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let ca_certs = CertificateDer::pem_file_iter(&files.ca_cert)
        .map_err(|e| tls_error(&format!("reading {}", files.ca_cert.display()), e))?;
    for cert in ca_certs {
        let cert =
            cert.map_err(|e| tls_error(&format!("reading {}", files.ca_cert.display()), e))?;
        roots
            .add(cert)
            .map_err(|e| tls_error(&format!("the CA in {}", files.ca_cert.display()), e))?;
    }
    if roots.is_empty() {
        return Err(NodeError::Tls(format!(
            "{} holds no CA certificate",
            files.ca_cert.display()
        )));
    }
    let roots = Arc::new(roots);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert_chain)
        .map_err(|e| tls_error(&format!("reading {}", files.cert_chain.display()), e))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_error(&format!("reading {}", files.cert_chain.display()), e))?;
    if chain.is_empty() {
        return Err(NodeError::Tls(format!(
            "{} holds no certificate",
            files.cert_chain.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.private_key)
        .map_err(|e| tls_error(&format!("reading {}", files.private_key.display()), e))?;

    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| tls_error("client verifier", e))?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_error("TLS 1.3", e))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(|e| tls_error("this node's certificate", e))?;
    server.alpn_protocols = vec![ALPN.to_vec()];
    let server_verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| tls_error("server verifier", e))?;
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_error("TLS 1.3", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ClusterCa(server_verifier)))
        .with_client_auth_cert(chain, key)
        .map_err(|e| tls_error("this node's certificate", e))?;
    client.alpn_protocols = vec![ALPN.to_vec()];
    quic_configs(server, client, idle_timeout)
}

/// The cluster CA's verdict on a peer's chain, without the host-name check (nodes are dialled by
/// address; the CA's signature is what admits them).
#[derive(Debug)]
struct ClusterCa(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for ClusterCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // The chain, validity and usage were checked before the name.
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A readable cause for a QUIC connection that failed in its TLS handshake (a local certificate
/// error, or the peer's TLS alert), or `None` for other failures.
pub(crate) fn tls_failure(error: &quinn::ConnectionError) -> Option<String> {
    let alert = |code: u64| -> Option<&'static str> {
        if code & !0xff != 0x100 {
            return None;
        }
        Some(match code & 0xff {
            40 => "handshake_failure",
            42 => "bad_certificate",
            43 => "unsupported_certificate",
            44 => "certificate_revoked",
            45 => "certificate_expired",
            46 => "certificate_unknown",
            48 => "unknown_ca (a certificate not signed by the cluster CA)",
            116 => "certificate_required (no client certificate)",
            120 => "no_application_protocol",
            _ => "a TLS alert",
        })
    };
    match error {
        quinn::ConnectionError::TransportError(e) => {
            alert(u64::from(e.code)).map(|_| format!("{e}"))
        }
        quinn::ConnectionError::ConnectionClosed(c) => alert(u64::from(c.error_code))
            .map(|name| format!("the peer refused the TLS handshake: {name}")),
        _ => None,
    }
}

/// The QUIC configurations of development mode: TLS 1.3 with ring, a generated certificate, no
/// certificate check (peers prove the cluster secret in the handshake instead), and the given
/// idle timeout. Public so benchmarks can measure raw quinn with exactly the node's settings.
pub fn dev_quic_configs(
    idle_timeout: Duration,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), NodeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_owned()])
        .map_err(|e| NodeError::Tls(e.to_string()))?;
    let cert_der: CertificateDer<'static> = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NodeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key)
        .map_err(|e| NodeError::Tls(e.to_string()))?;
    server.alpn_protocols = vec![ALPN.to_vec()];
    let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NodeError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SecretAuthenticated(provider)))
        .with_no_client_auth();
    client.alpn_protocols = vec![ALPN.to_vec()];
    quic_configs(server, client, idle_timeout)
}

fn quic_configs(
    server: rustls::ServerConfig,
    client: rustls::ClientConfig,
    idle_timeout: Duration,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), NodeError> {
    let mut transport = quinn::TransportConfig::default();
    let idle = idle_timeout;
    transport.max_idle_timeout(Some(
        idle.try_into()
            .map_err(|_| NodeError::Config("idle timeout too large".into()))?,
    ));
    let transport = Arc::new(transport);
    let quic_server =
        QuicServerConfig::try_from(server).map_err(|e| NodeError::Tls(e.to_string()))?;
    let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(quic_server));
    server_config.transport_config(transport.clone());
    let quic_client =
        QuicClientConfig::try_from(client).map_err(|e| NodeError::Tls(e.to_string()))?;
    let mut client_config = quinn::ClientConfig::new(Arc::new(quic_client));
    client_config.transport_config(transport);
    Ok((server_config, client_config))
}

/// Development mode: the server certificate is generated per node and not checked; the peer is
/// authenticated by the cluster secret in the handshake instead. Signatures are still verified,
/// so the TLS session itself is sound.
#[derive(Debug)]
struct SecretAuthenticated(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for SecretAuthenticated {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
