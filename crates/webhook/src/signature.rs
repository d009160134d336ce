//! `X-Hub-Signature-256` verification.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const SIGNATURE_PREFIX: &str = "sha256=";

/// The webhook secret(s) deliveries are signed with.
///
/// During a rotation GitHub signs with the new secret while some deliveries in flight were
/// signed with the old one, so a second secret may be accepted for a while.
#[derive(Clone)]
pub struct WebhookSecrets {
    // Keyed once; each verification clones the keyed state.
    current: HmacSha256,
    previous: Option<HmacSha256>,
}

impl WebhookSecrets {
    /// Accept deliveries signed with `current` only. Surrounding whitespace is not part of the
    /// secret (see [`WebhookSecrets::from_stored`]).
    pub fn new(current: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        Ok(WebhookSecrets {
            current: keyed(&current.into())?,
            previous: None,
        })
    }

    /// Also accept deliveries signed with `previous` (rotation in progress).
    pub fn with_previous(mut self, previous: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        self.previous = Some(keyed(&previous.into())?);
        Ok(self)
    }

    /// The secrets as kept in a secret store (an SSM parameter or a Secrets Manager secret):
    /// either the secret itself, or, while rotating, a JSON object
    /// `{"current": "NEW", "previous": "OLD"}` (`previous` optional), so both secrets live in
    /// the same store under the same access rules.
    pub fn from_stored(text: &str) -> Result<Self, SecretError> {
        let Some(stored) = rotation_document(text)? else {
            return WebhookSecrets::new(text);
        };
        let secrets = WebhookSecrets::new(stored.current)?;
        match stored
            .previous
            .filter(|previous| !previous.trim().is_empty())
        {
            Some(previous) => secrets.with_previous(previous),
            None => Ok(secrets),
        }
    }

    /// Whether a previous secret is accepted too.
    pub fn is_rotating(&self) -> bool {
        self.previous.is_some()
    }

    /// Checks `signature_header` (the value of `X-Hub-Signature-256`) against `body`.
    ///
    /// The comparison is constant-time (`Mac::verify_slice`).
    pub fn verify(
        &self,
        signature_header: Option<&[u8]>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let header = signature_header.ok_or(SignatureError::Missing)?;
        let hex_digest = header
            .strip_prefix(SIGNATURE_PREFIX.as_bytes())
            .ok_or(SignatureError::Malformed)?;
        let mut expected = [0_u8; 32];
        hex::decode_to_slice(hex_digest, &mut expected).map_err(|_| SignatureError::Malformed)?;
        let keys = std::iter::once(&self.current).chain(self.previous.as_ref());
        for key in keys {
            let mut mac = key.clone();
            mac.update(body);
            if mac.verify_slice(&expected).is_ok() {
                return Ok(());
            }
        }
        Err(SignatureError::Mismatch)
    }

    /// The `X-Hub-Signature-256` value GitHub would send for `body` with the current secret.
    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.current.clone();
        mac.update(body);
        format!(
            "{SIGNATURE_PREFIX}{}",
            hex::encode(mac.finalize().into_bytes())
        )
    }
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSecrets")
            .field("current", &"[redacted]")
            .field("previous", &self.previous.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// The rotation form of a stored secret: a JSON object with a `current` string.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredRotation {
    current: String,
    #[serde(default)]
    previous: Option<String>,
}

/// The rotation document `text` holds, `None` when it is a plain secret. Text that is a JSON
/// object must be a rotation document: taking it for the secret itself would refuse every
/// delivery with no hint why.
fn rotation_document(text: &str) -> Result<Option<StoredRotation>, SecretError> {
    // A generated secret (hex, or any text not starting with `{`) is never taken for JSON.
    if !text.trim_start().starts_with('{') {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text) {
        Err(_) => Ok(None),
        Ok(object) => serde_json::from_value(serde_json::Value::Object(object))
            .map(Some)
            .map_err(|error| SecretError::Rotation(error.to_string())),
    }
}

/// Keys the MAC with `secret` without surrounding whitespace: a secret stored from a file
/// (`aws ssm put-parameter --value file://secret`) or pasted in an editor usually ends with a
/// newline GitHub never signs with, which would otherwise refuse every delivery.
fn keyed(secret: &[u8]) -> Result<HmacSha256, SecretError> {
    let secret = secret.trim_ascii();
    if secret.is_empty() {
        return Err(SecretError::Empty);
    }
    HmacSha256::new_from_slice(secret).map_err(|_| SecretError::Empty)
}

/// The `X-Hub-Signature-256` header value for `body` signed with `secret` (empty for an
/// empty secret, which nothing accepts).
pub fn sign_with(secret: &[u8], body: &[u8]) -> String {
    match keyed(secret) {
        Ok(mac) => WebhookSecrets {
            current: mac,
            previous: None,
        }
        .sign(body),
        Err(_) => String::new(),
    }
}

/// A new random webhook secret: 32 bytes from the OS generator, hex-encoded (64 characters).
pub fn generate_secret() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Why a delivery's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing; configure the webhook secret in GitHub")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not `sha256=<64 hex digits>`")]
    Malformed,
    #[error("the signature does not match; the webhook secret in GitHub differs from runway's")]
    Mismatch,
}

/// A secret that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the webhook secret is empty; set it to the secret configured in GitHub")]
    Empty,
    #[error(
        "the stored webhook secret is a JSON object but not {{\"current\": \"NEW\", \"previous\": \"OLD\"}} ({0}); store the secret itself, or that document while rotating"
    )]
    Rotation(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_documented_example_verifies() {
        // From GitHub's "Validating webhook deliveries" documentation.
        let secrets = WebhookSecrets::new("It's a Secret to Everybody").unwrap();
        let header = b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(secrets.verify(Some(header), b"Hello, World!"), Ok(()));
        assert_eq!(secrets.sign(b"Hello, World!").as_bytes(), header);
    }

    #[test]
    fn rotation_accepts_both_secrets_and_nothing_else() {
        let secrets = WebhookSecrets::new("new")
            .unwrap()
            .with_previous("old")
            .unwrap();
        let body = b"{}";
        assert!(
            secrets
                .verify(Some(sign_with(b"new", body).as_bytes()), body)
                .is_ok()
        );
        assert!(
            secrets
                .verify(Some(sign_with(b"old", body).as_bytes()), body)
                .is_ok()
        );
        assert_eq!(
            secrets.verify(Some(sign_with(b"other", body).as_bytes()), body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn bad_headers_are_refused() {
        let secrets = WebhookSecrets::new("s").unwrap();
        let body = b"x";
        let good = sign_with(b"s", body);
        assert_eq!(secrets.verify(None, body), Err(SignatureError::Missing));
        assert_eq!(
            secrets.verify(Some(b""), body),
            Err(SignatureError::Malformed)
        );
        let sha1 = good.replace("sha256=", "sha1=");
        assert_eq!(
            secrets.verify(Some(sha1.as_bytes()), body),
            Err(SignatureError::Malformed)
        );
        let short = &good[..good.len() - 2];
        assert_eq!(
            secrets.verify(Some(short.as_bytes()), body),
            Err(SignatureError::Malformed)
        );
        let upper = good.to_uppercase().replace("SHA256=", "sha256=");
        // Upper-case hex decodes to the same digest.
        assert!(secrets.verify(Some(upper.as_bytes()), body).is_ok());
        assert_eq!(
            secrets.verify(Some(good.as_bytes()), b"y"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn empty_secrets_are_refused() {
        assert_eq!(WebhookSecrets::new("").unwrap_err(), SecretError::Empty);
        let secrets = WebhookSecrets::new("a").unwrap();
        assert!(secrets.with_previous("").is_err());
    }

    #[test]
    fn surrounding_whitespace_is_not_part_of_the_secret() {
        // GitHub's documented example, with the secret as `--value file://...` stores it.
        let header = b"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        for stored in [
            "It's a Secret to Everybody\n",
            "It's a Secret to Everybody\r\n",
            " It's a Secret to Everybody \t",
        ] {
            let secrets = WebhookSecrets::new(stored).unwrap();
            assert_eq!(
                secrets.verify(Some(header), b"Hello, World!"),
                Ok(()),
                "{stored:?}"
            );
            let stored = WebhookSecrets::from_stored(stored).unwrap();
            assert_eq!(stored.verify(Some(header), b"Hello, World!"), Ok(()));
        }
        assert_eq!(WebhookSecrets::new(" \n").unwrap_err(), SecretError::Empty);
    }

    #[test]
    fn a_stored_rotation_document_accepts_both_secrets() {
        let body = b"{}";
        let stored = "{\"current\": \"new\\n\", \"previous\": \"old\"}\n";
        let secrets = WebhookSecrets::from_stored(stored).unwrap();
        assert!(secrets.is_rotating());
        for secret in [&b"new"[..], b"old"] {
            let header = sign_with(secret, body);
            assert!(secrets.verify(Some(header.as_bytes()), body).is_ok());
        }
        let other = sign_with(b"other", body);
        assert!(secrets.verify(Some(other.as_bytes()), body).is_err());

        // Without a previous secret (or an empty one) only the current one is accepted.
        for stored in [
            r#"{"current": "new"}"#,
            r#"{"current": "new", "previous": ""}"#,
        ] {
            let secrets = WebhookSecrets::from_stored(stored).unwrap();
            assert!(!secrets.is_rotating(), "{stored}");
        }
        assert_eq!(
            WebhookSecrets::from_stored(r#"{"current": " "}"#).unwrap_err(),
            SecretError::Empty
        );
        // A JSON object is a rotation document or an error, never taken for the secret.
        for bad in [r#"{"previous": "old"}"#, r#"{"current": "a", "next": "b"}"#] {
            let error = WebhookSecrets::from_stored(bad).unwrap_err();
            assert!(matches!(error, SecretError::Rotation(_)), "{bad}: {error}");
        }
        // Anything else is the secret itself, braces included.
        let plain = WebhookSecrets::from_stored("{not-json").unwrap();
        let header = sign_with(b"{not-json", body);
        assert!(plain.verify(Some(header.as_bytes()), body).is_ok());
        assert!(!plain.is_rotating());
    }

    #[test]
    fn generated_secrets_are_long_and_distinct() {
        let a = generate_secret();
        let b = generate_secret();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secrets = WebhookSecrets::new("hunter2")
            .unwrap()
            .with_previous("old-one")
            .unwrap();
        let shown = format!("{secrets:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("old-one"));
    }
}
