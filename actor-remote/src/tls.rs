//! TLS for nodes: TLS 1.3 only, rustls with the ring provider only, and quinn configurations
//! built from it. Development mode generates a certificate per node and authenticates peers by
//! the cluster secret in the handshake instead of by certificate.

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::node::NodeError;

pub(crate) const ALPN: &[u8] = b"actor-remote/1";
pub(crate) const SERVER_NAME: &str = "actor-node";

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
