//! Which AWS call a request is: its service and action.

use axum::http::HeaderMap;

/// An AWS call as the proxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The SigV4 signing name: `ec2`, `ssm`, `dynamodb`, … (empty when unsigned and
    /// unrecognised).
    pub service: String,
    /// The operation: `RunInstances`, `PutParameter`, … (empty when not found).
    pub action: String,
}

impl Call {
    /// Reads the call from a request's query, headers and body.
    ///
    /// The service comes from the `Authorization` header's credential scope
    /// (`Credential=AKID/20260101/us-east-1/ec2/aws4_request`), or else from the
    /// `X-Amz-Target` prefix; the action from `X-Amz-Target` (`AmazonSSM.PutParameter`) for
    /// the JSON protocols, or the `Action=` field of the query protocols (form body or query
    /// string).
    pub fn identify(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Call {
        let target = headers
            .get("x-amz-target")
            .and_then(|value| value.to_str().ok());
        let service = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(signing_service)
            .or_else(|| target.and_then(target_service))
            .unwrap_or_default();
        let action = target
            .and_then(|target| target.rsplit_once('.').map(|(_, action)| action.to_owned()))
            .or_else(|| std::str::from_utf8(body).ok().and_then(form_action))
            .or_else(|| query.and_then(form_action))
            .unwrap_or_default();
        Call { service, action }
    }
}

/// The service of a SigV4 `Authorization` header's credential scope.
fn signing_service(authorization: &str) -> Option<String> {
    let credential = authorization
        .split([',', ' '])
        .find_map(|part| part.trim().strip_prefix("Credential="))?;
    // AKID/date/region/service/aws4_request
    let mut parts = credential.split('/');
    let service = parts.nth(3)?;
    (!service.is_empty()).then(|| service.to_ascii_lowercase())
}

/// The service of an `X-Amz-Target` prefix, for requests without a signature.
fn target_service(target: &str) -> Option<String> {
    let prefix = target.split('.').next()?;
    let service = match prefix {
        "AmazonSSM" => "ssm",
        p if p.starts_with("DynamoDB") => "dynamodb",
        p if p.starts_with("AWSStepFunctions") => "states",
        p if p.starts_with("secretsmanager") => "secretsmanager",
        _ => return None,
    };
    Some(service.to_owned())
}

/// The `Action` field of a form-encoded text (`Action=RunInstances&Version=…`).
fn form_action(text: &str) -> Option<String> {
    text.split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .map(|value| value.replace('+', " "))
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const EC2_AUTH: &str = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";

    #[test]
    fn an_ec2_query_call_is_named_by_its_scope_and_action_field() {
        let call = Call::identify(
            None,
            &headers(&[("authorization", EC2_AUTH)]),
            b"Action=RunInstances&Version=2016-11-15&MinCount=1",
        );
        assert_eq!(call.service, "ec2");
        assert_eq!(call.action, "RunInstances");
    }

    #[test]
    fn a_json_call_is_named_by_its_target() {
        let call = Call::identify(
            None,
            &headers(&[
                ("authorization", &EC2_AUTH.replace("/ec2/", "/ssm/")),
                ("x-amz-target", "AmazonSSM.PutParameter"),
            ]),
            br#"{"Name":"/runway/jit/x"}"#,
        );
        assert_eq!(call.service, "ssm");
        assert_eq!(call.action, "PutParameter");
    }

    #[test]
    fn an_unsigned_json_call_is_named_by_its_target_alone() {
        let call = Call::identify(
            None,
            &headers(&[("x-amz-target", "DynamoDB_20120810.PutItem")]),
            b"{}",
        );
        assert_eq!(call.service, "dynamodb");
        assert_eq!(call.action, "PutItem");
    }

    #[test]
    fn the_query_string_names_a_get_call() {
        let call = Call::identify(
            Some("Action=DescribeInstances&Version=2016-11-15"),
            &headers(&[("authorization", EC2_AUTH)]),
            b"",
        );
        assert_eq!(call.action, "DescribeInstances");
    }

    #[test]
    fn an_unknown_request_has_empty_names() {
        let call = Call::identify(None, &HeaderMap::new(), b"hello");
        assert_eq!(
            call,
            Call {
                service: String::new(),
                action: String::new()
            }
        );
    }
}
