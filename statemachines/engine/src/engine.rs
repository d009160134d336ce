//! The interpreter: runs a definition's states, records history, applies data flow,
//! retries and catches.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::stream::{FuturesUnordered, StreamExt};
use runway_clock::SharedClock;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::definition::{
    Catcher, Definition, Dynamic, Machine, MapState, Operand, QueryLanguage, Retrier, Rule, State,
    StateKind, Task, WaitFor,
};
use crate::error::{Failure, names, state_error};
use crate::history::{HistoryEvent, details_key, not_truncated};
use crate::intrinsics;
use crate::jsonpath::{self, PathError, Scope};
use crate::query::{self, QueryError, TemplateError};
use crate::tasks::{TaskFailure, TaskRegistry, TaskRequest, TaskTokens, lambda_function_name};

/// A history event of one execution, as broadcast to live views.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionEvent {
    pub execution_arn: String,
    pub event: HistoryEvent,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Everything one execution shares across its branches.
pub(crate) struct Shared {
    pub clock: SharedClock,
    pub tasks: TaskRegistry,
    pub tokens: TaskTokens,
    pub history: Mutex<Vec<HistoryEvent>>,
    pub listener: Option<broadcast::Sender<ExecutionEvent>>,
    pub execution_arn: String,
    pub region: String,
    /// `$$.Execution` and `$$.StateMachine`.
    pub execution_context: Value,
    pub state_machine_context: Value,
}

impl Shared {
    /// Appends an event and returns its id.
    pub fn record(&self, previous: u64, event_type: &str, details: Option<Value>) -> u64 {
        let timestamp = self.clock.now();
        let mut map = Map::new();
        if let (Some(details), Some(key)) = (details, details_key(event_type)) {
            map.insert(key.to_owned(), details);
        }
        let event = {
            let Ok(mut history) = self.history.lock() else {
                return previous;
            };
            let id = history.len() as u64 + 1;
            let event = HistoryEvent {
                timestamp,
                event_type: event_type.to_owned(),
                id,
                previous_event_id: previous,
                details: map,
            };
            history.push(event.clone());
            event
        };
        let id = event.id;
        if let Some(listener) = &self.listener {
            // Nobody listening is fine.
            let _ = listener.send(ExecutionEvent {
                execution_arn: self.execution_arn.clone(),
                event,
            });
        }
        id
    }

    pub fn last_event_id(&self) -> u64 {
        self.history.lock().map(|h| h.len() as u64).unwrap_or(0)
    }
}

/// One strand of events: the main flow or one branch/iteration, each chaining
/// `previousEventId` through its own events.
pub(crate) struct Lane {
    shared: Arc<Shared>,
    previous: u64,
}

impl Lane {
    pub fn new(shared: Arc<Shared>, previous: u64) -> Self {
        Lane { shared, previous }
    }

    pub fn emit(&mut self, event_type: &str, details: Option<Value>) -> u64 {
        self.previous = self.shared.record(self.previous, event_type, details);
        self.previous
    }

    fn fork(&self) -> Lane {
        Lane {
            shared: self.shared.clone(),
            previous: self.previous,
        }
    }
}

/// Where a state goes next.
enum Step {
    /// The next state, this state's output and that output as JSON (the next state's input
    /// text in its `StateEntered` event, so the history renders each payload once).
    Next(String, Value, String),
    End(Value),
}

/// What a state knows of itself while it runs.
struct StateRun<'a> {
    state: &'a State,
    entered_id: u64,
    entered_time: DateTime<Utc>,
    retry_count: u64,
    task_token: Option<String>,
    /// `$$`, built on first use: it holds the execution input, so it is not rebuilt for each
    /// path that reads it. Reset when the retry count or the task token changes.
    context: OnceLock<Value>,
}

impl StateRun<'_> {
    fn runtime(&self, message: impl std::fmt::Display) -> Failure {
        Failure::new(
            names::RUNTIME,
            state_error(&self.state.name, self.entered_id, message),
        )
    }

    fn error(&self, error: &str, message: impl std::fmt::Display) -> Failure {
        Failure::new(
            error,
            state_error(&self.state.name, self.entered_id, message),
        )
    }

    /// A JSONata field whose result has the wrong JSON type: `States.QueryEvaluationError`.
    fn unexpected_type(
        &self,
        template: &Value,
        field: &str,
        expected: &str,
        value: &Value,
    ) -> Failure {
        self.error(
            names::QUERY_EVALUATION_ERROR,
            format!(
                "The JSONata expression '{}' specified for the field '{field}' returned an unexpected result type. Expected '{expected}', but was '{}' for value: {}",
                expression_text(template),
                jsonata_type(value),
                text(value)
            ),
        )
    }

    /// A JSONata field whose result has the right type but a value the field does not take.
    fn invalid_value(
        &self,
        template: &Value,
        field: &str,
        expected: &str,
        value: &Value,
    ) -> Failure {
        self.error(
            names::QUERY_EVALUATION_ERROR,
            format!(
                "The JSONata expression '{}' specified for the field '{field}' returned an invalid value. Expected {expected}, but was: {}",
                expression_text(template),
                text(value)
            ),
        )
    }

    /// A JSONata field's result as a whole number in `min..=max`.
    fn expression_integer(
        &self,
        expression: &str,
        field: &str,
        value: &Value,
        min: i64,
        max: Option<i64>,
    ) -> Result<i64, Failure> {
        let template = Value::String(expression.to_owned());
        let Some(n) = whole_number(value) else {
            return Err(self.unexpected_type(&template, field, "integer", value));
        };
        if n < min || max.is_some_and(|max| n > max) {
            let range = match max {
                Some(max) => format!("an integer from {min} to {max}"),
                None => format!("an integer of at least {min}"),
            };
            return Err(self.invalid_value(&template, field, &range, value));
        }
        Ok(n)
    }
}

pub(crate) fn timestamp_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn text(value: &Value) -> String {
    value.to_string()
}

/// `input_text` is the input as JSON when the previous state already rendered it.
fn entered_details(name: &str, input: &Value, input_text: Option<String>) -> Value {
    let input_text = input_text.unwrap_or_else(|| text(input));
    json!({"name": name, "input": input_text, "inputDetails": not_truncated()})
}

/// AWS's limit on a state's input or output: 256 KiB.
const PAYLOAD_LIMIT_BYTES: usize = 256 * 1024;

/// A JSON value as AWS quotes it in causes: strings bare, everything else as JSON.
fn quoted(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// JSONata's name for a value's type, as AWS quotes it in type errors.
fn jsonata_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The expression of a `{% %}` field, as AWS quotes it in causes; other values as JSON.
fn expression_text(template: &Value) -> String {
    match template {
        Value::String(s) => query::template_expression(s).unwrap_or(s).to_owned(),
        other => text(other),
    }
}

/// A JSONata number that is whole (JSONata numbers are doubles, so `3.0` is `3`).
fn whole_number(value: &Value) -> Option<i64> {
    let Value::Number(n) = value else {
        return None;
    };
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// AWS's limit on Wait seconds and task timeouts.
const MAX_SECONDS: i64 = 99_999_999;

pub(crate) struct Interpreter {
    pub shared: Arc<Shared>,
}

impl Interpreter {
    /// Runs the whole definition; records ExecutionSucceeded/Failed/TimedOut.
    pub async fn run(&self, definition: &Definition, input: Value) -> Result<Value, Failure> {
        let mut lane = Lane::new(self.shared.clone(), self.shared.last_event_id());
        let mut variables = Map::new();
        let machine = &definition.machine;
        let outcome = match machine.timeout_seconds {
            Some(seconds) => {
                let sleep = self.shared.clock.sleep(Duration::from_secs(seconds));
                tokio::select! {
                    outcome = self.run_machine(&mut lane, machine, input, &mut variables) => Some(outcome),
                    _ = sleep => None,
                }
            }
            None => Some(
                self.run_machine(&mut lane, machine, input, &mut variables)
                    .await,
            ),
        };
        let previous = self.shared.last_event_id();
        let mut lane = Lane::new(self.shared.clone(), previous);
        match outcome {
            Some(Ok(output)) => {
                lane.emit(
                    "ExecutionSucceeded",
                    Some(json!({"output": text(&output), "outputDetails": not_truncated()})),
                );
                Ok(output)
            }
            Some(Err(failure)) => {
                let mut details = Map::new();
                if let Some(error) = &failure.error {
                    details.insert("error".into(), Value::String(error.clone()));
                }
                if let Some(cause) = &failure.cause {
                    details.insert("cause".into(), Value::String(cause.clone()));
                }
                lane.emit("ExecutionFailed", Some(Value::Object(details)));
                Err(failure)
            }
            None => {
                let failure = Failure {
                    error: Some(names::TIMEOUT.into()),
                    cause: None,
                };
                lane.emit("ExecutionTimedOut", Some(json!({"error": names::TIMEOUT})));
                Err(failure)
            }
        }
    }

    fn run_machine<'a>(
        &'a self,
        lane: &'a mut Lane,
        machine: &'a Machine,
        input: Value,
        variables: &'a mut Map<String, Value>,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        Box::pin(async move {
            let mut current = machine.start_at.as_str();
            let mut input = input;
            let mut input_text = None;
            loop {
                let Some(state) = machine.states.get(current) else {
                    return Err(Failure::new(
                        names::RUNTIME,
                        format!("the state '{current}' does not exist"),
                    ));
                };
                match self
                    .run_state(lane, state, input, input_text.take(), variables)
                    .await?
                {
                    Step::End(output) => return Ok(output),
                    Step::Next(next, output, output_text) => {
                        current = machine
                            .states
                            .get_key_value(&next)
                            .map(|(k, _)| k.as_str())
                            .unwrap_or("");
                        if current.is_empty() {
                            return Err(Failure::new(
                                names::RUNTIME,
                                format!("the state '{next}' does not exist"),
                            ));
                        }
                        input = output;
                        input_text = Some(output_text);
                    }
                }
            }
        })
    }

    fn context<'r>(&self, run: &'r StateRun<'_>) -> &'r Value {
        run.context.get_or_init(|| {
            let mut context = Map::new();
            context.insert("Execution".into(), self.shared.execution_context.clone());
            context.insert(
                "State".into(),
                json!({
                    "EnteredTime": timestamp_text(run.entered_time),
                    "Name": run.state.name,
                    "RetryCount": run.retry_count,
                }),
            );
            context.insert(
                "StateMachine".into(),
                self.shared.state_machine_context.clone(),
            );
            if let Some(token) = &run.task_token {
                context.insert("Task".into(), json!({"Token": token}));
            }
            Value::Object(context)
        })
    }

    async fn run_state(
        &self,
        lane: &mut Lane,
        state: &State,
        input: Value,
        input_text: Option<String>,
        variables: &mut Map<String, Value>,
    ) -> Result<Step, Failure> {
        let type_name = state.type_name();
        let entered_id = lane.emit(
            &format!("{type_name}StateEntered"),
            Some(entered_details(&state.name, &input, input_text)),
        );
        let mut run = StateRun {
            state,
            entered_id,
            entered_time: self.shared.clock.now(),
            retry_count: 0,
            task_token: None,
            context: OnceLock::new(),
        };
        // Only a catcher reads the state's input after it ran.
        let input_for_catch = (!state.catch.is_empty()).then(|| input.clone());
        let outcome = self.execute(lane, &mut run, input, variables).await;
        let (output, next) = match (outcome, input_for_catch) {
            (Ok(done), _) => done,
            (Err(failure), None) => return Err(failure),
            (Err(failure), Some(input)) => {
                let (output, next) = self.catch(lane, &run, &input, failure, variables)?;
                (output, Some(next))
            }
        };
        let output_text = text(&output);
        if output_text.len() > PAYLOAD_LIMIT_BYTES {
            return Err(Failure::new(
                names::DATA_LIMIT_EXCEEDED,
                format!(
                    "The state/task '{}' returned a result with a size exceeding the maximum number of bytes service limit.",
                    state.name
                ),
            ));
        }
        let exited = |output_text| json!({"name": state.name, "output": output_text, "outputDetails": not_truncated()});
        match next {
            Some(next) => {
                lane.emit(
                    &format!("{type_name}StateExited"),
                    Some(exited(output_text.clone())),
                );
                Ok(Step::Next(next, output, output_text))
            }
            None => {
                lane.emit(
                    &format!("{type_name}StateExited"),
                    Some(exited(output_text)),
                );
                Ok(Step::End(output))
            }
        }
    }

    /// Finds a catcher for `failure`; returns the catcher's output and target.
    fn catch(
        &self,
        lane: &mut Lane,
        run: &StateRun<'_>,
        input: &Value,
        failure: Failure,
        variables: &mut Map<String, Value>,
    ) -> Result<(Value, String), Failure> {
        let state = run.state;
        let Some(catcher) = state
            .catch
            .iter()
            .find(|c| failure.matches(&c.error_equals))
        else {
            return Err(failure);
        };
        let error_output = failure.to_output();
        let _ = lane;
        let output = self.catcher_output(run, catcher, input, &error_output, variables)?;
        Ok((output, catcher.next.clone()))
    }

    fn catcher_output(
        &self,
        run: &StateRun<'_>,
        catcher: &Catcher,
        input: &Value,
        error_output: &Value,
        variables: &mut Map<String, Value>,
    ) -> Result<Value, Failure> {
        let context = self.context(run);
        match run.state.query_language {
            QueryLanguage::JsonPath => {
                if let Some(Value::Object(assign)) = &catcher.assign {
                    let scope = Scope {
                        input: error_output,
                        context,
                        variables,
                    };
                    let assigned = self.payload_template_object(run, assign, &scope)?;
                    merge_variables(variables, assigned);
                }
                match &catcher.result_path {
                    None => Ok(input.clone()),
                    Some(path) => jsonpath::set(input.clone(), path, error_output.clone())
                        .map_err(|e| result_path_failure(run, path, input, e)),
                }
            }
            QueryLanguage::Jsonata => {
                let bindings =
                    self.bindings(run, context, input, None, Some(error_output), variables);
                let output = match &catcher.output {
                    Some(template) => self.jsonata(run, "Output", template, &bindings)?,
                    None => error_output.clone(),
                };
                if let Some(assign) = &catcher.assign {
                    let assigned = self.jsonata(run, "Assign", assign, &bindings)?;
                    if let Value::Object(assigned) = assigned {
                        merge_variables(variables, assigned);
                    }
                }
                Ok(output)
            }
        }
    }

    /// Runs a state's work with its retriers; returns its output and where it goes.
    async fn execute(
        &self,
        lane: &mut Lane,
        run: &mut StateRun<'_>,
        input: Value,
        variables: &mut Map<String, Value>,
    ) -> Result<(Value, Option<String>), Failure> {
        let state = run.state;
        if state.retry.is_empty() {
            return self.attempt(lane, run, input, variables).await;
        }
        let mut attempts: Vec<u64> = vec![0; state.retry.len()];
        loop {
            let outcome = self.attempt(lane, run, input.clone(), variables).await;
            let failure = match outcome {
                Ok(done) => return Ok(done),
                Err(failure) => failure,
            };
            let Some((index, retrier)) = state
                .retry
                .iter()
                .enumerate()
                .find(|(_, r)| failure.matches(&r.error_equals))
            else {
                return Err(failure);
            };
            if attempts[index] >= retrier.max_attempts {
                return Err(failure);
            }
            let delay = retry_delay(retrier, attempts[index]);
            attempts[index] += 1;
            run.retry_count += 1;
            run.context = OnceLock::new();
            self.shared.clock.sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        lane: &mut Lane,
        run: &mut StateRun<'_>,
        input: Value,
        variables: &mut Map<String, Value>,
    ) -> Result<(Value, Option<String>), Failure> {
        let state = run.state;
        match &state.kind {
            StateKind::Choice { choices, default } => {
                let context = self.context(run);
                let effective = self.input_path(run, &input, context, variables)?;
                for choice in choices {
                    if self.rule(run, &choice.rule, &effective, &input, context, variables)? {
                        let output = self.finish_choice(
                            run,
                            &input,
                            &effective,
                            context,
                            // A matched rule assigns only its own variables; the
                            // state-level Assign belongs to the Default transition.
                            choice.assign.as_ref(),
                            choice.output.as_ref().or(state.output.as_ref()),
                            variables,
                        )?;
                        return Ok((output, Some(choice.next.clone())));
                    }
                }
                match default {
                    Some(default) => {
                        let output = self.finish_choice(
                            run,
                            &input,
                            &effective,
                            context,
                            state.assign.as_ref(),
                            state.output.as_ref(),
                            variables,
                        )?;
                        Ok((output, Some(default.clone())))
                    }
                    None => Err(Failure::new(
                        names::NO_CHOICE_MATCHED,
                        format!(
                            "No Matches! (state '{}', entered at the event id #{})",
                            state.name, run.entered_id
                        ),
                    )),
                }
            }
            _ => self.attempt_other(lane, run, input, variables).await,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_choice(
        &self,
        run: &StateRun<'_>,
        input: &Value,
        effective: &Value,
        context: &Value,
        assign: Option<&Value>,
        output: Option<&Value>,
        variables: &mut Map<String, Value>,
    ) -> Result<Value, Failure> {
        let state = run.state;
        match state.query_language {
            QueryLanguage::JsonPath => {
                if let Some(Value::Object(assign)) = assign {
                    let scope = Scope {
                        input: effective,
                        context,
                        variables,
                    };
                    let assigned = self.payload_template_object(run, assign, &scope)?;
                    merge_variables(variables, assigned);
                }
                self.output_path(run, effective.clone(), context, variables)
            }
            QueryLanguage::Jsonata => {
                let bindings = self.bindings(run, context, input, None, None, variables);
                let result = match output {
                    Some(template) => self.jsonata(run, "Output", template, &bindings)?,
                    None => input.clone(),
                };
                if let Some(assign) = assign
                    && let Value::Object(assigned) =
                        self.jsonata(run, "Assign", assign, &bindings)?
                {
                    merge_variables(variables, assigned);
                }
                Ok(result)
            }
        }
    }

    async fn attempt_other(
        &self,
        lane: &mut Lane,
        run: &mut StateRun<'_>,
        input: Value,
        variables: &mut Map<String, Value>,
    ) -> Result<(Value, Option<String>), Failure> {
        let state = run.state;
        if let StateKind::Task(task) = &state.kind
            && task.resource.ends_with(".waitForTaskToken")
        {
            let waiter = self.shared.tokens.issue(&self.shared.execution_arn);
            run.task_token = Some(waiter.token.clone());
            run.context = OnceLock::new();
            let result = self
                .task_with_token(lane, run, task, &input, variables, waiter)
                .await;
            return self.finish(run, &input, result?, variables);
        }
        let context = self.context(run);
        let jsonata = state.query_language == QueryLanguage::Jsonata;
        // The effective input: InputPath then Parameters (JSONPath) or Arguments (JSONata).
        let effective = if jsonata {
            match &state.arguments {
                Some(arguments) => {
                    let bindings = self.bindings(run, context, &input, None, None, variables);
                    self.jsonata(run, "Arguments", arguments, &bindings)?
                }
                None => input.clone(),
            }
        } else {
            let selected = self.input_path(run, &input, context, variables)?;
            match (&state.parameters, &state.kind) {
                (Some(Value::Object(parameters)), kind) if !matches!(kind, StateKind::Map(_)) => {
                    let scope = Scope {
                        input: &selected,
                        context,
                        variables,
                    };
                    Value::Object(self.payload_template_object(run, parameters, &scope)?)
                }
                _ => selected.into_owned(),
            }
        };
        let result: Value = match &state.kind {
            StateKind::Pass { result } => match result {
                Some(result) if jsonata => {
                    let _ = result;
                    effective
                }
                Some(result) => result.clone(),
                None => effective,
            },
            StateKind::Succeed => effective,
            StateKind::Fail(fail) => {
                return Err(self.fail_state(run, fail, &input, &effective, context, variables)?);
            }
            StateKind::Wait(wait) => {
                self.wait(run, wait, &input, &effective, context, variables)
                    .await?;
                effective
            }
            StateKind::Task(task) => {
                self.task(lane, run, task, &input, effective, context, variables)
                    .await?
            }
            StateKind::Parallel { branches } => {
                self.parallel(lane, run, branches, effective, variables)
                    .await?
            }
            StateKind::Map(map) => {
                self.map(lane, run, map, &input, effective, context, variables)
                    .await?
            }
            StateKind::Choice { .. } => effective,
        };
        self.finish(run, &input, result, variables)
    }

    /// ResultSelector, Assign, ResultPath and OutputPath (JSONPath) or Assign and Output (JSONata).
    fn finish(
        &self,
        run: &StateRun<'_>,
        input: &Value,
        result: Value,
        variables: &mut Map<String, Value>,
    ) -> Result<(Value, Option<String>), Failure> {
        let state = run.state;
        let context = self.context(run);
        let next = state.next.clone();
        let passes_input = matches!(state.kind, StateKind::Succeed | StateKind::Wait(_))
            || (state.query_language == QueryLanguage::Jsonata
                && matches!(state.kind, StateKind::Pass { .. }));
        match state.query_language {
            QueryLanguage::JsonPath => {
                let result = match &state.result_selector {
                    Some(Value::Object(selector))
                        if !passes_input && !matches!(state.kind, StateKind::Pass { .. }) =>
                    {
                        let scope = Scope {
                            input: &result,
                            context,
                            variables,
                        };
                        Value::Object(self.payload_template_object(run, selector, &scope)?)
                    }
                    _ => result,
                };
                if let Some(Value::Object(assign)) = &state.assign {
                    let scope = Scope {
                        input: &result,
                        context,
                        variables,
                    };
                    let assigned = self.payload_template_object(run, assign, &scope)?;
                    merge_variables(variables, assigned);
                }
                let combined = if matches!(state.kind, StateKind::Succeed | StateKind::Wait(_)) {
                    result
                } else {
                    match &state.result_path {
                        None => input.clone(),
                        Some(path) if path == "$" => result,
                        Some(path) => jsonpath::set(input.clone(), path, result)
                            .map_err(|e| result_path_failure(run, path, input, e))?,
                    }
                };
                Ok((self.output_path(run, combined, context, variables)?, next))
            }
            QueryLanguage::Jsonata => {
                let result_binding = if passes_input { None } else { Some(&result) };
                let bindings = self.bindings(run, context, input, result_binding, None, variables);
                let output = match &state.output {
                    Some(template) => self.jsonata(run, "Output", template, &bindings)?,
                    None if passes_input => input.clone(),
                    None => result,
                };
                if let Some(assign) = &state.assign
                    && let Value::Object(assigned) =
                        self.jsonata(run, "Assign", assign, &bindings)?
                {
                    merge_variables(variables, assigned);
                }
                Ok((output, next))
            }
        }
    }

    fn input_path<'i>(
        &self,
        run: &StateRun<'_>,
        input: &'i Value,
        context: &Value,
        variables: &Map<String, Value>,
    ) -> Result<Cow<'i, Value>, Failure> {
        match &run.state.input_path {
            None => Ok(Cow::Owned(json!({}))),
            Some(path) if path == "$" => Ok(Cow::Borrowed(input)),
            Some(path) => {
                let scope = Scope {
                    input,
                    context,
                    variables,
                };
                jsonpath::resolve(path, &scope)
                    .map(Cow::Owned)
                    .map_err(|_| {
                        run.runtime(format!(
                            "Invalid path '{path}' : No results for path: {}",
                            jayway_path(path)
                        ))
                    })
            }
        }
    }

    fn output_path(
        &self,
        run: &StateRun<'_>,
        output: Value,
        context: &Value,
        variables: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        match &run.state.output_path {
            None => Ok(json!({})),
            Some(path) if path == "$" => Ok(output),
            Some(path) => {
                let scope = Scope {
                    input: &output,
                    context,
                    variables,
                };
                jsonpath::resolve(path, &scope).map_err(|_| {
                    run.runtime(format!(
                        "Invalid path '{path}' : No results for path: {}",
                        jayway_path(path)
                    ))
                })
            }
        }
    }

    /// Evaluates a JSONPath payload template (Parameters, ResultSelector, ItemSelector, Assign).
    fn payload_template_object(
        &self,
        run: &StateRun<'_>,
        template: &Map<String, Value>,
        scope: &Scope<'_>,
    ) -> Result<Map<String, Value>, Failure> {
        let mut out = Map::new();
        for (key, value) in template {
            if let Some(name) = key.strip_suffix(".$") {
                let Value::String(expression) = value else {
                    return Err(run.runtime(format!(
                        "The value of the field '{key}' must be a JSONPath or an intrinsic function, not {value}"
                    )));
                };
                let resolved = if intrinsics::is_intrinsic(expression) {
                    intrinsics::evaluate_in_field(expression, key, scope).map_err(|e| {
                        if e.cause.starts_with("An error occurred") {
                            Failure::new(e.error.clone(), e.cause.clone())
                        } else {
                            run.error(&e.error, &e.cause)
                        }
                    })?
                } else {
                    jsonpath::resolve(expression, scope).map_err(|e| match e {
                        PathError::NotFound { .. } => run.runtime(format!(
                            "The JSONPath '{expression}' specified for the field '{key}' could not be found in the input '{}'",
                            text(scope.input)
                        )),
                        PathError::UnknownVariable { name, .. } => run.runtime(format!(
                            "The variable '${name}' used in the field '{key}' is not defined"
                        )),
                        other => run.runtime(format!(
                            "The JSONPath '{expression}' specified for the field '{key}' is invalid: {other}"
                        )),
                    })?
                };
                out.insert(name.to_owned(), resolved);
            } else {
                out.insert(key.clone(), self.payload_template_value(run, value, scope)?);
            }
        }
        Ok(out)
    }

    fn payload_template_value(
        &self,
        run: &StateRun<'_>,
        value: &Value,
        scope: &Scope<'_>,
    ) -> Result<Value, Failure> {
        Ok(match value {
            Value::Object(map) => Value::Object(self.payload_template_object(run, map, scope)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.payload_template_value(run, item, scope))
                    .collect::<Result<_, _>>()?,
            ),
            other => other.clone(),
        })
    }

    fn bindings(
        &self,
        run: &StateRun<'_>,
        context: &Value,
        input: &Value,
        result: Option<&Value>,
        error_output: Option<&Value>,
        variables: &Map<String, Value>,
    ) -> Map<String, Value> {
        let _ = run;
        let mut states = Map::new();
        states.insert("input".into(), input.clone());
        if let Some(result) = result {
            states.insert("result".into(), result.clone());
        }
        if let Some(error_output) = error_output {
            states.insert("errorOutput".into(), error_output.clone());
        }
        states.insert("context".into(), context.clone());
        let mut bindings = variables.clone();
        bindings.insert("states".into(), Value::Object(states));
        bindings
    }

    fn jsonata(
        &self,
        run: &StateRun<'_>,
        field: &str,
        template: &Value,
        bindings: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        match query::evaluate_template(template, bindings, self.shared.clock.now()) {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(run.error(
                names::QUERY_EVALUATION_ERROR,
                format!("The JSONata expression {} specified for the field '{field}' returned nothing (undefined).", quoted(template)),
            )),
            Err(TemplateError {
                expression,
                error: QueryError::Evaluation(message),
            }) => Err(run.error(
                names::QUERY_EVALUATION_ERROR,
                format!("The JSONata expression '{expression}' specified for the field '{field}' threw an error during evaluation. {message}"),
            )),
            Err(TemplateError {
                expression,
                error: QueryError::UndefinedVariable(name),
            }) => Err(run.error(
                names::QUERY_EVALUATION_ERROR,
                format!(
                    "The JSONata expression '{}' specified for the field '{field}' references the variable '${name}', which is not defined.",
                    query::template_expression(&expression).unwrap_or(&expression)
                ),
            )),
        }
    }

    /// A number field given literally, by path or by expression.
    #[allow(clippy::too_many_arguments)]
    fn dynamic_value(
        &self,
        run: &StateRun<'_>,
        field: &str,
        dynamic: &Dynamic,
        input: &Value,
        effective: &Value,
        context: &Value,
        variables: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        match dynamic {
            Dynamic::Literal(v) => Ok(v.clone()),
            Dynamic::Path(path) if intrinsics::is_intrinsic(path) => {
                let scope = Scope {
                    input: effective,
                    context,
                    variables,
                };
                intrinsics::evaluate(path, &scope).map_err(|e| run.error(&e.error, &e.cause))
            }
            Dynamic::Path(path) => {
                let scope = Scope {
                    input: effective,
                    context,
                    variables,
                };
                jsonpath::resolve(path, &scope).map_err(|_| {
                    run.runtime(match field {
                        "Seconds" | "Timestamp" => format!(
                            "The {field}Path parameter does not reference an input value: {path}"
                        ),
                        "TimeoutSeconds" | "HeartbeatSeconds" => format!(
                            "Invalid path '{path}' : No results for path: {}",
                            jayway_path(path)
                        ),
                        _ => format!(
                            "Invalid path '{path}' : The {field}Path field could not be found in the input '{}'",
                            text(effective)
                        ),
                    })
                })
            }
            Dynamic::Expression(expression) => {
                let bindings = self.bindings(run, context, input, None, None, variables);
                self.jsonata(run, field, &Value::String(expression.clone()), &bindings)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn rule(
        &self,
        run: &StateRun<'_>,
        rule: &Rule,
        effective: &Value,
        input: &Value,
        context: &Value,
        variables: &Map<String, Value>,
    ) -> Result<bool, Failure> {
        match rule {
            Rule::And(rules) => {
                for r in rules {
                    if !self.rule(run, r, effective, input, context, variables)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rules) => {
                for r in rules {
                    if self.rule(run, r, effective, input, context, variables)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(inner) => Ok(!self.rule(run, inner, effective, input, context, variables)?),
            Rule::Condition(condition) => {
                let bindings = self.bindings(run, context, input, None, None, variables);
                match self.jsonata(run, "Condition", condition, &bindings)? {
                    Value::Bool(b) => Ok(b),
                    other => Err(run.unexpected_type(condition, "Condition", "boolean", &other)),
                }
            }
            Rule::Compare {
                variable,
                operator,
                operand,
            } => {
                let scope = Scope {
                    input: effective,
                    context,
                    variables,
                };
                let value = match jsonpath::resolve(variable, &scope) {
                    Ok(v) => Some(v),
                    Err(PathError::NotFound { .. }) => None,
                    Err(other) => {
                        return Err(run.runtime(format!("Invalid path '{variable}': {other}")));
                    }
                };
                if value.is_none() && !matches!(operator, crate::definition::Operator::IsPresent) {
                    if matches!(
                        operator,
                        crate::definition::Operator::IsNull
                            | crate::definition::Operator::IsNumeric
                            | crate::definition::Operator::IsString
                            | crate::definition::Operator::IsBoolean
                            | crate::definition::Operator::IsTimestamp
                    ) {
                        return Ok(crate::choice::compare(
                            *operator,
                            None,
                            operand_literal(operand),
                        ));
                    }
                    return Err(run.runtime(format!(
                        "Invalid path '{variable}': The choice state's condition path references an invalid value."
                    )));
                }
                let operand_value = match operand {
                    Operand::Literal(v) => v.clone(),
                    Operand::Path(path) => jsonpath::resolve(path, &scope).map_err(|_| {
                        run.runtime(format!(
                            "Invalid path '{path}': The choice state's condition path references an invalid value."
                        ))
                    })?,
                };
                Ok(crate::choice::compare(
                    *operator,
                    value.as_ref(),
                    &operand_value,
                ))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn fail_state(
        &self,
        run: &StateRun<'_>,
        fail: &crate::definition::Fail,
        input: &Value,
        effective: &Value,
        context: &Value,
        variables: &Map<String, Value>,
    ) -> Result<Failure, Failure> {
        let pick = |field: &str, dynamic: &Option<Dynamic>| -> Result<Option<String>, Failure> {
            match dynamic {
                None => Ok(None),
                Some(d) => {
                    let value =
                        self.dynamic_value(run, field, d, input, effective, context, variables)?;
                    match value {
                        Value::String(s) => Ok(Some(s)),
                        Value::Null => Ok(None),
                        other => Ok(Some(other.to_string())),
                    }
                }
            }
        };
        let error = pick("Error", &fail.error)?;
        let cause = pick("Cause", &fail.cause)?;
        Ok(Failure { error, cause })
    }

    #[allow(clippy::too_many_arguments)]
    async fn wait(
        &self,
        run: &StateRun<'_>,
        wait: &WaitFor,
        input: &Value,
        effective: &Value,
        context: &Value,
        variables: &Map<String, Value>,
    ) -> Result<(), Failure> {
        let clock = &self.shared.clock;
        match wait {
            WaitFor::Seconds(dynamic) => {
                let value = self.dynamic_value(
                    run, "Seconds", dynamic, input, effective, context, variables,
                )?;
                if let Dynamic::Expression(expression) = dynamic {
                    let seconds = run.expression_integer(
                        expression,
                        "Seconds",
                        &value,
                        0,
                        Some(MAX_SECONDS),
                    )?;
                    clock.sleep(Duration::from_secs(seconds as u64)).await;
                    return Ok(());
                }
                let described = match dynamic {
                    Dynamic::Path(path) => format!("{path} == {}", quoted(&value)),
                    _ => text(&value),
                };
                let field = match dynamic {
                    Dynamic::Path(_) => "SecondsPath",
                    _ => "Seconds",
                };
                let seconds = match &value {
                    Value::Number(n) if n.is_i64() || n.is_u64() => n.as_i64().unwrap_or(i64::MAX),
                    _ => {
                        return Err(run.runtime(format!(
                            "The {field} parameter cannot be parsed as a long value: {described}"
                        )));
                    }
                };
                if seconds < 0 {
                    return Err(run.runtime(format!(
                        "The {field} parameter references a negative value: {described}"
                    )));
                }
                clock.sleep(Duration::from_secs(seconds as u64)).await;
            }
            WaitFor::Timestamp(dynamic) => {
                let value = self.dynamic_value(
                    run,
                    "Timestamp",
                    dynamic,
                    input,
                    effective,
                    context,
                    variables,
                )?;
                if let Dynamic::Expression(expression) = dynamic {
                    let template = Value::String(expression.clone());
                    let Value::String(stamp) = &value else {
                        return Err(run.unexpected_type(&template, "Timestamp", "string", &value));
                    };
                    let Some(deadline) = crate::definition::parse_timestamp(stamp) else {
                        return Err(run.error(
                            names::QUERY_EVALUATION_ERROR,
                            format!(
                                "The JSONata expression '{}' specified for the field 'Timestamp' returned a value that is not a valid ISO-8601 extended offset date-time format string: {stamp}",
                                expression_text(&template)
                            ),
                        ));
                    };
                    clock.sleep_until(whole_seconds(deadline)).await;
                    return Ok(());
                }
                let Some(deadline) = value.as_str().and_then(crate::definition::parse_timestamp)
                else {
                    let field = match dynamic {
                        Dynamic::Path(path) => format!(
                            "The TimestampPath parameter does not reference a valid ISO-8601 extended offset date-time format string: {path} == {}",
                            quoted(&value)
                        ),
                        _ => format!(
                            "The Timestamp parameter does not reference a valid ISO-8601 extended offset date-time format string: {}",
                            quoted(&value)
                        ),
                    };
                    return Err(run.runtime(field));
                };
                clock.sleep_until(whole_seconds(deadline)).await;
            }
        }
        Ok(())
    }

    // ---- Task ----

    fn task_timeouts(
        &self,
        run: &StateRun<'_>,
        task: &Task,
        input: &Value,
        context: &Value,
        variables: &Map<String, Value>,
    ) -> Result<(Option<u64>, Option<u64>), Failure> {
        let effective = input;
        let seconds = |field: &str, d: &Option<Dynamic>| -> Result<Option<u64>, Failure> {
            match d {
                None => Ok(None),
                Some(d) => {
                    let value =
                        self.dynamic_value(run, field, d, input, effective, context, variables)?;
                    if let Dynamic::Expression(expression) = d {
                        let n = run.expression_integer(
                            expression,
                            field,
                            &value,
                            1,
                            Some(MAX_SECONDS),
                        )?;
                        return Ok(Some(n as u64));
                    }
                    match value.as_u64() {
                        Some(n) if n > 0 => Ok(Some(n)),
                        _ => Err(run.runtime(format!(
                            "The {field} value must be a positive integer, not {}",
                            text(&value)
                        ))),
                    }
                }
            }
        };
        let timeout = seconds("TimeoutSeconds", &task.timeout_seconds)?;
        let heartbeat = seconds("HeartbeatSeconds", &task.heartbeat_seconds)?;
        Ok((timeout, heartbeat))
    }

    #[allow(clippy::too_many_arguments)]
    async fn task(
        &self,
        lane: &mut Lane,
        run: &StateRun<'_>,
        task: &Task,
        input: &Value,
        effective: Value,
        context: &Value,
        variables: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        let (timeout, _) = self.task_timeouts(run, task, input, context, variables)?;
        let target = TaskTarget::of(&task.resource, &effective);
        let Some(handler) = self.shared.tasks.get(&target.handler_name) else {
            return Err(self.missing_handler(run, &task.resource, &target));
        };
        let region = self.shared.region.clone();
        if target.legacy_lambda {
            let mut details = json!({"resource": task.resource, "input": text(&effective), "inputDetails": not_truncated()});
            if let Some(t) = timeout {
                details["timeoutInSeconds"] = json!(t);
            }
            lane.emit("LambdaFunctionScheduled", Some(details));
            lane.emit("LambdaFunctionStarted", None);
        } else {
            let mut details = json!({
                "resourceType": target.resource_type,
                "resource": target.resource,
                "region": region,
                "parameters": text(&effective),
            });
            if let Some(t) = timeout {
                details["timeoutInSeconds"] = json!(t);
            }
            lane.emit("TaskScheduled", Some(details));
            lane.emit(
                "TaskStarted",
                Some(json!({"resourceType": target.resource_type, "resource": target.resource})),
            );
        }
        let request = TaskRequest {
            resource: task.resource.clone(),
            input: target.payload.clone(),
            task_token: None,
            context: context.clone(),
        };
        let call = handler(request);
        let outcome = match timeout {
            Some(seconds) => {
                let sleep = self.shared.clock.sleep(Duration::from_secs(seconds));
                tokio::select! {
                    outcome = call => Some(outcome),
                    _ = sleep => None,
                }
            }
            None => Some(call.await),
        };
        match outcome {
            Some(Ok(value)) => {
                let output = if target.wraps_lambda_response {
                    lambda_response(value)
                } else {
                    value
                };
                if target.legacy_lambda {
                    lane.emit(
                        "LambdaFunctionSucceeded",
                        Some(json!({"output": text(&output), "outputDetails": not_truncated()})),
                    );
                } else {
                    lane.emit(
                        "TaskSucceeded",
                        Some(json!({
                            "resourceType": target.resource_type,
                            "resource": target.resource,
                            "output": text(&output),
                            "outputDetails": not_truncated(),
                        })),
                    );
                }
                Ok(output)
            }
            Some(Err(failure)) => {
                let failure = if target.is_lambda {
                    lambda_failure(failure)
                } else {
                    Failure::new(failure.error, failure.cause)
                };
                let mut details = Map::new();
                if !target.legacy_lambda {
                    details.insert("resourceType".into(), json!(target.resource_type));
                    details.insert("resource".into(), json!(target.resource));
                }
                if let Some(e) = &failure.error {
                    details.insert("error".into(), json!(e));
                }
                if let Some(c) = &failure.cause {
                    details.insert("cause".into(), json!(c));
                }
                let event = if target.legacy_lambda {
                    "LambdaFunctionFailed"
                } else {
                    "TaskFailed"
                };
                lane.emit(event, Some(Value::Object(details)));
                Err(failure)
            }
            None => {
                let failure = Failure {
                    error: Some(names::TIMEOUT.into()),
                    cause: None,
                };
                let event = if target.legacy_lambda {
                    "LambdaFunctionTimedOut"
                } else {
                    "TaskTimedOut"
                };
                let mut details = json!({"error": names::TIMEOUT});
                if !target.legacy_lambda {
                    details["resourceType"] = json!(target.resource_type);
                    details["resource"] = json!(target.resource);
                }
                lane.emit(event, Some(details));
                Err(failure)
            }
        }
    }

    fn missing_handler(&self, run: &StateRun<'_>, resource: &str, target: &TaskTarget) -> Failure {
        let registered = self.shared.tasks.names();
        run.runtime(format!(
            "No task handler is registered for the resource '{resource}' (looked up as '{}'). Register one with TaskRegistry::register; registered: [{}]",
            target.handler_name,
            registered.join(", ")
        ))
    }

    async fn task_with_token(
        &self,
        lane: &mut Lane,
        run: &StateRun<'_>,
        task: &Task,
        input: &Value,
        variables: &mut Map<String, Value>,
        waiter: crate::tasks::TokenWaiter,
    ) -> Result<Value, Failure> {
        let token = waiter.token.clone();
        let outcome = self
            .task_with_token_inner(lane, run, task, input, variables, waiter)
            .await;
        let timed_out = matches!(&outcome, Err(f) if f.name() == names::TIMEOUT || f.name() == names::HEARTBEAT_TIMEOUT);
        self.shared.tokens.retire(&token, timed_out);
        outcome
    }

    async fn task_with_token_inner(
        &self,
        lane: &mut Lane,
        run: &StateRun<'_>,
        task: &Task,
        input: &Value,
        variables: &mut Map<String, Value>,
        waiter: crate::tasks::TokenWaiter,
    ) -> Result<Value, Failure> {
        let state = run.state;
        let context = self.context(run);
        let jsonata = state.query_language == QueryLanguage::Jsonata;
        let effective = if jsonata {
            match &state.arguments {
                Some(arguments) => {
                    let bindings = self.bindings(run, context, input, None, None, variables);
                    self.jsonata(run, "Arguments", arguments, &bindings)?
                }
                None => input.clone(),
            }
        } else {
            let selected = self.input_path(run, input, context, variables)?;
            match &state.parameters {
                Some(Value::Object(parameters)) => {
                    let scope = Scope {
                        input: &selected,
                        context,
                        variables,
                    };
                    Value::Object(self.payload_template_object(run, parameters, &scope)?)
                }
                _ => selected.into_owned(),
            }
        };
        let (timeout, heartbeat) = self.task_timeouts(run, task, input, context, variables)?;
        let target = TaskTarget::of(&task.resource, &effective);
        let Some(handler) = self.shared.tasks.get(&target.handler_name) else {
            return Err(self.missing_handler(run, &task.resource, &target));
        };
        let mut details = json!({
            "resourceType": target.resource_type,
            "resource": target.resource,
            "region": self.shared.region,
            "parameters": text(&effective),
        });
        if let Some(t) = timeout {
            details["timeoutInSeconds"] = json!(t);
        }
        if let Some(h) = heartbeat {
            details["heartbeatInSeconds"] = json!(h);
        }
        lane.emit("TaskScheduled", Some(details));
        lane.emit(
            "TaskStarted",
            Some(json!({"resourceType": target.resource_type, "resource": target.resource})),
        );
        let clock = self.shared.clock.clone();
        let started = clock.now();
        let timeout_at = timeout.map(|t| started + chrono::Duration::seconds(t as i64));
        let timed_out = |lane: &mut Lane, error: &str| {
            lane.emit(
                "TaskTimedOut",
                Some(json!({"resourceType": target.resource_type, "resource": target.resource, "error": error})),
            );
            Failure {
                error: Some(error.to_owned()),
                cause: None,
            }
        };
        let request = TaskRequest {
            resource: task.resource.clone(),
            input: target.payload.clone(),
            task_token: Some(waiter.token.clone()),
            context: context.clone(),
        };
        // The handler hands the token on (e.g. to a queue); its own answer only says it was submitted.
        let submitted = {
            let call = handler(request);
            match timeout_at {
                Some(at) => {
                    tokio::select! {
                        outcome = call => Some(outcome),
                        _ = clock.sleep_until(at) => None,
                    }
                }
                None => Some(call.await),
            }
        };
        match submitted {
            None => return Err(timed_out(lane, names::TIMEOUT)),
            Some(Err(failure)) => {
                let failure = if target.is_lambda {
                    lambda_failure(failure)
                } else {
                    Failure::new(failure.error, failure.cause)
                };
                lane.emit(
                    "TaskFailed",
                    Some(json!({
                        "resourceType": target.resource_type,
                        "resource": target.resource,
                        "error": failure.error,
                        "cause": failure.cause,
                    })),
                );
                return Err(failure);
            }
            Some(Ok(response)) => {
                let output = if target.is_lambda {
                    lambda_response(response)
                } else {
                    response
                };
                lane.emit(
                    "TaskSubmitted",
                    Some(json!({
                        "resourceType": target.resource_type,
                        "resource": target.resource,
                        "output": text(&output),
                        "outputDetails": not_truncated(),
                    })),
                );
            }
        }
        let mut outcome = waiter.outcome;
        let heartbeat_signal = waiter.heartbeat;
        let mut heartbeat_at = heartbeat.map(|h| clock.now() + chrono::Duration::seconds(h as i64));
        loop {
            let deadline = match (timeout_at, heartbeat_at) {
                (Some(t), Some(h)) => Some(t.min(h)),
                (t, h) => t.or(h),
            };
            let sleep = match deadline {
                Some(at) => clock.sleep_until(at),
                None => Box::pin(std::future::pending()),
            };
            tokio::select! {
                result = &mut outcome => {
                    return match result {
                        Ok(Ok(value)) => {
                            lane.emit(
                                "TaskSucceeded",
                                Some(json!({
                                    "resourceType": target.resource_type,
                                    "resource": target.resource,
                                    "output": text(&value),
                                    "outputDetails": not_truncated(),
                                })),
                            );
                            Ok(value)
                        }
                        Ok(Err(failure)) => {
                            let failure = Failure::new(failure.error, failure.cause);
                            let mut details = Map::new();
                            details.insert("resourceType".into(), json!(target.resource_type));
                            details.insert("resource".into(), json!(target.resource));
                            if let Some(e) = &failure.error { details.insert("error".into(), json!(e)); }
                            if let Some(c) = &failure.cause { details.insert("cause".into(), json!(c)); }
                            lane.emit("TaskFailed", Some(Value::Object(details)));
                            Err(failure)
                        }
                        Err(_) => Err(run.runtime("the task token was dropped before the task ended")),
                    };
                }
                _ = heartbeat_signal.notified() => {
                    heartbeat_at = heartbeat.map(|h| clock.now() + chrono::Duration::seconds(h as i64));
                }
                _ = sleep => {
                    let now = clock.now();
                    if timeout_at.is_some_and(|t| now >= t) {
                        return Err(timed_out(lane, names::TIMEOUT));
                    }
                    return Err(timed_out(lane, names::HEARTBEAT_TIMEOUT));
                }
            }
        }
    }

    // ---- Parallel ----

    async fn parallel(
        &self,
        lane: &mut Lane,
        run: &StateRun<'_>,
        branches: &[Machine],
        input: Value,
        variables: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        lane.emit("ParallelStateStarted", None);
        let mut running = FuturesUnordered::new();
        for (index, branch) in branches.iter().enumerate() {
            let mut branch_lane = lane.fork();
            let mut branch_vars = variables.clone();
            let input = input.clone();
            running.push(async move {
                let outcome = self
                    .run_machine(&mut branch_lane, branch, input, &mut branch_vars)
                    .await;
                (index, outcome)
            });
        }
        let mut results = vec![Value::Null; branches.len()];
        while let Some((index, outcome)) = running.next().await {
            match outcome {
                Ok(value) => results[index] = value,
                Err(failure) => {
                    // Dropping the other branches cancels them, as AWS stops sibling branches.
                    drop(running);
                    lane.previous = self.shared.last_event_id();
                    lane.emit("ParallelStateFailed", None);
                    let _ = run;
                    return Err(failure);
                }
            }
        }
        lane.previous = self.shared.last_event_id();
        lane.emit("ParallelStateSucceeded", None);
        Ok(Value::Array(results))
    }

    // ---- Map ----

    #[allow(clippy::too_many_arguments)]
    async fn map(
        &self,
        lane: &mut Lane,
        run: &StateRun<'_>,
        map: &MapState,
        input: &Value,
        effective: Value,
        context: &Value,
        variables: &Map<String, Value>,
    ) -> Result<Value, Failure> {
        let state = run.state;
        if map.item_reader.is_some() {
            return Err(run.error(
                names::ITEM_READER_FAILED,
                "ItemReader reads items from Amazon S3, which the local engine does not provide; pass the items in the state input and use ItemsPath or Items instead.",
            ));
        }
        let jsonata = state.query_language == QueryLanguage::Jsonata;
        let items_value = if jsonata {
            match &map.items {
                Some(items) => {
                    let bindings = self.bindings(run, context, input, None, None, variables);
                    self.jsonata(run, "Items", items, &bindings)?
                }
                None => effective.clone(),
            }
        } else {
            match &map.items_path {
                None => json!({}),
                Some(path) if path == "$" => effective.clone(),
                Some(path) => {
                    let scope = Scope {
                        input: &effective,
                        context,
                        variables,
                    };
                    jsonpath::resolve(path, &scope).map_err(|_| {
                        run.runtime(format!(
                            "Invalid path '{path}' : No results for path: {}",
                            jayway_path(path)
                        ))
                    })?
                }
            }
        };
        let items_value = match (&map.items, items_value) {
            (Some(template), value) if jsonata && !value.is_array() => {
                return Err(run.unexpected_type(template, "Items", "array", &value));
            }
            (_, value) => value,
        };
        let Value::Array(items) = items_value else {
            let field = if jsonata { "Items" } else { "ItemsPath" };
            return Err(run.runtime(format!(
                "The {field} field must point to a JSON array, but it points to {}",
                text(&items_value)
            )));
        };
        let max_concurrency = match &map.max_concurrency {
            None => 0,
            Some(d) => {
                let value = self.dynamic_value(
                    run,
                    "MaxConcurrency",
                    d,
                    input,
                    &effective,
                    context,
                    variables,
                )?;
                if let Dynamic::Expression(expression) = d {
                    run.expression_integer(expression, "MaxConcurrency", &value, 0, None)? as usize
                } else {
                    match integer_text(&value).and_then(|n| u64::try_from(n).ok()) {
                        Some(n) => n as usize,
                        None => {
                            return Err(run.runtime(not_an_integer("MaxConcurrency", d, &value)));
                        }
                    }
                }
            }
        };
        let tolerated_count = match &map.tolerated_failure_count {
            None => None,
            Some(d) => {
                let value = self.dynamic_value(
                    run,
                    "ToleratedFailureCount",
                    d,
                    input,
                    &effective,
                    context,
                    variables,
                )?;
                let value = match d {
                    Dynamic::Expression(expression) => json!(run.expression_integer(
                        expression,
                        "ToleratedFailureCount",
                        &value,
                        0,
                        None
                    )?),
                    _ => value,
                };
                match integer_text(&value) {
                    Some(n) if n >= 0 => Some(n as usize),
                    Some(_) => return Err(run.runtime("ToleratedFailureCount cannot be negative.")),
                    None => {
                        return Err(run.runtime(not_an_integer(
                            "ToleratedFailureCount",
                            d,
                            &value,
                        )));
                    }
                }
            }
        };
        let tolerated_percentage = match &map.tolerated_failure_percentage {
            None => None,
            Some(d) => {
                let value = self.dynamic_value(
                    run,
                    "ToleratedFailurePercentage",
                    d,
                    input,
                    &effective,
                    context,
                    variables,
                )?;
                if let Dynamic::Expression(expression) = d {
                    let template = Value::String(expression.clone());
                    let Some(p) = value.as_f64() else {
                        return Err(run.unexpected_type(
                            &template,
                            "ToleratedFailurePercentage",
                            "number",
                            &value,
                        ));
                    };
                    if !(0.0..=100.0).contains(&p) {
                        return Err(run.invalid_value(
                            &template,
                            "ToleratedFailurePercentage",
                            "a number from 0 to 100",
                            &value,
                        ));
                    }
                }
                match float_text(&value) {
                    Some(p) if (0.0..=100.0).contains(&p) => Some(p),
                    Some(_) => {
                        return Err(
                            run.runtime("ToleratedFailurePercentage must be between 0 and 100.")
                        );
                    }
                    None => {
                        return Err(run.runtime(match d {
                            Dynamic::Path(path) => format!(
                                "The ToleratedFailurePercentagePath field refers to value \"{}\" which is not a valid float: {path}",
                                quoted(&value)
                            ),
                            _ => format!("ToleratedFailurePercentage must be a number, not {}", text(&value)),
                        }));
                    }
                }
            }
        };
        let tolerance = tolerated_count.is_some() || tolerated_percentage.is_some();

        let mut inputs = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            inputs.push(
                self.item_input(run, map, input, &effective, context, variables, index, item)?,
            );
        }
        if let Some(batcher) = &map.item_batcher {
            inputs = self.batches(run, batcher, inputs, &effective, context, variables)?;
        }
        let total = inputs.len();
        let limit = if max_concurrency == 0 {
            total.max(1)
        } else {
            max_concurrency
        };
        let mut results = vec![Value::Null; total];
        let mut failures = 0usize;
        let mut next_index = 0usize;
        let mut running = FuturesUnordered::new();
        let inputs_ref = &inputs;
        let start_iteration = |index: usize, lane: &Lane| {
            let mut iteration_lane = lane.fork();
            let item_input = inputs_ref[index].clone();
            let mut iteration_vars = variables.clone();
            async move {
                iteration_lane.emit(
                    "MapIterationStarted",
                    Some(json!({"name": state.name, "index": index})),
                );
                let outcome = self
                    .run_machine(
                        &mut iteration_lane,
                        &map.processor,
                        item_input,
                        &mut iteration_vars,
                    )
                    .await;
                (index, outcome, iteration_lane)
            }
        };
        lane.emit("MapStateStarted", Some(json!({"length": total})));
        while next_index < total && running.len() < limit {
            running.push(start_iteration(next_index, lane));
            next_index += 1;
        }
        while let Some((index, outcome, mut iteration_lane)) = running.next().await {
            match outcome {
                Ok(value) => {
                    iteration_lane.emit(
                        "MapIterationSucceeded",
                        Some(json!({"name": state.name, "index": index})),
                    );
                    results[index] = value;
                }
                Err(failure) => {
                    iteration_lane.emit(
                        "MapIterationFailed",
                        Some(json!({"name": state.name, "index": index})),
                    );
                    failures += 1;
                    let exceeded = !tolerance
                        || tolerated_count.is_some_and(|c| failures > c)
                        || tolerated_percentage
                            .is_some_and(|p| (failures as f64) * 100.0 / (total as f64) > p);
                    if exceeded {
                        drop(running);
                        lane.previous = self.shared.last_event_id();
                        lane.emit("MapStateFailed", None);
                        if tolerance {
                            return Err(Failure::new(
                                names::EXCEED_TOLERATED_FAILURE_THRESHOLD,
                                "The specified tolerated failure threshold was exceeded",
                            ));
                        }
                        return Err(failure);
                    }
                    results[index] = failure.to_output();
                }
            }
            if next_index < total {
                running.push(start_iteration(next_index, lane));
                next_index += 1;
            }
        }
        lane.previous = self.shared.last_event_id();
        lane.emit("MapStateSucceeded", None);
        Ok(Value::Array(results))
    }

    /// Groups iteration inputs as `ItemBatcher` asks: at most MaxItemsPerBatch items and
    /// MaxInputBytesPerBatch bytes each, with BatchInput beside them.
    fn batches(
        &self,
        run: &StateRun<'_>,
        batcher: &Value,
        inputs: Vec<Value>,
        effective: &Value,
        context: &Value,
        variables: &Map<String, Value>,
    ) -> Result<Vec<Value>, Failure> {
        let limit = |field: &str| -> Result<Option<u64>, Failure> {
            let path_field = format!("{field}Path");
            let value = match (batcher.get(field), batcher.get(&path_field)) {
                (Some(v), _) => v.clone(),
                (None, Some(Value::String(path))) => {
                    let scope = Scope {
                        input: effective,
                        context,
                        variables,
                    };
                    jsonpath::resolve(path, &scope).map_err(|e| run.runtime(e))?
                }
                _ => return Ok(None),
            };
            match value.as_u64() {
                Some(n) if n > 0 => Ok(Some(n)),
                _ => Err(run.runtime(format!(
                    "The {field} field must be a positive integer, not {}",
                    text(&value)
                ))),
            }
        };
        let max_items = limit("MaxItemsPerBatch")?;
        let max_bytes = limit("MaxInputBytesPerBatch")?;
        let batch_input = match batcher.get("BatchInput") {
            Some(Value::Object(template))
                if run.state.query_language == QueryLanguage::JsonPath =>
            {
                let scope = Scope {
                    input: effective,
                    context,
                    variables,
                };
                Some(Value::Object(
                    self.payload_template_object(run, template, &scope)?,
                ))
            }
            Some(other) => Some(other.clone()),
            None => None,
        };
        let mut batches = Vec::new();
        let mut current: Vec<Value> = Vec::new();
        let mut bytes = 0u64;
        for item in inputs {
            let size = text(&item).len() as u64;
            let full_by_count = max_items.is_some_and(|m| current.len() as u64 >= m);
            let full_by_bytes = max_bytes.is_some_and(|m| !current.is_empty() && bytes + size > m);
            if full_by_count || full_by_bytes {
                batches.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += size;
            current.push(item);
        }
        if !current.is_empty() {
            batches.push(current);
        }
        Ok(batches
            .into_iter()
            .map(|items| {
                let mut batch = Map::new();
                if let Some(batch_input) = &batch_input {
                    batch.insert("BatchInput".into(), batch_input.clone());
                }
                batch.insert("Items".into(), Value::Array(items));
                Value::Object(batch)
            })
            .collect())
    }

    #[allow(clippy::too_many_arguments)]
    fn item_input(
        &self,
        run: &StateRun<'_>,
        map: &MapState,
        input: &Value,
        effective: &Value,
        context: &Value,
        variables: &Map<String, Value>,
        index: usize,
        item: Value,
    ) -> Result<Value, Failure> {
        let Some(selector) = &map.item_selector else {
            return Ok(item);
        };
        let mut item_context = context.clone();
        item_context["Map"] = json!({"Item": {"Index": index, "Value": item}});
        match run.state.query_language {
            QueryLanguage::JsonPath => {
                let scope = Scope {
                    input: effective,
                    context: &item_context,
                    variables,
                };
                self.payload_template_value(run, selector, &scope)
            }
            QueryLanguage::Jsonata => {
                let bindings = self.bindings(run, &item_context, input, None, None, variables);
                self.jsonata(run, "ItemSelector", selector, &bindings)
            }
        }
    }
}

/// An integer given as a JSON number or as text (AWS reads these fields' values as text).
/// AWS's cause when a Map field that takes an integer (or its `...Path`) does not get one.
fn not_an_integer(field: &str, dynamic: &Dynamic, value: &Value) -> String {
    match dynamic {
        Dynamic::Path(path) => format!(
            "The {field}Path field refers to value \"{}\" which is not a valid integer: {path}",
            quoted(value)
        ),
        _ => format!(
            "{field} must be a non-negative integer, not {}",
            text(value)
        ),
    }
}

fn integer_text(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A number given as a JSON number or as text.
fn float_text(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// A path as Jayway JsonPath (which AWS runs) prints it in errors: `$.a.b[0]` → `$['a']['b'][0]`.
fn jayway_path(path: &str) -> String {
    let Some(rest) = path.strip_prefix('$') else {
        return path.to_owned();
    };
    let mut out = String::from("$");
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut name = String::new();
                while let Some(&next) = chars.peek() {
                    if next == '.' || next == '[' {
                        break;
                    }
                    name.push(next);
                    chars.next();
                }
                out.push_str(&format!("['{name}']"));
            }
            '[' => {
                out.push('[');
                for next in chars.by_ref() {
                    out.push(next);
                    if next == ']' {
                        break;
                    }
                }
            }
            _ => return path.to_owned(),
        }
    }
    out
}

/// AWS waits for a timestamp to the second: it drops the fraction.
fn whole_seconds(time: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::Timelike;
    time.with_nanosecond(0).unwrap_or(time)
}

fn operand_literal(operand: &Operand) -> &Value {
    match operand {
        Operand::Literal(v) => v,
        Operand::Path(_) => &Value::Null,
    }
}

fn merge_variables(variables: &mut Map<String, Value>, assigned: Map<String, Value>) {
    for (k, v) in assigned {
        variables.insert(k, v);
    }
}

fn result_path_failure(run: &StateRun<'_>, path: &str, input: &Value, error: PathError) -> Failure {
    match error {
        PathError::ResultPathMatchFailure { .. } => {
            run.error(names::RESULT_PATH_MATCH_FAILURE, error)
        }
        other => run.error(
            names::RESULT_PATH_MATCH_FAILURE,
            format!(
                "Unable to apply ReferencePath {path} to input {}: {other}",
                text(input)
            ),
        ),
    }
}

/// The delay before retry number `attempt` (0-based): interval × rate^attempt, capped by
/// MaxDelaySeconds, and drawn uniformly below that with FULL jitter.
pub(crate) fn retry_delay(retrier: &Retrier, attempt: u64) -> Duration {
    let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
    let mut seconds = retrier.interval_seconds as f64 * retrier.backoff_rate.powi(exponent);
    if let Some(max) = retrier.max_delay_seconds {
        seconds = seconds.min(max as f64);
    }
    if !seconds.is_finite() {
        seconds = retrier.max_delay_seconds.unwrap_or(99_999_999) as f64;
    }
    if retrier.full_jitter {
        seconds *= rand::random::<f64>();
    }
    Duration::from_secs_f64(seconds.clamp(0.0, 99_999_999.0))
}

/// How a Task resource reaches a handler.
struct TaskTarget {
    handler_name: String,
    payload: Value,
    resource_type: String,
    resource: String,
    is_lambda: bool,
    /// A bare Lambda function ARN: AWS records LambdaFunction* events.
    legacy_lambda: bool,
    wraps_lambda_response: bool,
}

impl TaskTarget {
    fn of(resource: &str, effective: &Value) -> TaskTarget {
        if let Some(service) = resource.strip_prefix("arn:aws:states:::") {
            let (resource_type, action) = service.split_once(':').unwrap_or((service, ""));
            let base_action = action
                .trim_end_matches(".waitForTaskToken")
                .trim_end_matches(".sync:2")
                .trim_end_matches(".sync");
            if resource_type == "lambda" && base_action == "invoke" {
                let function = effective
                    .get("FunctionName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                return TaskTarget {
                    handler_name: lambda_function_name(function).to_owned(),
                    payload: effective
                        .get("Payload")
                        .cloned()
                        .unwrap_or_else(|| json!({})),
                    resource_type: "lambda".into(),
                    resource: action.to_owned(),
                    is_lambda: true,
                    legacy_lambda: false,
                    wraps_lambda_response: true,
                };
            }
            return TaskTarget {
                handler_name: format!("arn:aws:states:::{resource_type}:{base_action}"),
                payload: effective.clone(),
                resource_type: resource_type.to_owned(),
                resource: action.to_owned(),
                is_lambda: false,
                legacy_lambda: false,
                wraps_lambda_response: false,
            };
        }
        let is_lambda_arn = resource.starts_with("arn:") && resource.contains(":lambda:");
        let is_arn = resource.starts_with("arn:");
        TaskTarget {
            handler_name: if is_lambda_arn || !is_arn {
                lambda_function_name(resource).to_owned()
            } else {
                resource.to_owned()
            },
            payload: effective.clone(),
            resource_type: if is_arn && !is_lambda_arn {
                "activity".into()
            } else {
                "lambda".into()
            },
            resource: resource.to_owned(),
            is_lambda: is_lambda_arn || !is_arn,
            legacy_lambda: is_lambda_arn || !is_arn,
            wraps_lambda_response: false,
        }
    }
}

/// The response of the `lambda:invoke` integration around a function's result.
fn lambda_response(payload: Value) -> Value {
    let request_id = uuid::Uuid::new_v4().to_string();
    json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "X-Amz-Executed-Version": ["$LATEST"],
                "x-amzn-Remapped-Content-Length": ["0"],
                "Connection": ["keep-alive"],
                "x-amzn-RequestId": [request_id],
                "Content-Type": ["application/json"],
            },
            "HttpHeaders": {
                "Connection": "keep-alive",
                "Content-Type": "application/json",
                "X-Amz-Executed-Version": "$LATEST",
                "x-amzn-Remapped-Content-Length": "0",
                "x-amzn-RequestId": request_id,
            },
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    })
}

/// A function error as AWS reports it: the error type as the error, and the function's
/// error payload as the cause.
fn lambda_failure(failure: TaskFailure) -> Failure {
    let cause = json!({"errorMessage": failure.cause, "errorType": failure.error}).to_string();
    Failure::new(failure.error, cause)
}
