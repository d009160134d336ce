use thiserror::Error;

/// Why a runner log could not be made, found or read.
#[derive(Debug, Error)]
pub enum RunnerLogError {
    /// A CloudWatch Logs or Step Functions call failed.
    #[error("{action}: {message}")]
    Aws {
        action: String,
        message: String,
        /// The service throttled the call: trying again later may work.
        throttled: bool,
    },
    /// What the user asked for does not exist or is not well formed.
    #[error("{0}")]
    NotFound(String),
    /// A file could not be read.
    #[error("{action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    /// An answer was not what the API promises.
    #[error("{0}")]
    Malformed(String),
}

impl RunnerLogError {
    pub(crate) fn aws<E>(
        action: impl Into<String>,
        error: &aws_sdk_cloudwatchlogs::error::SdkError<E>,
    ) -> Self
    where
        E: aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
        let code = error.code().unwrap_or_default().to_string();
        let message = match (error.code(), error.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => aws_sdk_cloudwatchlogs::error::DisplayErrorContext(error).to_string(),
        };
        RunnerLogError::Aws {
            action: action.into(),
            message,
            throttled: matches!(
                code.as_str(),
                "ThrottlingException" | "Throttling" | "ServiceUnavailableException"
            ),
        }
    }

    /// Whether trying again later may work.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RunnerLogError::Aws {
                throttled: true,
                ..
            }
        )
    }
}
