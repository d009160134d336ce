//! Task resources: the registry of handlers and the task tokens of `.waitForTaskToken` tasks.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;
use tokio::sync::{Notify, oneshot};

/// What a task handler receives.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRequest {
    /// The state's `Resource`.
    pub resource: String,
    /// The effective input: the state's Parameters/Arguments, or the `Payload` of a
    /// `lambda:invoke` integration.
    pub input: Value,
    /// The task token of a `.waitForTaskToken` task.
    pub task_token: Option<String>,
    /// The context object (`$$`).
    pub context: Value,
}

/// A task's failure: its error name and cause.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskFailure {
    pub error: String,
    pub cause: String,
}

impl TaskFailure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        TaskFailure {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

pub type TaskFuture = Pin<Box<dyn Future<Output = Result<Value, TaskFailure>> + Send + 'static>>;
type Handler = Arc<dyn Fn(TaskRequest) -> TaskFuture + Send + Sync>;

/// Handlers for task resources, by name. Clones share the same handlers.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    handlers: Arc<RwLock<HashMap<String, Handler>>>,
}

impl std::fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .handlers
            .read()
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("TaskRegistry")
            .field("handlers", &names)
            .finish()
    }
}

impl TaskRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` under `name`: a Lambda function name (for Lambda ARNs and
    /// `lambda:invoke`'s `FunctionName`) or a full resource ARN for other integrations.
    pub fn register<F, Fut>(&self, name: impl Into<String>, handler: F)
    where
        F: Fn(TaskRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskFailure>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |request| Box::pin(handler(request)));
        if let Ok(mut handlers) = self.handlers.write() {
            handlers.insert(name.into(), handler);
        }
    }

    /// Builder form of [`TaskRegistry::register`].
    pub fn with<F, Fut>(self, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(TaskRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, TaskFailure>> + Send + 'static,
    {
        self.register(name, handler);
        self
    }

    pub(crate) fn get(&self, name: &str) -> Option<Handler> {
        self.handlers.read().ok().and_then(|h| h.get(name).cloned())
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .handlers
            .read()
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// The Lambda function name in a function ARN, partial ARN or bare name:
/// `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:qualifier]`, `ACCOUNT:function:NAME`,
/// `NAME[:qualifier]`.
pub fn lambda_function_name(reference: &str) -> &str {
    if let Some(index) = reference.find(":function:") {
        let rest = &reference[index + ":function:".len()..];
        return rest.split(':').next().unwrap_or(rest);
    }
    if reference.starts_with("arn:") {
        return reference;
    }
    reference.split(':').next().unwrap_or(reference)
}

/// How a task token ended.
pub(crate) type TokenOutcome = Result<Value, TaskFailure>;

struct PendingToken {
    execution_arn: String,
    sender: oneshot::Sender<TokenOutcome>,
    heartbeat: Arc<Notify>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token this engine could have issued.
    Invalid,
    /// The task already ended (or never existed).
    DoesNotExist,
    /// The task timed out.
    TimedOut,
}

/// Open task tokens. Clones share the same table.
#[derive(Clone, Default)]
pub struct TaskTokens {
    inner: Arc<Mutex<TokenTable>>,
}

#[derive(Default)]
struct TokenTable {
    pending: HashMap<String, PendingToken>,
    timed_out: std::collections::HashSet<String>,
}

impl std::fmt::Debug for TaskTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskTokens").finish_non_exhaustive()
    }
}

pub(crate) struct TokenWaiter {
    pub token: String,
    pub outcome: oneshot::Receiver<TokenOutcome>,
    pub heartbeat: Arc<Notify>,
}

const TOKEN_PREFIX: &str = "AQ";

impl TaskTokens {
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn issue(&self, execution_arn: &str) -> TokenWaiter {
        let token = format!("{TOKEN_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let (sender, outcome) = oneshot::channel();
        let heartbeat = Arc::new(Notify::new());
        if let Ok(mut table) = self.inner.lock() {
            table.pending.insert(
                token.clone(),
                PendingToken {
                    execution_arn: execution_arn.to_owned(),
                    sender,
                    heartbeat: heartbeat.clone(),
                },
            );
        }
        TokenWaiter {
            token,
            outcome,
            heartbeat,
        }
    }

    fn lookup_error(table: &TokenTable, token: &str) -> TokenError {
        if table.timed_out.contains(token) {
            TokenError::TimedOut
        } else if token.starts_with(TOKEN_PREFIX) && token.len() == TOKEN_PREFIX.len() + 32 {
            TokenError::DoesNotExist
        } else {
            TokenError::Invalid
        }
    }

    /// Ends the task holding `token` with `outcome`.
    pub fn complete(
        &self,
        token: &str,
        outcome: Result<Value, TaskFailure>,
    ) -> Result<(), TokenError> {
        let mut table = self.inner.lock().map_err(|_| TokenError::DoesNotExist)?;
        match table.pending.remove(token) {
            Some(pending) => {
                // The task may have just been stopped; then there is no one left to tell.
                let _ = pending.sender.send(outcome);
                Ok(())
            }
            None => Err(Self::lookup_error(&table, token)),
        }
    }

    /// Resets the heartbeat timer of the task holding `token`.
    pub fn heartbeat(&self, token: &str) -> Result<(), TokenError> {
        let table = self.inner.lock().map_err(|_| TokenError::DoesNotExist)?;
        match table.pending.get(token) {
            Some(pending) => {
                pending.heartbeat.notify_one();
                Ok(())
            }
            None => Err(Self::lookup_error(&table, token)),
        }
    }

    /// Forgets a token whose task ended without it (timeout, stop, failure).
    pub(crate) fn retire(&self, token: &str, timed_out: bool) {
        if let Ok(mut table) = self.inner.lock() {
            table.pending.remove(token);
            if timed_out {
                table.timed_out.insert(token.to_owned());
            }
        }
    }

    /// Forgets every token of an execution (it was stopped).
    pub(crate) fn retire_execution(&self, execution_arn: &str) {
        if let Ok(mut table) = self.inner.lock() {
            table
                .pending
                .retain(|_, p| p.execution_arn != execution_arn);
        }
    }

    /// Tokens currently waiting, for tools and tests.
    pub fn pending(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|t| t.pending.keys().cloned().collect())
            .unwrap_or_default()
    }
}
