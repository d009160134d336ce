//! GitHub's two kinds of credentials: an App's RS256 JWT (for `/app/...` and installation
//! look-ups) and a token (installation token or PAT) for everything else.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::AppConfig;

/// How a request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <jwt>` whose shape is a JWT.
    Jwt(String),
    /// `Authorization: Bearer <token>` or `Authorization: token <token>`.
    Token(String),
}

/// Reads the `Authorization` header. `None` when it is missing or not a bearer/token scheme.
pub fn credential(header: Option<&str>) -> Option<Credential> {
    let header = header?.trim();
    let (scheme, value) = header.split_once(' ')?;
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        if value.split('.').count() == 3 {
            Some(Credential::Jwt(value.to_string()))
        } else {
            Some(Credential::Token(value.to_string()))
        }
    } else if scheme.eq_ignore_ascii_case("token") {
        Some(Credential::Token(value.to_string()))
    } else {
        None
    }
}

/// GitHub refuses App JWTs that live longer than ten minutes (a minute of clock drift allowed).
const MAX_JWT_LIFETIME_SECS: i64 = 11 * 60;

/// Checks an App JWT as GitHub does: RS256, `iss` naming the app, `exp` in the future and not
/// too far out, and, when the app's public key is configured, a valid signature.
/// The error is the message GitHub would answer with.
pub fn check_app_jwt(jwt: &str, app: &AppConfig, now: DateTime<Utc>) -> Result<(), String> {
    let undecodable = || "A JSON web token could not be decoded".to_string();
    let mut parts = jwt.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(undecodable());
    };
    let decode = |part: &str| -> Result<Value, String> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| undecodable())?;
        serde_json::from_slice(&bytes).map_err(|_| undecodable())
    };
    let header = decode(header)?;
    let claims = decode(claims)?;
    if signature.is_empty() {
        return Err(undecodable());
    }
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err("'alg' must be RS256".to_string());
    }
    let issuer = match claims.get("iss") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("'Issuer' claim ('iss') must be a String or Integer".to_string()),
    };
    let issuer_ok = issuer == app.app_id.to_string() || app.client_id.as_deref() == Some(&issuer);
    if !issuer_ok {
        return Err(format!(
            "'Issuer' claim ('iss') {issuer} does not name this app (app id {})",
            app.app_id
        ));
    }
    let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
        return Err("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires".to_string());
    };
    let now_secs = now.timestamp();
    if exp <= now_secs {
        return Err("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires".to_string());
    }
    if exp - now_secs > MAX_JWT_LIFETIME_SECS {
        return Err("'Expiration time' claim ('exp') is too far in the future".to_string());
    }
    if let Some(iat) = claims.get("iat").and_then(Value::as_i64)
        && iat > now_secs + 60
    {
        return Err("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued".to_string());
    }
    if let Some(pem) = &app.public_key_pem {
        verify_signature(jwt, pem)?;
    }
    Ok(())
}

fn verify_signature(jwt: &str, pem: &str) -> Result<(), String> {
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|error| {
        format!("the emulator's configured app public key is unusable: {error}")
    })?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // Time claims were checked against the emulator's clock already.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map(|_| ())
        .map_err(|_| "A JSON web token could not be decoded".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(value: Value) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&value).unwrap())
    }

    fn jwt(header: Value, claims: Value) -> String {
        format!("{}.{}.c2lnbmF0dXJl", segment(header), segment(claims))
    }

    #[test]
    fn reads_both_authorization_schemes() {
        assert_eq!(
            credential(Some("token abc")),
            Some(Credential::Token("abc".into()))
        );
        assert_eq!(
            credential(Some("Bearer abc")),
            Some(Credential::Token("abc".into()))
        );
        assert_eq!(
            credential(Some("Bearer a.b.c")),
            Some(Credential::Jwt("a.b.c".into()))
        );
        assert_eq!(credential(Some("Basic abc")), None);
        assert_eq!(credential(Some("Bearer ")), None);
        assert_eq!(credential(None), None);
    }

    #[test]
    fn a_well_formed_jwt_passes_and_malformed_ones_are_refused() {
        let app = AppConfig::default();
        let now = Utc::now();
        let t = now.timestamp();
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        let good = jwt(
            header.clone(),
            serde_json::json!({"iss": "1", "iat": t - 60, "exp": t + 540}),
        );
        assert_eq!(check_app_jwt(&good, &app, now), Ok(()));
        let numeric_iss = jwt(
            header.clone(),
            serde_json::json!({"iss": 1, "iat": t, "exp": t + 60}),
        );
        assert_eq!(check_app_jwt(&numeric_iss, &app, now), Ok(()));

        let refused = [
            "not-a-jwt".to_string(),
            "a.b.c".to_string(),
            jwt(
                serde_json::json!({"alg": "HS256"}),
                serde_json::json!({"iss": "1", "exp": t + 60}),
            ),
            jwt(header.clone(), serde_json::json!({"exp": t + 60})),
            jwt(
                header.clone(),
                serde_json::json!({"iss": "2", "exp": t + 60}),
            ),
            jwt(
                header.clone(),
                serde_json::json!({"iss": "1", "exp": t - 1}),
            ),
            jwt(
                header.clone(),
                serde_json::json!({"iss": "1", "exp": t + 3600}),
            ),
            jwt(header.clone(), serde_json::json!({"iss": "1"})),
            format!(
                "{}.{}.",
                segment(header.clone()),
                segment(serde_json::json!({"iss": "1", "exp": t + 60}))
            ),
        ];
        for token in refused {
            assert!(
                check_app_jwt(&token, &app, now).is_err(),
                "accepted {token}"
            );
        }
    }
}
