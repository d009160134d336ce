//! Where a request came in: the stack's public root, from API Gateway's request context
//! (`domainName`, and the stage when it is not `$default`), so no template parameter names
//! the stack's own URL.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// The public root a request came in on (`https://DOMAIN`, or `https://DOMAIN/STAGE`), and
/// the path under it. `None` root: the event carries no domain (a bare test event).
pub fn origin(request: &Request) -> (Option<String>, String) {
    let path = request.raw_http_path().to_owned();
    let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
        return (None, path);
    };
    let Some(domain) = context.domain_name.as_deref().filter(|d| !d.is_empty()) else {
        return (None, path);
    };
    match context.stage.as_deref() {
        Some(stage) if !stage.is_empty() && stage != "$default" => {
            let prefix = format!("/{stage}");
            let under = path
                .strip_prefix(&prefix)
                .filter(|rest| rest.is_empty() || rest.starts_with('/'))
                .map(str::to_owned)
                .unwrap_or(path);
            (Some(format!("https://{domain}{prefix}")), under)
        }
        _ => (Some(format!("https://{domain}")), path),
    }
}

/// The setup page's URL for a request's root.
pub fn setup_url(root: Option<&str>) -> String {
    match root {
        Some(root) => format!("{root}{}", runway_app_setup::SETUP_PATH),
        None => "the stack's SetupUrl output".to_owned(),
    }
}
