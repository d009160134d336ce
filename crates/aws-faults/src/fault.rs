//! The errors the proxy answers with, in each AWS protocol's wire shape.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// How a service spells its errors on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// EC2's query protocol: `<Response><Errors><Error><Code>…</Code><Message>…</Message>
    /// </Error></Errors><RequestID>…</RequestID></Response>`.
    Ec2Xml,
    /// The `awsJson1_0`/`awsJson1_1` protocols (SSM, DynamoDB, Step Functions):
    /// `{"__type": "<code>", "message": "…"}` and the `x-amzn-ErrorType` header.
    AwsJson,
}

/// One error answer: what AWS would say instead of doing the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub shape: ErrorShape,
}

impl Fault {
    pub fn new(
        status: u16,
        code: impl Into<String>,
        message: impl Into<String>,
        shape: ErrorShape,
    ) -> Fault {
        Fault {
            status,
            code: code.into(),
            message: message.into(),
            shape,
        }
    }

    /// EC2 has no capacity of the type asked for (a server error, HTTP 500).
    pub fn insufficient_instance_capacity() -> Fault {
        Fault::new(
            500,
            "InsufficientInstanceCapacity",
            "We currently do not have sufficient capacity in the Availability Zone you requested. \
             Our system will be working on provisioning additional capacity.",
            ErrorShape::Ec2Xml,
        )
    }

    /// EC2 throttles the account's API calls (HTTP 503).
    pub fn ec2_request_limit_exceeded() -> Fault {
        Fault::new(
            503,
            "RequestLimitExceeded",
            "Request limit exceeded.",
            ErrorShape::Ec2Xml,
        )
    }

    /// SSM throttles (a `PutParameter` burst beyond the account's write rate; HTTP 400).
    pub fn ssm_throttling() -> Fault {
        Fault::new(
            400,
            "ThrottlingException",
            "Rate exceeded",
            ErrorShape::AwsJson,
        )
    }

    /// A JSON-protocol service throttles with its own code (`ThrottlingException`,
    /// `ProvisionedThroughputExceededException`, …; HTTP 400).
    pub fn json_throttling(code: impl Into<String>) -> Fault {
        Fault::new(400, code, "Rate exceeded", ErrorShape::AwsJson)
    }

    /// The answer to send, with `request_id` as AWS's request id.
    pub(crate) fn response(&self, request_id: &str) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = match self.shape {
            ErrorShape::Ec2Xml => {
                let body = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
                     <Code>{}</Code><Message>{}</Message></Error></Errors>\
                     <RequestID>{request_id}</RequestID></Response>",
                    xml_escape(&self.code),
                    xml_escape(&self.message)
                );
                let mut response = (status, body).into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/xml;charset=UTF-8"),
                );
                response
            }
            ErrorShape::AwsJson => {
                let body = format!(
                    "{{\"__type\":{},\"message\":{}}}",
                    json_string(&self.code),
                    json_string(&self.message)
                );
                let mut response = (status, body).into_response();
                let headers = response.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-amz-json-1.1"),
                );
                if let Ok(value) = HeaderValue::from_str(&self.code) {
                    headers.insert("x-amzn-errortype", value);
                }
                response
            }
        };
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert("x-amzn-requestid", value);
        }
        response
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn ec2_errors_are_xml_with_code_message_and_request_id() {
        let response = Fault::ec2_request_limit_exceeded().response("req-1");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let text = body(response).await;
        assert!(
            text.contains("<Errors><Error><Code>RequestLimitExceeded</Code><Message>"),
            "{text}"
        );
        assert!(text.contains("<RequestID>req-1</RequestID>"), "{text}");
    }

    #[tokio::test]
    async fn json_errors_carry_the_type_and_escape_the_message() {
        let fault = Fault::new(
            400,
            "ThrottlingException",
            "say \"no\"",
            ErrorShape::AwsJson,
        );
        let response = fault.response("req-2");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "ThrottlingException"
        );
        assert_eq!(
            body(response).await,
            r#"{"__type":"ThrottlingException","message":"say \"no\""}"#
        );
    }
}
