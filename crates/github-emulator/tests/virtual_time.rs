//! The emulator reads time through `runway_clock::Clock`: on virtual time an hour passes at once
//! and every timestamp shows it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use runway_clock::{Clock, VirtualClock};
use runway_github_emulator::{DeliveryOutcome, Emulator, EmulatorConfig, JobStatus, NewJob};

#[tokio::test(start_paused = true)]
async fn timestamps_and_waits_follow_the_configured_clock() {
    let start: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let clock = VirtualClock::starting_at(start);
    let emulator = Emulator::start(EmulatorConfig {
        clock: clock.clone().shared(),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let wall = std::time::Instant::now();
    let job = emulator
        .create_job(NewJob::new("octo-org/app", &["linux"]))
        .unwrap();
    // Nobody runs it: waiting an hour of virtual time for it times out at once.
    let waited = emulator
        .wait_for_job(job.job_id, JobStatus::Completed, Duration::from_secs(3600))
        .await;
    assert!(waited.is_none());
    assert_eq!(clock.now(), start + chrono::Duration::hours(1));
    let cancelled = emulator.cancel_job(job.job_id).unwrap();
    assert_eq!(cancelled.created_at, start);
    assert_eq!(
        cancelled.completed_at,
        Some(start + chrono::Duration::hours(1))
    );
    assert!(wall.elapsed() < Duration::from_secs(30));

    // With no webhook target the deliveries are recorded, with the virtual timestamps.
    let deliveries = emulator.deliveries();
    assert_eq!(deliveries.len(), 2);
    assert!(
        deliveries
            .iter()
            .all(|d| d.outcome == DeliveryOutcome::Skipped)
    );
    let completed = &deliveries[1].payload["workflow_job"];
    assert_eq!(completed["created_at"], "2026-01-01T00:00:00Z");
    assert_eq!(completed["completed_at"], "2026-01-01T01:00:00Z");
    assert_eq!(completed["conclusion"], "cancelled");
    emulator.shutdown().await;
}
