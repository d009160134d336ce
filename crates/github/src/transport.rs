//! How requests reach GitHub: an [`octocrab::Octocrab`] over a hyper client whose TLS trusts the
//! system's roots plus an optional extra CA bundle (a GitHub Enterprise Server behind an
//! internal CA).
//!
//! octocrab carries each request (its base-URI layer puts GHES's `/api/v3` in front of every
//! path); runway builds the requests itself and reads the raw answers, so the status, the
//! `ETag` and the rate-limit headers stay visible to runway's retry, rate-limit and
//! conditional-request logic, whose waits run on runway's clock.

use std::error::Error as StdError;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::{AuthState, OctoBody, Octocrab, OctocrabBuilder};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tracing::{Instrument, debug, warn};

use crate::error::GitHubError;

/// One request's own bound, unless the options say otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection (TCP and TLS) may take, unless the options say otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a [`crate::RestGitHub`] connects.
#[derive(Clone)]
pub struct RestGitHubOptions {
    /// PEM certificates (one or more CA certificates) trusted besides the system's roots: the
    /// CA of a GitHub Enterprise Server whose certificate an internal CA issued.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// One request's own bound (its retries are bounded by the retry policy and the call's
    /// deadline); `None`: only the call's deadline bounds it.
    pub request_timeout: Option<Duration>,
    /// How long connecting may take; `None`: no bound of its own.
    pub connect_timeout: Option<Duration>,
    /// Requests go to this service in this process instead of over a socket (a GitHub
    /// emulator run on virtual time, where a socket's wait would let the clock jump).
    pub in_process: Option<InProcess>,
}

/// What an [`InProcess`] service answers: the response with its whole body.
pub type InProcessAnswer =
    std::pin::Pin<Box<dyn std::future::Future<Output = http::Response<Bytes>> + Send>>;

/// A GitHub API served in this process: takes a request whose URI is the full URL (base URL
/// and path) and its whole body, and answers.
#[derive(Clone)]
pub struct InProcess(Arc<dyn Fn(Request<Bytes>) -> InProcessAnswer + Send + Sync>);

impl InProcess {
    pub fn new(serve: impl Fn(Request<Bytes>) -> InProcessAnswer + Send + Sync + 'static) -> Self {
        InProcess(Arc::new(serve))
    }
}

impl fmt::Debug for InProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InProcess")
    }
}

impl Default for RestGitHubOptions {
    fn default() -> Self {
        RestGitHubOptions {
            extra_ca_pem: None,
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            in_process: None,
        }
    }
}

impl RestGitHubOptions {
    /// Trusts the CA certificates in `pem` besides the system's roots.
    pub fn with_extra_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_ca_pem = Some(pem.into());
        self
    }

    /// Trusts the CA certificates in the PEM file at `path` besides the system's roots.
    pub fn with_extra_ca_file(self, path: &Path) -> Result<Self, GitHubError> {
        let pem = std::fs::read(path).map_err(|err| GitHubError::Config {
            message: format!(
                "could not read the extra CA bundle {}: {err}",
                path.display()
            ),
        })?;
        Ok(self.with_extra_ca_pem(pem))
    }
}

impl fmt::Debug for RestGitHubOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestGitHubOptions")
            .field(
                "extra_ca_pem",
                &self
                    .extra_ca_pem
                    .as_ref()
                    .map(|pem| format!("{} bytes", pem.len())),
            )
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("in_process", &self.in_process.is_some())
            .finish()
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, OctoBody>;

/// A raw answer: status, headers and the whole body.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The octocrab client of one base URL, shared by every handle of a [`crate::RestGitHub`].
pub(crate) struct Transport {
    base_uri: Uri,
    http: HttpClient,
    request_timeout: Option<Duration>,
    in_process: Option<InProcess>,
    /// Built on first use: octocrab's request buffer spawns its worker on the running tokio
    /// runtime, and a client may be built before there is one.
    octocrab: OnceLock<Octocrab>,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("base_uri", &self.base_uri)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub fn new(base_url: &str, options: &RestGitHubOptions) -> Result<Transport, GitHubError> {
        let base_uri: Uri = base_url.parse().map_err(|err| GitHubError::Config {
            message: format!("the GitHub API URL {base_url:?} is not a URL: {err}"),
        })?;
        let tls = tls_config(options.extra_ca_pem.as_deref())?;
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(options.connect_timeout);
        tcp.set_nodelay(true);
        // http:// stays allowed for a local emulator; GitHub itself is always https://.
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        // No pool timer: idle connections are dropped when found stale, and the only timers
        // a client starts are its request's own.
        let http = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Transport {
            base_uri,
            http,
            request_timeout: options.request_timeout,
            in_process: options.in_process.clone(),
            octocrab: OnceLock::new(),
        })
    }

    fn octocrab(&self) -> &Octocrab {
        self.octocrab.get_or_init(|| {
            let built = OctocrabBuilder::new_empty()
                .with_service(self.http.clone())
                .with_layer(&BaseUriLayer::new(self.base_uri.clone()))
                // Authorization is runway's: App JWTs and installation tokens on its clock.
                .with_auth(AuthState::None)
                .build();
            match built {
                Ok(octocrab) => octocrab,
                Err(never) => match never {},
            }
        })
    }

    /// Sends `request` (a path and query under the base URL) and reads the whole answer,
    /// within the transport's request timeout and `bound`, whichever is shorter.
    pub async fn send(
        &self,
        request: Request<OctoBody>,
        bound: Option<Duration>,
    ) -> Result<Answer, GitHubError> {
        // The call as other systems describe theirs (OpenTelemetry's RPC and HTTP fields):
        // tracing turns it into an X-Ray subsegment on AWS.
        let call = tracing::debug_span!(
            "github_request",
            "rpc.system" = "http",
            "rpc.service" = "GitHub",
            "http.request.method" = %request.method(),
            "url.path" = request.uri().path(),
            "http.response.status_code" = tracing::field::Empty,
            "error.message" = tracing::field::Empty,
        );
        let answer = self.exchange(request, bound).instrument(call.clone()).await;
        match &answer {
            Ok(answer) => call.record("http.response.status_code", answer.status.as_u16()),
            Err(error) => call.record("error.message", error.to_string()),
        };
        answer
    }

    async fn exchange(
        &self,
        request: Request<OctoBody>,
        bound: Option<Duration>,
    ) -> Result<Answer, GitHubError> {
        if let Some(service) = &self.in_process {
            return self.exchange_in_process(service, request).await;
        }
        let exchange = async {
            let response = self
                .octocrab()
                .execute(request)
                .await
                .map_err(|err| transport_error(&err))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|err| transport_error(&err))?
                .to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let limit = match (self.request_timeout, bound) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match limit {
            None => exchange.await,
            Some(limit) => tokio::time::timeout(limit, exchange)
                .await
                .unwrap_or_else(|_| {
                    Err(GitHubError::Transport {
                        message: format!("no answer within {limit:?} (timed out)"),
                    })
                }),
        }
    }
}

impl Transport {
    /// Sends `request` to the in-process service: no socket, no timer of its own.
    async fn exchange_in_process(
        &self,
        service: &InProcess,
        request: Request<OctoBody>,
    ) -> Result<Answer, GitHubError> {
        let (mut parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|err| transport_error(&err))?
            .to_bytes();
        let base = self.base_uri.to_string();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let url = format!("{}{}", base.trim_end_matches('/'), path);
        parts.uri = url.parse().map_err(|err| GitHubError::Transport {
            message: format!("cannot make a URL of {url:?}: {err}"),
        })?;
        let response = (service.0)(Request::from_parts(parts, body)).await;
        let (parts, body) = response.into_parts();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// The system's root certificates, read once per process.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            debug!(%error, "a system root certificate could not be read");
        }
        if found.certs.is_empty() {
            warn!(
                "no system root certificates found; only an extra CA bundle is trusted (install the ca-certificates package, or set SSL_CERT_FILE)"
            );
        }
        found.certs
    })
}

fn tls_config(extra_ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, GitHubError> {
    let mut roots = RootCertStore::empty();
    let (_, unusable) = roots.add_parsable_certificates(system_roots().iter().cloned());
    if unusable > 0 {
        debug!(unusable, "system root certificates skipped");
    }
    if let Some(pem) = extra_ca_pem {
        let certificates = extra_ca_certificates(pem)?;
        let count = certificates.len();
        for certificate in certificates {
            roots.add(certificate).map_err(|err| GitHubError::Config {
                message: format!(
                    "a certificate in the extra CA bundle cannot be a trust anchor: {err}"
                ),
            })?;
        }
        debug!(count, "extra CA certificates trusted");
    }
    // ring, named rather than taken from the process default: another crate of the process
    // may have brought a second provider, and rustls refuses to guess between two.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| GitHubError::Config {
            message: format!("could not set up TLS: {err}"),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The certificates of a PEM bundle; a bundle without any, or with a broken one, is refused.
fn extra_ca_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, GitHubError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| GitHubError::Config {
            message: format!("the extra CA bundle is not valid PEM ({err}); give the CA certificates as PEM (-----BEGIN CERTIFICATE-----)"),
        })?;
    if certificates.is_empty() {
        return Err(GitHubError::Config {
            message: "the extra CA bundle holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                .to_owned(),
        });
    }
    Ok(certificates)
}

/// A transport failure, its causes spelled out; a refused server certificate says how to
/// trust an internal CA.
fn transport_error(err: &(dyn StdError + 'static)) -> GitHubError {
    let mut message = err.to_string();
    let mut certificate = false;
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = source {
        let text = current.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        certificate |= is_certificate_error(current);
        source = current.source();
    }
    if certificate {
        message.push_str(
            "; the server's certificate is not trusted: if GitHub Enterprise Server uses a certificate from an internal CA, give that CA's PEM bundle as the client's extra CA (RestGitHubOptions::extra_ca_pem)",
        );
    }
    GitHubError::Transport { message }
}

fn is_certificate_error(err: &(dyn StdError + 'static)) -> bool {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return matches!(
            tls,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        );
    }
    // tokio-rustls hands rustls' error over inside an io::Error (which may be wrapped again),
    // and an io::Error's `source` skips the error it holds.
    if let Some(inner) = err
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        return is_certificate_error(inner);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_a_config_error() {
        for pem in [
            &b""[..],
            b"not pem at all",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let err = tls_config(Some(pem)).unwrap_err();
            assert!(
                matches!(&err, GitHubError::Config { message } if message.contains("extra CA bundle")),
                "{err:?}"
            );
        }
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            tls_config(Some(broken)),
            Err(GitHubError::Config { .. })
        ));
    }

    #[test]
    fn the_system_roots_alone_make_a_configuration() {
        tls_config(None).unwrap();
    }
}
