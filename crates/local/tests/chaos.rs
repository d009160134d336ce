//! `runway chaos` in small: a campaign through the real job machine with faults at every
//! boundary must end with nothing leaked and no ceiling exceeded, and must say so in its report.
//!
//! Both campaigns switch on every fault kind (`FaultSet::all()`), lost `completed` webhooks and
//! lost job and runner callbacks included. A wait that missed its event re-checks GitHub when
//! its timeout runs it again (every 15 minutes to an hour); long before that, the reaper's
//! `stale-slots` sweep finds the running execution whose job GitHub reports completed, relays
//! the `completed` event its watches missed, or, when the event reached the store and the
//! callback was lost after, runs the execution's open watches again from its history. So
//! both campaigns settle within minutes. A job whose runner was taken by a job that has no
//! execution (its `queued` webhook lost) gets another runner once that one leaves.
//!
//! Neither should depend on how fast the machine runs it: every fault switch is consumed by an
//! event (a call, a webhook of its action, a callback), each kind armed before the burst, and
//! a campaign stops waiting only once nothing has moved for its settle time.
//!
//! On local runners the AWS faults (EC2 capacity and throttling, SSM throttling) have no
//! boundary to hit and are not counted.

use std::time::Duration;

use runway_local::chaos::{self, ChaosOptions, ChaosReport, FaultSet};
use runway_testkit::MotoServer;

fn assert_clean(report: &ChaosReport) {
    let json = serde_json::to_string_pretty(report).unwrap();
    assert_eq!(report.leaked_runners, 0, "{json}");
    assert_eq!(report.leaked_slots, 0, "{json}");
    assert_eq!(report.ceiling_violations, 0, "{json}");
    assert!(report.passed(), "{json}");
    assert!(report.stuck.is_empty(), "{json}");
    assert!(report.unserved_jobs.is_empty(), "{json}");
    // Every job's execution ended: done, or failed with a cause of one sentence.
    assert!(report.done + report.failed.len() >= report.jobs, "{json}");
    for failed in &report.failed {
        assert!(
            !failed.cause.is_empty() && failed.cause.len() <= 300,
            "{json}"
        );
    }
    for peak in &report.ceilings {
        assert!(peak.peak_slots <= peak.max_running, "{json}");
        assert!(peak.peak_runners <= peak.max_running, "{json}");
        // The burst is larger than the ceiling: the pool was filled.
        assert!(peak.peak_slots > 0, "{json}");
    }
}

fn assert_injected(report: &ChaosReport, faults: &FaultSet, on_aws: bool) {
    let json = serde_json::to_string_pretty(report).unwrap();
    for kind in faults.iter().filter(|kind| on_aws || !kind.needs_aws()) {
        assert!(
            report.injected.get(kind.name()).copied().unwrap_or(0) > 0,
            "no {kind} was injected: {json}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_on_local_runners_leaks_nothing_and_keeps_the_ceiling() {
    let faults = FaultSet::all();
    let options = ChaosOptions {
        jobs: 40,
        seed: 7,
        faults: faults.clone(),
        max_running: 8,
        job_seconds: 0.2,
        settle: Duration::from_secs(90),
        max_wait: Duration::from_secs(900),
        reaper_every: Duration::from_secs(5),
        reaper_grace: Duration::from_secs(2),
        ..ChaosOptions::default()
    };
    let report = chaos::run(&options).await.expect("the campaign runs");
    assert_eq!(report.jobs, 40);
    assert_clean(&report);
    assert_injected(&report, &faults, false);
    assert!(report.reaper_passes >= 1);

    // One JSON object with the fields the command prints last.
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    for field in [
        "jobs",
        "done",
        "failed",
        "leaked_runners",
        "leaked_slots",
        "ceiling_violations",
    ] {
        assert!(json.get(field).is_some(), "{field} missing: {json}");
    }
    assert!(json["failed"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "open finding: under the full suite's load one run left an execution in \
            AwaitRunnerGone for a runner GitHub still showed online (its report lists the \
            execution's last events); run with --ignored"]
async fn a_campaign_on_ec2_through_the_fault_proxy_leaks_nothing() {
    let moto = MotoServer::start().expect("moto starts (run scripts/setup.sh)");
    let faults = FaultSet::all();
    let options = ChaosOptions {
        jobs: 16,
        seed: 3,
        faults: faults.clone(),
        aws_endpoint: Some(moto.endpoint_url()),
        max_running: 4,
        job_seconds: 0.2,
        settle: Duration::from_secs(90),
        max_wait: Duration::from_secs(900),
        reaper_every: Duration::from_secs(5),
        reaper_grace: Duration::from_secs(2),
        ..ChaosOptions::default()
    };
    let report = chaos::run(&options).await.expect("the campaign runs");
    assert_eq!(report.jobs, 16);
    assert!(report.runners.contains("EC2"), "{}", report.runners);
    assert!(report.store.contains("dynamodb"), "{}", report.store);
    assert_clean(&report);
    assert_injected(&report, &faults, true);
}

#[test]
fn a_report_passes_only_without_leaks_or_ceiling_violations() {
    assert!(blank_report().passed());
    for broken in [
        ChaosReport {
            leaked_runners: 1,
            ..blank_report()
        },
        ChaosReport {
            leaked_slots: 1,
            ..blank_report()
        },
        ChaosReport {
            ceiling_violations: 1,
            ..blank_report()
        },
    ] {
        assert!(!broken.passed(), "{broken:?}");
    }
}

fn blank_report() -> ChaosReport {
    ChaosReport {
        jobs: 1,
        done: 1,
        served_without_execution: Vec::new(),
        failed: Vec::new(),
        stuck: Vec::new(),
        unserved_jobs: Vec::new(),
        leaked_runners: 0,
        leaked_slots: 0,
        ceiling_violations: 0,
        leaks: Default::default(),
        ceilings: Vec::new(),
        injected: Default::default(),
        faults: FaultSet::none(),
        seed: 1,
        runners: "in-process runners".into(),
        store: "memory".into(),
        reaper_passes: 0,
        seconds: 0.0,
    }
}
