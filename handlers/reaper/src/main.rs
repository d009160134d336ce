//! The `reap` Lambda: `{"sweep": "orphan-runners" | "offline-runners" | "stale-slots"}` →
//! the sweep's report.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runway_lambda_support::reaper::run_reaper().await
}
