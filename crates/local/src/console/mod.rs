//! The web console of `runway local`: read-only pages on the Step Functions API's port (the
//! API takes only POST, the console only GET).
//!
//! - `/`: job executions with status, pool and repository filters;
//! - `/executions/{name}`: one execution drawn on the job machine's graph, the path it took,
//!   where it is now, and each state's and event's input and output;
//! - `/pools`: each pool's queue, slots and runners by state;
//! - `/metrics`: the figures of the stack's CloudWatch dashboard, from the recorded samples.
//!
//! Pages are shells filled in by one embedded script that polls the JSON under
//! `/console/api/` every second; nothing is fetched from anywhere else.

pub mod api;
mod assets;
mod client;
pub mod graph;
mod routes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use runway_asl::StepFunctions;
use runway_jobflow::metrics::Recorded;
use runway_runner_logs::{FileRunnerLogs, RunnerLogLocation, RunnerLogReader, StreamName};
use runway_store::Store;

use crate::system::PoolSummary;
pub use client::{ConsoleRunnerLogs, step_functions_client};
use graph::{Graph, GraphError};

/// What the console reads: the engine, the store, the pools and the recorded metrics.
/// Clones share everything.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

struct Inner {
    service: StepFunctions,
    machine_arn: String,
    store: Arc<dyn Store>,
    pools: Vec<PoolSummary>,
    metrics: Recorded,
    graph: Graph,
    /// The local runners' output files.
    runner_logs: FileRunnerLogs,
    /// Execution name → the pool its Route step chose (`None`: no pool takes it). A route
    /// never changes, so each history is searched for it once.
    routes: Mutex<HashMap<String, Option<String>>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("machine_arn", &self.inner.machine_arn)
            .field("pools", &self.inner.pools)
            .finish_non_exhaustive()
    }
}

impl Console {
    /// A console over the executions of `machine_arn`, whose definition is `definition`.
    pub fn new(
        service: StepFunctions,
        machine_arn: impl Into<String>,
        definition: &str,
        store: Arc<dyn Store>,
        pools: Vec<PoolSummary>,
        metrics: Recorded,
        runner_logs: FileRunnerLogs,
    ) -> Result<Console, GraphError> {
        Ok(Console {
            inner: Arc::new(Inner {
                service,
                machine_arn: machine_arn.into(),
                store,
                pools,
                metrics,
                graph: Graph::of_definition(definition)?,
                runner_logs,
                routes: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The pages and their JSON, as GET routes.
    pub fn router(&self) -> axum::Router {
        routes::router(self.clone())
    }

    /// The job machine, laid out.
    pub fn graph(&self) -> &Graph {
        &self.inner.graph
    }
}

impl Console {
    /// What local runner `name` printed; `None` when it kept no output.
    pub async fn runner_log(
        &self,
        name: &str,
    ) -> Result<Option<Vec<runway_runner_logs::LogLine>>, runway_runner_logs::RunnerLogError> {
        self.inner
            .runner_logs
            .read(&RunnerLogLocation {
                group: "local".into(),
                stream: StreamName::Exact(name.to_owned()),
            })
            .await
    }
}
