//! Mutual TLS with a cluster CA, over real QUIC on 127.0.0.1: certificates from PEM files, a peer
//! with a certificate from another CA refused with the cause on both sides, and a dev-mode node
//! (no certificate from the CA) refused too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actor_core::{ActorSystem, SystemConfig};
use actor_remote::handshake::HandshakeError;
use actor_remote::node::{ClusterTls, Node, NodeConfig, NodeError, PeerState};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

mod support;
use support::eventually;

/// A fresh directory for one test's PEM files.
fn scratch() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "actor-remote-mtls-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("CA certificate");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// Writes `ca`'s certificate and a node certificate it signed into `dir`.
fn node_files(dir: &Path, trusted: &Ca, signer: &Ca, name: &str) -> ClusterTls {
    let mut params =
        CertificateParams::new(vec![format!("{name}.cluster.internal")]).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().expect("key");
    let cert = params
        .signed_by(&key, &signer.issuer)
        .expect("node certificate");
    let files = ClusterTls {
        ca_cert: dir.join(format!("{name}-ca.pem")),
        cert_chain: dir.join(format!("{name}.pem")),
        private_key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&files.ca_cert, &trusted.pem).expect("write");
    std::fs::write(&files.cert_chain, cert.pem()).expect("write");
    std::fs::write(&files.private_key, key.serialize_pem()).expect("write");
    files
}

fn start(name: &str, tls: Option<ClusterTls>, secret: &str) -> Result<Node, NodeError> {
    let system = ActorSystem::new(SystemConfig::default()).expect("system");
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut config = NodeConfig::new(name, addr, secret.as_bytes());
    config.tls = tls;
    Node::start(&system, config)
}

/// `dialer` dials `acceptor`; returns the TLS cause the dialer was refused with.
async fn refused(dialer: &Node, acceptor: &Node) -> String {
    let err = dialer
        .connect(acceptor.local_addr().expect("addr"))
        .await
        .expect_err("refused");
    match err {
        NodeError::Handshake {
            error: HandshakeError::Tls(cause),
            ..
        } => cause,
        other => panic!("expected a TLS refusal, got {other}"),
    }
}

/// True once `node` has recorded a TLS refusal whose cause contains one of `needles`.
async fn records_tls_refusal(node: &Node, needles: &[&str]) -> bool {
    eventually(Duration::from_secs(5), || {
        node.refusals().iter().any(|r| {
            matches!(&r.error, HandshakeError::Tls(cause) if needles.iter().any(|n| cause.contains(n)))
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_with_certificates_from_the_cluster_ca_connect_without_a_secret() {
    let dir = scratch();
    let cluster = ca("cluster");
    let a = start(
        "alpha",
        Some(node_files(&dir, &cluster, &cluster, "alpha")),
        "",
    )
    .expect("alpha");
    let b = start(
        "beta",
        Some(node_files(&dir, &cluster, &cluster, "beta")),
        "",
    )
    .expect("beta");
    let peer = a
        .connect(b.local_addr().expect("addr"))
        .await
        .expect("connects");
    assert_eq!(peer.node, "beta");
    assert!(
        eventually(Duration::from_secs(5), || b
            .peers()
            .iter()
            .any(|p| p.node == "alpha" && p.state == PeerState::Up))
        .await
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_not_signed_by_the_cluster_ca_is_refused_with_the_cause_on_both_sides() {
    let dir = scratch();
    let cluster = ca("cluster");
    let other = ca("someone else");
    let b = start(
        "beta",
        Some(node_files(&dir, &cluster, &cluster, "beta")),
        "",
    )
    .expect("beta");
    // The intruder trusts the cluster CA (so it accepts beta) but its own certificate comes from
    // another CA: beta must refuse it.
    let intruder = start(
        "intruder",
        Some(node_files(&dir, &cluster, &other, "intruder")),
        "",
    )
    .expect("starts");
    let cause = refused(&intruder, &b).await;
    assert!(
        cause.contains("certificate") || cause.contains("unknown_ca"),
        "{cause}"
    );
    assert!(
        records_tls_refusal(&b, &["UnknownIssuer", "certificate"]).await,
        "beta records why: {:?}",
        b.refusals()
    );
    assert!(
        b.peers().is_empty() && intruder.peers().is_empty(),
        "nobody was admitted"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_trust_the_cluster_ca_refuses_to_join_it() {
    let dir = scratch();
    let cluster = ca("cluster");
    let other = ca("someone else");
    let b = start(
        "beta",
        Some(node_files(&dir, &cluster, &cluster, "beta")),
        "",
    )
    .expect("beta");
    // A node of another cluster dials beta: it does not trust beta's certificate.
    let stranger = start(
        "stranger",
        Some(node_files(&dir, &other, &other, "stranger")),
        "",
    )
    .expect("starts");
    let cause = refused(&stranger, &b).await;
    assert!(cause.contains("UnknownIssuer"), "{cause}");
    assert!(
        records_tls_refusal(&b, &["unknown_ca"]).await,
        "beta records the alert: {:?}",
        b.refusals()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_development_node_cannot_join_a_mutual_tls_cluster() {
    let dir = scratch();
    let cluster = ca("cluster");
    let b = start(
        "beta",
        Some(node_files(&dir, &cluster, &cluster, "beta")),
        "",
    )
    .expect("beta");
    let dev = start("dev", None, "some secret").expect("starts");
    let _cause = refused(&dev, &b).await;
    assert!(b.peers().is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn missing_or_empty_certificate_files_are_clear_errors() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = scratch();
        let files = ClusterTls {
            ca_cert: dir.join("nope.pem"),
            cert_chain: dir.join("nope.pem"),
            private_key: dir.join("nope.key"),
        };
        match start("alpha", Some(files), "") {
            Err(NodeError::Tls(why)) => assert!(why.contains("nope.pem"), "{why}"),
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("started without certificates"),
        }
        std::fs::write(dir.join("empty.pem"), "").expect("write");
        let files = ClusterTls {
            ca_cert: dir.join("empty.pem"),
            cert_chain: dir.join("empty.pem"),
            private_key: dir.join("empty.pem"),
        };
        match start("alpha", Some(files), "") {
            Err(NodeError::Tls(why)) => assert!(why.contains("no CA certificate"), "{why}"),
            Err(other) => panic!("unexpected error: {other}"),
            Ok(_) => panic!("started without certificates"),
        }
        let _ = std::fs::remove_dir_all(dir);
    });
}
