//! TLS: a GitHub Enterprise Server on 127.0.0.1 whose certificate a CA of its own issued is
//! reached once that CA is given as the client's extra CA bundle, and refused without it.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use runway_clock::SystemClock;
use runway_github::{
    Credentials, GitHub, GitHubError, RestGitHub, RestGitHubOptions, RetryPolicy, Secret,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A fresh CA (its PEM) and a certificate it issued for 127.0.0.1 and localhost.
struct Pki {
    ca_pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "runway test internal CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);

    let mut server =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "ghes.internal");
    let server_key = KeyPair::generate().unwrap();
    let server_cert = server.signed_by(&server_key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        server_chain: vec![server_cert.der().clone()],
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
    }
}

/// A GHES stand-in: HTTPS on 127.0.0.1, one job under `/api/v3`, the token checked.
async fn ghes(pki: &Pki) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that does not trust the CA ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service_fn(answer))
                    .await;
            });
        }
    });
    address
}

async fn answer(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let authorized = request
        .headers()
        .get("authorization")
        .is_some_and(|value| value == "Bearer ghp_internal");
    let (status, body) = match (request.uri().path(), authorized) {
        (_, false) => (
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials"}),
        ),
        ("/api/v3/repos/octo-org/app/actions/jobs/7", true) => (
            StatusCode::OK,
            json!({"id": 7, "run_id": 70, "run_attempt": 1, "status": "queued",
                   "conclusion": null, "name": "build", "labels": ["self-hosted", "linux"],
                   "runner_id": null, "runner_name": null, "runner_group_id": null}),
        ),
        _ => (StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(response)
}

fn client(api_url: &str, options: RestGitHubOptions) -> Result<RestGitHub, GitHubError> {
    Ok(RestGitHub::with_options(
        api_url,
        Credentials::Token(Secret::new("ghp_internal")),
        SystemClock::shared(),
        options,
    )?
    .with_retry_policy(RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    }))
}

#[tokio::test]
async fn a_ghes_behind_an_internal_ca_is_reached_with_the_extra_ca_bundle() {
    let pki = pki();
    let address = ghes(&pki).await;
    for host in [
        format!("127.0.0.1:{}", address.port()),
        format!("localhost:{}", address.port()),
    ] {
        let api_url = runway_github::enterprise_server_url(&host);
        let github = client(
            &api_url,
            RestGitHubOptions::default().with_extra_ca_pem(pki.ca_pem.clone()),
        )
        .unwrap();
        let job = github.workflow_job("octo-org", "app", 7).await.unwrap();
        assert_eq!((job.id, job.run_id, job.status.as_str()), (7, 70, "queued"));
        let err = github.workflow_job("octo-org", "app", 8).await.unwrap_err();
        assert!(matches!(err, GitHubError::NotFound { .. }), "{err:?}");
    }

    // From a file, as an operator gives it.
    let path = std::env::temp_dir().join(format!("runway-ghes-ca-{}.pem", std::process::id()));
    std::fs::write(&path, &pki.ca_pem).unwrap();
    let options = RestGitHubOptions::default()
        .with_extra_ca_file(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    let github = client(
        &runway_github::enterprise_server_url(&format!("127.0.0.1:{}", address.port())),
        options,
    )
    .unwrap();
    github.workflow_job("octo-org", "app", 7).await.unwrap();
}

#[tokio::test]
async fn without_the_extra_ca_the_certificate_is_refused_with_a_clear_error() {
    let pki = pki();
    let address = ghes(&pki).await;
    let api_url = runway_github::enterprise_server_url(&format!("127.0.0.1:{}", address.port()));
    let github = client(&api_url, RestGitHubOptions::default()).unwrap();
    let err = github.workflow_job("octo-org", "app", 7).await.unwrap_err();
    let GitHubError::Transport { message } = &err else {
        panic!("a transport error, not {err:?}");
    };
    assert!(message.contains("certificate"), "{message}");
    assert!(message.contains("extra CA"), "{message}");
    assert!(err.is_retryable());

    // Another CA's bundle does not help either.
    let other = pki_ca_only();
    let github = client(
        &api_url,
        RestGitHubOptions::default().with_extra_ca_pem(other),
    )
    .unwrap();
    let err = github.workflow_job("octo-org", "app", 7).await.unwrap_err();
    assert!(
        matches!(&err, GitHubError::Transport { message } if message.contains("extra CA")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_bundle_that_is_not_pem_certificates_is_a_config_error() {
    for bundle in [
        b"".to_vec(),
        b"not a certificate".to_vec(),
        KeyPair::generate().unwrap().serialize_pem().into_bytes(),
    ] {
        let err = client(
            "https://ghes.example/api/v3",
            RestGitHubOptions::default().with_extra_ca_pem(bundle),
        )
        .unwrap_err();
        assert!(
            matches!(&err, GitHubError::Config { message } if message.contains("extra CA bundle")),
            "{err:?}"
        );
    }
    let err = RestGitHubOptions::default()
        .with_extra_ca_file(std::path::Path::new("/nonexistent/runway-ca.pem"))
        .unwrap_err();
    assert!(matches!(err, GitHubError::Config { .. }), "{err:?}");
}

/// The PEM of another CA, unrelated to the server's.
fn pki_ca_only() -> String {
    pki().ca_pem
}
