//! The `setup` entry point: API Gateway (HTTP API, payload v2) event in, the setup pages
//! (`runway_app_setup`) on the stack's token and App secrets, HTML out.
//!
//! Environment (see `runway_lambda_support::SetupPageSettings`):
//! - `RUNWAY_SETUP_TOKEN_SECRET`: the one-time setup token's secret;
//! - `RUNWAY_GITHUB_APP_SECRET`: where the App is stored (the other functions read it);
//! - `RUNWAY_STACK`: names the suggested App.
//!
//! The pages' links and the App's webhook and callback URLs are under the root the request
//! came in on ([`crate::origin`]).

use lambda_http::{Body, Error, Request, Response, service_fn};
use runway_app_setup::SetupRequest;
use runway_lambda_support::{SetupPageSettings, SetupPages, load_aws_config};

use crate::origin::origin;

pub async fn run() -> Result<(), Error> {
    let settings = SetupPageSettings::from_env()?;
    let aws = load_aws_config().await;
    let pages = SetupPages::new(settings, &aws);
    lambda_http::run(service_fn(move |request: Request| {
        let pages = pages.clone();
        async move { handle(&pages, request).await }
    }))
    .await
}

pub(crate) async fn handle(pages: &SetupPages, request: Request) -> Result<Response<Body>, Error> {
    let (root, path) = origin(&request);
    let Some(root) = root else {
        return Ok(Response::builder()
            .status(400)
            .header("content-type", "text/plain; charset=utf-8")
            .body(Body::Text(
                "The setup pages are served through the stack's HTTP API.".into(),
            ))?);
    };
    let method = request.method().as_str().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let body = request.body().as_ref().to_vec();
    let answer = pages
        .service(&root)
        .handle(SetupRequest {
            method: &method,
            path: &path,
            query: &query,
            body: &body,
        })
        .await;
    let mut response = Response::builder().status(answer.status);
    for (name, value) in answer.headers() {
        response = response.header(name, value);
    }
    Ok(response.body(Body::Text(answer.body))?)
}
