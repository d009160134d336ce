use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Everything a store call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "DynamoDB throttled {operation} ({code}): retry with backoff; if it persists, check the \
         table's capacity mode and account limits"
    )]
    Throttled {
        operation: &'static str,
        code: String,
    },
    #[error("could not reach DynamoDB for {operation}: {reason}; check the endpoint and network")]
    Unavailable {
        operation: &'static str,
        reason: String,
    },
    #[error(
        "{operation} kept conflicting with concurrent writers after {attempts} attempts; retry"
    )]
    Contended {
        operation: &'static str,
        attempts: u32,
    },
    #[error(
        "the DynamoDB table {table} does not exist: deploy the SAM template, or create it with \
         runway_store::create_table"
    )]
    TableMissing { table: String },
    #[error("DynamoDB refused {operation}: {code}: {message}")]
    Rejected {
        operation: &'static str,
        code: String,
        message: String,
    },
    #[error("the store holds a malformed item {key}: {reason}; delete it or let it expire")]
    Corrupt { key: String, reason: String },
}

impl StoreError {
    /// True when the same call may succeed if tried again later (throttling, network trouble,
    /// contention). Others need a change first.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Throttled { .. }
                | StoreError::Unavailable { .. }
                | StoreError::Contended { .. }
        )
    }
}

const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];

const TRANSIENT_CODES: &[&str] = &[
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "TransactionInProgressException",
];

/// Maps an SDK error to a [`StoreError`] naming the failed operation.
pub(crate) fn from_sdk<E, R>(
    operation: &'static str,
    table: &str,
    error: SdkError<E, R>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::ServiceError(context) => {
            let service_error = context.err();
            let code = service_error.code().unwrap_or("Unknown").to_string();
            let message = service_error.message().unwrap_or_default().to_string();
            if THROTTLING_CODES.contains(&code.as_str()) {
                StoreError::Throttled { operation, code }
            } else if code == "TransactionConflictException" {
                StoreError::Contended {
                    operation,
                    attempts: 1,
                }
            } else if TRANSIENT_CODES.contains(&code.as_str()) {
                StoreError::Unavailable {
                    operation,
                    reason: format!("{code}: {message}"),
                }
            } else if code == "ResourceNotFoundException" {
                StoreError::TableMissing {
                    table: table.to_string(),
                }
            } else {
                StoreError::Rejected {
                    operation,
                    code,
                    message,
                }
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable {
                operation,
                reason: error_chain(&error),
            }
        }
        _ => StoreError::Rejected {
            operation,
            code: "ClientError".to_string(),
            message: error_chain(&error),
        },
    }
}

/// `error` and every cause under it, `: `-separated on one line: the AWS SDK's own `Display`
/// says only "dispatch failure" and keeps the reason (a refused connection, a timeout) in its
/// sources. The one formatter of error chains in runway (it lives here because the store is
/// what the crates that need it already depend on).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;

    use super::*;

    fn service_error(code: &str) -> SdkError<GetItemError, ()> {
        let metadata = ErrorMetadata::builder()
            .code(code)
            .message("as sent by DynamoDB")
            .build();
        SdkError::service_error(GetItemError::generic(metadata), ())
    }

    #[test]
    fn throttling_is_retryable() {
        for code in [
            "ProvisionedThroughputExceededException",
            "ThrottlingException",
            "RequestLimitExceeded",
        ] {
            let error = from_sdk("read a runner", "t", service_error(code));
            assert!(
                matches!(&error, StoreError::Throttled { code: seen, .. } if seen == code),
                "{error:?}"
            );
            assert!(error.is_retryable(), "{code}");
            assert!(error.to_string().contains("read a runner"), "{error}");
        }
    }

    #[test]
    fn the_modelled_throttling_exception_is_retryable() {
        let modelled = ProvisionedThroughputExceededException::builder()
            .message("slow down")
            .meta(
                ErrorMetadata::builder()
                    .code("ProvisionedThroughputExceededException")
                    .message("slow down")
                    .build(),
            )
            .build();
        let error = SdkError::<_, ()>::service_error(
            TransactWriteItemsError::ProvisionedThroughputExceededException(modelled),
            (),
        );
        let error = from_sdk("acquire a slot", "t", error);
        assert!(matches!(error, StoreError::Throttled { .. }), "{error:?}");
        assert!(error.is_retryable());
    }

    #[test]
    fn transient_failures_are_retryable() {
        for code in ["InternalServerError", "TransactionConflictException"] {
            let error = from_sdk("op", "t", service_error(code));
            assert!(error.is_retryable(), "{code}: {error:?}");
        }
        let timeout = SdkError::<GetItemError, ()>::timeout_error("operation timed out");
        assert!(matches!(
            from_sdk("op", "t", timeout),
            StoreError::Unavailable { .. }
        ));
        let refused = SdkError::<GetItemError, ()>::dispatch_failure(ConnectorError::io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
        ));
        let error = from_sdk("op", "t", refused);
        assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
        assert!(error.is_retryable());
    }

    #[test]
    fn refusals_are_not_retryable() {
        let missing = from_sdk("op", "runway", service_error("ResourceNotFoundException"));
        assert!(matches!(&missing, StoreError::TableMissing { table } if table == "runway"));
        assert!(!missing.is_retryable());
        let invalid = from_sdk("op", "t", service_error("ValidationException"));
        assert!(
            matches!(&invalid, StoreError::Rejected { code, .. } if code == "ValidationException")
        );
        assert!(!invalid.is_retryable());
        let unnamed = SdkError::<GetItemError, ()>::service_error(
            GetItemError::generic(ErrorMetadata::builder().build()),
            (),
        );
        assert!(!from_sdk("op", "t", unnamed).is_retryable());
    }
}
