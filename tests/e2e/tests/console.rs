//! The web console of `runway local`, over real jobs: its JSON answers for an execution that
//! ran on a local runner, and its pages loaded in headless Chromium (Debian's `chromium`,
//! installed by `scripts/setup.sh`): no console errors, the state graph with every state, and
//! a running job's current state moving on an open page.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use runway_github_emulator::{JobStatus, NewJob};
use serde_json::Value;

const LINUX: &[&str] = &["self-hosted", "linux"];

/// Every state of the job machine (branches included), read from the definition.
fn job_machine_states() -> BTreeSet<String> {
    fn walk(scope: &Value, out: &mut BTreeSet<String>) {
        for (name, state) in scope["States"].as_object().unwrap() {
            out.insert(name.clone());
            for branch in state["Branches"].as_array().into_iter().flatten() {
                walk(branch, out);
            }
        }
    }
    let mut states = BTreeSet::new();
    walk(
        &serde_json::from_str(runway_local::JOB_STATE_MACHINE).unwrap(),
        &mut states,
    );
    states
}

async fn get_json(url: &str) -> Value {
    let response = reqwest::get(url).await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

fn job(seconds: f64) -> NewJob {
    let mut job = NewJob::new("octo-org/app", LINUX).lasting(Duration::from_secs_f64(seconds));
    job.name = Some("build".to_owned());
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_json_describes_a_job_that_ran_on_a_local_runner() {
    let system = start(&pool("linux", LINUX, QUICK, &runners(&[]))).await;
    let console = system.console_url().trim_end_matches('/').to_owned();
    assert_eq!(system.console_url(), format!("{}/", system.sfn_url()));
    let created = emulator(&system).create_job(job(0.5)).unwrap();
    let execution = ended(&system, created.job_id).await;
    assert_succeeded(&system, &execution, "Done");

    // The list: name, status, the pool Route chose and the repository; filters narrow it.
    let list = get_json(&format!("{console}/console/api/executions")).await;
    let row = &list["executions"][0];
    assert_eq!(row["name"], execution.name.as_str(), "{list:#}");
    assert_eq!(row["status"], "SUCCEEDED");
    assert_eq!(row["pool"], "linux");
    assert_eq!(row["repository"], "octo-org/app");
    assert_eq!(row["job"], "build");
    assert!(row["stop"].is_string(), "{row:#}");
    assert_eq!(list["pools"], serde_json::json!(["linux"]));
    assert_eq!(list["repositories"], serde_json::json!(["octo-org/app"]));
    for (query, expected) in [
        ("status=SUCCEEDED", 1),
        ("status=running", 0),
        ("pool=linux", 1),
        ("pool=gpu", 0),
        ("repository=octo-org/app&status=SUCCEEDED", 1),
        ("repository=octo-org/api", 0),
    ] {
        let list = get_json(&format!("{console}/console/api/executions?{query}")).await;
        assert_eq!(
            list["executions"].as_array().unwrap().len(),
            expected,
            "{query}: {list:#}"
        );
        assert_eq!(list["total"], 1);
    }

    // The graph has every state of the machine.
    let graph = get_json(&format!("{console}/console/api/graph")).await;
    let drawn: BTreeSet<String> = graph["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(drawn, job_machine_states());
    let edges: BTreeSet<(String, String)> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from"].as_str().unwrap().into(),
                e["to"].as_str().unwrap().into(),
            )
        })
        .collect();

    // The path is the history's: the states entered, each reached over an edge of the graph,
    // nothing current once the execution ended, and each state's input and output.
    let detail = get_json(&format!(
        "{console}/console/api/executions/{}",
        execution.name
    ))
    .await;
    let entered: BTreeSet<String> = states(&system, &execution).into_iter().collect();
    let marked: BTreeSet<String> = detail["path"]["states"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(marked, entered);
    assert!(detail["path"]["current"].as_array().unwrap().is_empty());
    for state in detail["path"]["states"].as_object().unwrap().values() {
        assert_eq!(state["mark"], "visited", "{state:#}");
    }
    let taken: Vec<(String, String)> = detail["path"]["taken"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t[0].as_str().unwrap().into(), t[1].as_str().unwrap().into()))
        .collect();
    for edge in &taken {
        assert!(edges.contains(edge), "{edge:?} was taken but is not drawn");
    }
    // Every state entered but the machine's first was reached over one.
    for state in &entered {
        let first = state == "Route";
        assert_eq!(
            taken.iter().any(|(_, to)| to == state),
            !first,
            "{state}: {taken:?}"
        );
    }
    for edge in [
        ("Route", "IsItOurs"),
        ("Provision", "AwaitRunnerBusy"),
        ("Release", "Done"),
    ] {
        assert!(
            taken.contains(&(edge.0.into(), edge.1.into())),
            "{edge:?}: {taken:?}"
        );
    }
    let route = &detail["path"]["states"]["Route"]["visits"][0];
    let output: Value = serde_json::from_str(route["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["route"]["pool"], "linux");
    assert!(route["input"].as_str().unwrap().contains("octo-org/app"));
    let history = history(&system, &execution);
    assert_eq!(detail["events"].as_array().unwrap().len(), history.len());
    assert_eq!(detail["events"][0]["type"], "ExecutionStarted");

    // Pools: the ceiling, nothing held or queued now, the runner's record gone.
    let pools = get_json(&format!("{console}/console/api/pools")).await;
    let linux = &pools["pools"][0];
    assert_eq!(linux["name"], "linux");
    assert_eq!(linux["slots_in_use"], 0);
    assert_eq!(linux["queue_depth"], 0);
    assert!(linux["max_running"].as_u64().unwrap() > 0);
    let busy = linux["runners_by_state"]["busy"].as_u64().unwrap();
    assert_eq!(busy, 0, "{linux:#}");

    // Metrics: the dashboard's widgets, with the launch counted.
    let metrics = get_json(&format!("{console}/console/api/metrics")).await;
    assert_eq!(metrics["panels"].as_array().unwrap().len(), 8);
    let metric = |name: &str| {
        metrics["panels"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| p["metrics"].as_array().unwrap())
            .find(|m| m["name"] == name)
            .unwrap()
            .clone()
    };
    let launches = metric("RunnerLaunches");
    assert_eq!(launches["all"]["count"], 1, "{launches:#}");
    // The runner took the job and was torn down after it: its life is split once.
    for name in ["RunnerBootSeconds", "JobRunSeconds", "RunnerIdleSeconds"] {
        let figure = metric(name);
        assert_eq!(figure["all"]["count"], 1, "{name}: {figure:#}");
    }

    // An unknown execution is a 404; the API's POSTs still work on the same port.
    let missing = reqwest::get(format!("{console}/console/api/executions/nope"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let listed = reqwest::Client::new()
        .post(system.sfn_url())
        .header("X-Amz-Target", "AWSStepFunctions.ListStateMachines")
        .header("Content-Type", "application/x-amz-json-1.0")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    system.shutdown().await;
}

/// What headless Chromium made of a page: the DOM once its scripts ran, and the console
/// lines it logged.
struct Loaded {
    dom: String,
    console: Vec<String>,
}

/// Loads `url` in headless Chromium, lets its scripts run (and poll) for a few seconds of
/// virtual time, and returns the DOM. Fails when chromium is missing: CI installs it.
async fn load(url: &str) -> Loaded {
    let profile = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            // Containers often give /dev/shm a few megabytes; Chromium then crashes without it.
            "--disable-dev-shm-usage",
            "--enable-logging=stderr",
            "--v=0",
            "--no-first-run",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(Duration::from_secs(90), run).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "chromium is not on PATH; run scripts/setup.sh (it installs Debian's chromium) \
             before the console tests"
        ),
        Ok(Err(error)) => panic!("cannot run chromium: {error}"),
        Err(_) => panic!("chromium did not finish loading {url} in 90 s"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && dom.contains("</html>"),
        "chromium failed on {url}: {}\n{stderr}",
        output.status
    );
    // Chromium logs every console message, and every uncaught exception, as `…:CONSOLE…`.
    let console = stderr
        .lines()
        .filter(|line| line.contains(":CONSOLE") || line.contains("Uncaught"))
        .map(str::to_owned)
        .collect();
    Loaded { dom, console }
}

impl Loaded {
    fn assert_clean(&self, page: &str) {
        assert!(
            self.console.is_empty(),
            "{page} logged to the console:\n{}",
            self.console.join("\n")
        );
    }

    /// The opening tag of the element with `id`, and where it ends.
    fn tag(&self, id: &str) -> (&str, usize) {
        let start = self
            .dom
            .find(&format!(" id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id} in:\n{}", self.dom));
        let end = start + self.dom[start..].find('>').unwrap_or(0);
        (&self.dom[start..end], end + 1)
    }

    /// The text of the element with `id` (no nested elements).
    fn text_of(&self, id: &str) -> String {
        let (_, start) = self.tag(id);
        let end = self.dom[start..].find('<').unwrap_or(0);
        self.dom[start..start + end].to_owned()
    }

    fn attribute(&self, id: &str, name: &str) -> String {
        let (tag, _) = self.tag(id);
        let marker = format!(" {name}=\"");
        let start = tag
            .find(&marker)
            .unwrap_or_else(|| panic!("#{id} has no {name}: {tag}"))
            + marker.len();
        let end = tag[start..].find('"').unwrap_or(0);
        tag[start..start + end].to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_pages_load_in_chromium_and_show_a_running_job_move() {
    // The runner comes online only when the test says, so the job is caught at two moments.
    let gate = tempfile::tempdir().unwrap();
    let system = start(&pool(
        "linux",
        LINUX,
        QUICK,
        &runners(&[("RUNWAY_E2E_GATE_DIR", gate.path())]),
    ))
    .await;
    let console = system.console_url().to_owned();
    let emulator = emulator(&system);
    let created = emulator.create_job(job(15.0)).unwrap();
    wait_for_state(&system, created.job_id, "AwaitRunnerBusy").await;
    let name = system.execution_for_job(created.job_id).unwrap().name;

    // The list shows the running execution with its pool and repository.
    let list = load(&console).await;
    list.assert_clean("the executions page");
    assert!(
        list.dom.contains(&format!("data-execution=\"{name}\"")),
        "{}",
        list.dom
    );
    for text in ["RUNNING", ">linux<", ">octo-org/app<", "1 of 1 executions"] {
        assert!(list.dom.contains(text), "{text}:\n{}", list.dom);
    }
    let filtered = load(&format!("{console}?status=SUCCEEDED")).await;
    filtered.assert_clean("the filtered executions page");
    assert!(!filtered.dom.contains(&format!("data-execution=\"{name}\"")));
    assert!(
        filtered.dom.contains("0 of 1 executions"),
        "{}",
        filtered.dom
    );

    // The execution page, opened while the job waits for its runner and left open while the
    // runner comes online: it draws every state and shows the job move without a reload.
    let page = format!("{console}executions/{name}");
    let live = tokio::spawn(async move { load(&page).await });
    // Long enough for the page to show where the job waits (Chromium starts in about 1 s).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let runners = emulator
        .wait_for_runners(JOB_TIMEOUT, |runners| !runners.is_empty())
        .await
        .expect("a runner was registered");
    let runner = runner_launched_for(&runners, created.job_id).unwrap();
    std::fs::write(gate.path().join(&runner.name), "").unwrap();
    emulator
        .wait_for_job(created.job_id, JobStatus::InProgress, JOB_TIMEOUT)
        .await
        .expect("the job started");
    wait_for_state(&system, created.job_id, "AwaitRunnerGone").await;

    // The pools page, with the job holding its slot on a busy runner.
    let pools = load(&format!("{console}pools")).await;
    pools.assert_clean("the pools page");
    assert!(pools.dom.contains("data-pool=\"linux\""), "{}", pools.dom);
    for cell in [
        "<td class=\"slots\">1 / ",
        "<td class=\"runners-busy\">1</td>",
    ] {
        assert!(pools.dom.contains(cell), "{cell}:\n{}", pools.dom);
    }

    let live = live.await.unwrap();
    live.assert_clean("the execution page");
    assert!(live.dom.contains("<svg id=\"graph\""), "{}", live.dom);
    for state in job_machine_states() {
        assert!(
            live.dom.contains(&format!(">{state}</text>")),
            "{state} is not drawn:\n{}",
            live.dom
        );
    }
    assert!(live.dom.contains("node type-task current"), "{}", live.dom);
    assert!(live.dom.contains("edge kind-next taken"), "{}", live.dom);
    assert!(live.dom.contains("ExecutionStarted"), "{}", live.dom);
    // The current states the open page showed, oldest first.
    let seen = live.attribute("current-states", "data-seen");
    let moments: Vec<&str> = seen.split(" | ").collect();
    let (first, last) = (moments[0], moments[moments.len() - 1]);
    assert!(
        first.contains("AwaitRunnerBusy"),
        "the page did not first show the job waiting: {seen}"
    );
    assert_ne!(first, last, "the page did not show the job move: {seen}");
    assert!(
        !last.contains("AwaitRunnerBusy"),
        "the page still shows the runner awaited: {seen}"
    );
    assert_eq!(live.text_of("current-states"), last);

    let execution = ended(&system, created.job_id).await;
    assert_succeeded(&system, &execution, "Done");

    // The metrics page: every figure of the dashboard, with the launch counted.
    let metrics = load(&format!("{console}metrics")).await;
    metrics.assert_clean("the metrics page");
    for metric in [
        "JobWaitSeconds",
        "QueueDepth",
        "OldestWaitSeconds",
        "RunnerLaunches",
        "LaunchFallbacks",
        "LaunchFailures",
        "SpotReclaims",
        "SlotsInUse",
        "RunnerLifetimeSeconds",
        "IdleRunnersTornDown",
        "RunnerBootSeconds",
        "JobRunSeconds",
        "RunnerIdleSeconds",
        "PolicyDecisionMilliseconds",
        "PolicyFallbacks",
        "SlotWaits",
        "JobsRejected",
    ] {
        assert!(
            metrics.dom.contains(&format!("data-metric=\"{metric}\"")),
            "{metric}:\n{}",
            metrics.dom
        );
    }
    assert!(
        metrics
            .dom
            .contains("Launches, fallbacks to on-demand, failures, spot reclaims"),
        "{}",
        metrics.dom
    );
    system.shutdown().await;
}
