/// Why a provider could not do what was asked. Every message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// No capacity in any instance type, subnet and market tried.
    #[error(
        "no capacity for the runner in any combination tried ({}); add instance types or \
         subnets (other availability zones) to the pool, or allow on-demand; the launch may be \
         retried later",
        tried.join("; ")
    )]
    Capacity { tried: Vec<String> },

    /// The pool's configuration (or the account) is wrong; retrying will not help.
    #[error("the pool configuration is not usable: {reason}; fix the pool's provider settings")]
    Config { reason: String },

    /// The host API asked us to slow down.
    #[error("{service} is throttling requests ({reason}); retry with backoff")]
    Throttled { service: String, reason: String },

    /// The host API could not be reached or failed on its side.
    #[error("{service} is unavailable ({reason}); retry later")]
    Unavailable { service: String, reason: String },

    /// Anything else.
    #[error("{reason}")]
    Other { reason: String },
}

impl ProviderError {
    /// Whether the same call may succeed if made again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            ProviderError::Capacity { .. }
            | ProviderError::Throttled { .. }
            | ProviderError::Unavailable { .. } => true,
            ProviderError::Config { .. } | ProviderError::Other { .. } => false,
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> ProviderError {
        ProviderError::Config {
            reason: reason.into(),
        }
    }

    pub(crate) fn other(reason: impl Into<String>) -> ProviderError {
        ProviderError::Other {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_errors_are_the_transient_ones() {
        assert!(
            ProviderError::Capacity {
                tried: vec!["a".into()]
            }
            .is_retryable()
        );
        assert!(
            ProviderError::Throttled {
                service: "EC2".into(),
                reason: "RequestLimitExceeded".into()
            }
            .is_retryable()
        );
        assert!(!ProviderError::config("no AMI").is_retryable());
        assert!(!ProviderError::other("boom").is_retryable());
    }

    #[test]
    fn capacity_message_lists_what_was_tried_and_what_to_do() {
        let message = ProviderError::Capacity {
            tried: vec![
                "m7g.large in subnet-a (spot): InsufficientInstanceCapacity".into(),
                "m7g.large in subnet-a (on-demand): InsufficientInstanceCapacity".into(),
            ],
        }
        .to_string();
        assert!(
            message.contains("m7g.large in subnet-a (spot)"),
            "{message}"
        );
        assert!(
            message.contains("add instance types or subnets"),
            "{message}"
        );
    }
}
