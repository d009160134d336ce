//! One whole job over loopback HTTP: queue a job, register a JIT runner, let the runner
//! stand-in take it, run it (zero duration) and finish, with the three webhooks recorded.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use runway_github_emulator::runner::{self, RunOutcome, RunnerOptions};
use runway_github_emulator::{Emulator, EmulatorConfig, NewJob, Scope};

fn job_loop(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let emulator = runtime
        .block_on(Emulator::start(EmulatorConfig::default()))
        .expect("emulator");
    let mut n = 0_u64;
    c.bench_function("job_loop/queue_register_run_finish", |b| {
        b.to_async(&runtime).iter(|| {
            n += 1;
            let job = emulator
                .create_job(NewJob::new("octo-org/app", &["linux"]).lasting(Duration::ZERO))
                .expect("job");
            let jit = emulator
                .generate_jitconfig(
                    Scope::organization("octo-org"),
                    &format!("bench-{n}"),
                    &["linux"],
                )
                .expect("jit config");
            let mut options = RunnerOptions::new(
                Some(emulator.base_url().to_string()),
                jit.encoded_jit_config,
            );
            options.poll_wait = Duration::from_secs(5);
            async move {
                let outcome = runner::run(options).await.expect("runner");
                assert!(
                    matches!(outcome, RunOutcome::Completed { job_id, .. } if job_id == job.job_id)
                );
            }
        })
    });
    runtime.block_on(emulator.shutdown());
}

criterion_group!(benches, job_loop);
criterion_main!(benches);
