//! Property test: whatever error GitHub answers with, the client returns the matching typed
//! error and never panics.

mod support;

use proptest::prelude::*;
use runway_clock::VirtualClock;
use runway_github::{Credentials, GitHub, GitHubError, RestGitHub, RetryPolicy, Secret};
use serde_json::json;
use support::{Answer, Loopback};

fn expected(
    status: u16,
    retry_after: Option<u64>,
    remaining_zero: bool,
    message: &str,
) -> GitHubError {
    let rate_limit_status = status == 403 || status == 429;
    if rate_limit_status
        && (retry_after.is_some()
            || remaining_zero
            || status == 429
            || message.contains("rate limit"))
    {
        // Callers only see the variant here; the wait itself is checked elsewhere.
        return GitHubError::RateLimited {
            retry_after: Default::default(),
        };
    }
    match status {
        401 => GitHubError::Unauthorized {
            message: message.into(),
        },
        403 => GitHubError::Forbidden {
            message: message.into(),
        },
        404 => GitHubError::NotFound {
            message: message.into(),
        },
        409 | 422 => GitHubError::Validation {
            status,
            message: message.into(),
        },
        500..=599 => GitHubError::Server { status },
        _ => GitHubError::Unexpected {
            status,
            message: message.into(),
        },
    }
}

fn same_kind(a: &GitHubError, b: &GitHubError) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_error_answer_becomes_the_matching_typed_error(
        status in prop_oneof![Just(401_u16), Just(403), Just(404), Just(409), Just(422), Just(429), 400_u16..600],
        retry_after in proptest::option::of(0_u64..100_000),
        remaining_zero in any::<bool>(),
        message in "[a-zA-Z ]{0,40}",
        body_is_json in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        runtime.block_on(async {
            let clock = VirtualClock::new().shared();
            let server = Loopback::start(clock.clone(), "1").await;
            let github = RestGitHub::with_options(&server.base_url, Credentials::Token(Secret::new("t")), clock.clone(), support::untimed())
                .unwrap()
                .with_retry_policy(RetryPolicy { max_attempts: 1, ..RetryPolicy::default() });
            let body = if body_is_json { json!({"message": message}) } else { json!(message) };
            let mut answer = Answer::json(status, body);
            if let Some(seconds) = retry_after {
                answer = answer.header("retry-after", seconds.to_string());
            }
            if remaining_zero {
                answer = answer.header("x-ratelimit-remaining", "0");
                answer = answer.header("x-ratelimit-reset", (clock.now().timestamp() + 30).to_string());
            }
            server.script([answer]);
            let err = github.workflow_job("o", "r", 1).await.unwrap_err();
            let message_seen = if body_is_json { message.as_str() } else { "no details" };
            let want = expected(status, retry_after, remaining_zero, message_seen);
            prop_assert!(same_kind(&err, &want), "{status}: got {err:?}, want {want:?}");
            if let (GitHubError::RateLimited { retry_after: got }, Some(seconds)) = (&err, retry_after) {
                prop_assert_eq!(got.as_secs(), seconds);
            }
            prop_assert_eq!(server.requests().len(), 1);
            Ok(())
        })?;
    }
}
