//! The `wait-for-slot` step's Lambda.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runway_lambda_support::run_step(runway_jobflow::Step::WaitForSlot).await
}
