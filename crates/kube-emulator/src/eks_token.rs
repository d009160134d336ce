//! EKS bearer tokens: `k8s-aws-v1.` + base64url (no padding) of a presigned STS
//! `GetCallerIdentity` URL, as `aws eks get-token` and the AWS SDKs make them.
//!
//! EKS checks such a token by calling the URL (STS verifies the signature and answers who
//! signed it). Offline, the emulator checks everything but the signature: the prefix, the URL's
//! shape and parameters, that the `x-k8s-aws-id` header (the cluster name) is signed, and the
//! 15 minutes the token is valid from `X-Amz-Date`. The cluster name itself travels only inside
//! the signature, so it cannot be compared either.

use base64::Engine;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};

pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";

/// How long EKS accepts a token after its `X-Amz-Date`.
pub const TOKEN_LIFETIME: Duration = Duration::minutes(15);

/// How far in the future `X-Amz-Date` may be (clock skew).
const MAX_SKEW: Duration = Duration::minutes(5);

/// Query parameters a presigned `GetCallerIdentity` URL may carry (as aws-iam-authenticator).
const ALLOWED_PARAMETERS: &[&str] = &[
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
    "x-amz-user-agent",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EksTokenError {
    #[error("token does not start with {TOKEN_PREFIX}")]
    Prefix,
    #[error("token is not base64url: {0}")]
    Encoding(String),
    #[error("token is not a presigned STS URL: {0}")]
    Url(String),
    #[error("missing or invalid query parameter {0}")]
    Parameter(&'static str),
    #[error("x-k8s-aws-id is not among the signed headers")]
    ClusterIdNotSigned,
    #[error("token expired at {0}")]
    Expired(DateTime<Utc>),
    #[error("X-Amz-Date {0} is in the future")]
    FromTheFuture(DateTime<Utc>),
}

/// What a well-formed token says (its signature unchecked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksToken {
    /// The presigned URL.
    pub url: String,
    /// The STS endpoint's region (`us-east-1` for the global endpoint).
    pub region: String,
    pub access_key_id: String,
    pub signed_at: DateTime<Utc>,
    pub expires_seconds: u64,
    pub signed_headers: Vec<String>,
}

impl EksToken {
    /// When EKS stops accepting the token.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.signed_at + TOKEN_LIFETIME
    }
}

/// Parses a token and checks its shape (not its age).
pub fn parse_eks_token(token: &str) -> Result<EksToken, EksTokenError> {
    let encoded = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(EksTokenError::Prefix)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|e| EksTokenError::Encoding(e.to_string()))?;
    let url = String::from_utf8(bytes).map_err(|_| EksTokenError::Url("not UTF-8".into()))?;
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| EksTokenError::Url("not https".into()))?;
    let (host, path_query) = rest
        .split_once('/')
        .ok_or_else(|| EksTokenError::Url("no path".into()))?;
    let host_region = sts_host_region(host)
        .ok_or_else(|| EksTokenError::Url(format!("{host} is not an STS endpoint")))?;
    let query = path_query
        .strip_prefix('?')
        .ok_or_else(|| EksTokenError::Url("path must be / with a query".into()))?;

    let mut parameters: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key).ok_or(EksTokenError::Url("bad escape".into()))?;
        let value = percent_decode(value).ok_or(EksTokenError::Url("bad escape".into()))?;
        let lower = key.to_ascii_lowercase();
        if !ALLOWED_PARAMETERS.contains(&lower.as_str()) {
            return Err(EksTokenError::Url(format!("unexpected parameter {key}")));
        }
        if parameters.iter().any(|(k, _)| *k == lower) {
            return Err(EksTokenError::Url(format!("repeated parameter {key}")));
        }
        parameters.push((lower, value));
    }
    let get = |name: &'static str| {
        parameters
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
            .ok_or(EksTokenError::Parameter(name))
    };
    if get("action")? != "GetCallerIdentity" {
        return Err(EksTokenError::Parameter("Action"));
    }
    if get("version")? != "2011-06-15" {
        return Err(EksTokenError::Parameter("Version"));
    }
    if get("x-amz-algorithm")? != "AWS4-HMAC-SHA256" {
        return Err(EksTokenError::Parameter("X-Amz-Algorithm"));
    }
    let signed_at = NaiveDateTime::parse_from_str(get("x-amz-date")?, "%Y%m%dT%H%M%SZ")
        .map_err(|_| EksTokenError::Parameter("X-Amz-Date"))?
        .and_utc();
    let expires_seconds: u64 = get("x-amz-expires")?
        .parse()
        .map_err(|_| EksTokenError::Parameter("X-Amz-Expires"))?;
    // AKID/yyyymmdd/region/sts/aws4_request
    let credential: Vec<&str> = get("x-amz-credential")?.split('/').collect();
    let [access_key_id, day, region, "sts", "aws4_request"] = credential[..] else {
        return Err(EksTokenError::Parameter("X-Amz-Credential"));
    };
    if access_key_id.is_empty()
        || day != signed_at.format("%Y%m%d").to_string()
        || host_region.as_deref().is_some_and(|r| r != region)
    {
        return Err(EksTokenError::Parameter("X-Amz-Credential"));
    }
    let signed_headers: Vec<String> = get("x-amz-signedheaders")?
        .split(';')
        .map(str::to_string)
        .collect();
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(EksTokenError::Parameter("X-Amz-SignedHeaders"));
    }
    if !signed_headers.iter().any(|h| h == "x-k8s-aws-id") {
        return Err(EksTokenError::ClusterIdNotSigned);
    }
    let signature = get("x-amz-signature")?;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(EksTokenError::Parameter("X-Amz-Signature"));
    }
    Ok(EksToken {
        region: region.to_string(),
        access_key_id: access_key_id.to_string(),
        signed_at,
        expires_seconds,
        signed_headers,
        url,
    })
}

/// Parses a token and checks that EKS would still accept it at `now`.
pub fn check_eks_token(token: &str, now: DateTime<Utc>) -> Result<EksToken, EksTokenError> {
    let parsed = parse_eks_token(token)?;
    if parsed.signed_at > now + MAX_SKEW {
        return Err(EksTokenError::FromTheFuture(parsed.signed_at));
    }
    if now > parsed.expires_at() {
        return Err(EksTokenError::Expired(parsed.expires_at()));
    }
    Ok(parsed)
}

/// `Some(None)` for the global endpoint, `Some(Some(region))` for a regional one.
fn sts_host_region(host: &str) -> Option<Option<String>> {
    let host = host.to_ascii_lowercase();
    if host == "sts.amazonaws.com" {
        return Some(None);
    }
    let region = host
        .strip_prefix("sts.")?
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_prefix("sts.")?.strip_suffix(".amazonaws.com.cn"))?;
    let ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then(|| Some(region.to_string()))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Makes a token of the right shape (signed with a made-up signature), for tests and demos.
pub fn fake_eks_token(region: &str, signed_at: DateTime<Utc>) -> String {
    let url = format!(
        "https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15\
         &X-Amz-Algorithm=AWS4-HMAC-SHA256\
         &X-Amz-Credential=AKIAEMULATOR%2F{day}%2F{region}%2Fsts%2Faws4_request\
         &X-Amz-Date={date}&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id\
         &X-Amz-Signature={signature}",
        day = signed_at.format("%Y%m%d"),
        date = signed_at.format("%Y%m%dT%H%M%SZ"),
        signature = "0".repeat(64),
    );
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn accepts_a_fresh_token_and_refuses_an_old_one() {
        let signed = at("2026-12-05T10:00:00Z");
        let token = fake_eks_token("eu-west-1", signed);
        let parsed = check_eks_token(&token, at("2026-12-05T10:14:59Z")).unwrap();
        assert_eq!(parsed.region, "eu-west-1");
        assert_eq!(parsed.access_key_id, "AKIAEMULATOR");
        assert!(matches!(
            check_eks_token(&token, at("2026-12-05T10:15:01Z")),
            Err(EksTokenError::Expired(_))
        ));
        assert!(matches!(
            check_eks_token(&token, at("2026-12-05T09:50:00Z")),
            Err(EksTokenError::FromTheFuture(_))
        ));
    }

    #[test]
    fn refuses_misshapen_tokens() {
        let signed = at("2026-12-05T10:00:00Z");
        let good = fake_eks_token("us-east-1", signed);
        assert_eq!(parse_eks_token("Bearer x"), Err(EksTokenError::Prefix));
        let url = |u: &str| {
            format!(
                "{TOKEN_PREFIX}{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(u)
            )
        };
        let decoded = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&good[TOKEN_PREFIX.len()..])
                .unwrap(),
        )
        .unwrap();
        let unsigned_id = decoded.replace("host%3Bx-k8s-aws-id", "host");
        assert_eq!(
            parse_eks_token(&url(&unsigned_id)),
            Err(EksTokenError::ClusterIdNotSigned)
        );
        let other_host = decoded.replace("sts.us-east-1.amazonaws.com", "evil.example.com");
        assert!(matches!(
            parse_eks_token(&url(&other_host)),
            Err(EksTokenError::Url(_))
        ));
        let wrong_region = decoded.replace("%2Fus-east-1%2F", "%2Feu-west-1%2F");
        assert_eq!(
            parse_eks_token(&url(&wrong_region)),
            Err(EksTokenError::Parameter("X-Amz-Credential"))
        );
        let wrong_action = decoded.replace("GetCallerIdentity", "AssumeRole");
        assert_eq!(
            parse_eks_token(&url(&wrong_action)),
            Err(EksTokenError::Parameter("Action"))
        );
    }
}
