//! The EC2 boot scripts for real: `shellcheck` on the Linux script, and the script run by
//! bash against moto (SSM and S3 on 127.0.0.1) with an IMDS stand-in, a stand-in runner
//! package and stand-ins for `shutdown`, `sudo`, `useradd` and `chown`.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, put};
use runway_providers::{
    BootHooks, BootLogs, BootOs, BootScript, CachedRunner, DEFAULT_IMDS_URL, RunnerInstall,
};
use runway_runner_logs::{
    CloudWatchRunnerLogs, RunnerLogGroups, RunnerLogLocation, RunnerLogReader, StreamName,
};
use runway_testkit::MotoServer;
use sha2::{Digest, Sha256};

const INSTANCE_ID: &str = "i-0b0075c41p7e57000";
const VERSION: &str = "2.321.0";

fn boot(
    prefix: &str,
    runner_dir: &Path,
    imds_url: &str,
    install: Option<RunnerInstall>,
) -> BootScript {
    BootScript {
        jit_prefix: prefix.to_string(),
        runner_dir: runner_dir.display().to_string(),
        runner_user: "runner".to_string(),
        imds_url: imds_url.to_string(),
        install,
        hooks: BootHooks {
            before_runner: Some("echo before > \"$(dirname \"$0\")/../before-ran\"".into()),
            job_started: Some("echo started".into()),
            job_completed: Some("echo completed".into()),
        },
        logs: None,
    }
}

fn install(bucket: &str, sha256: &str) -> RunnerInstall {
    let package = |platform: &str| {
        Some(CachedRunner {
            key: format!("runners/{VERSION}/actions-runner-{platform}-{VERSION}.tar.gz"),
            sha256: sha256.to_string(),
        })
    };
    RunnerInstall {
        bucket: bucket.to_string(),
        version: VERSION.to_string(),
        linux_x64: package("linux-x64"),
        linux_arm64: package("linux-arm64"),
        win_x64: Some(CachedRunner {
            key: format!("runners/{VERSION}/actions-runner-win-x64-{VERSION}.zip"),
            sha256: sha256.to_string(),
        }),
    }
}

#[test]
fn the_linux_boot_script_passes_shellcheck() {
    let script = boot(
        "/runway/ci/jit",
        Path::new("/opt/actions-runner"),
        DEFAULT_IMDS_URL,
        Some(install("ci-runner-cache", &"a".repeat(64))),
    );
    let mut bare = script.clone();
    bare.install = None;
    bare.hooks = BootHooks::default();
    for script in [script, bare] {
        let text = script.render(BootOs::Linux).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("user-data.sh");
        std::fs::write(&path, &text).unwrap();
        let output = Command::new("shellcheck")
            .arg(&path)
            .output()
            .expect("shellcheck runs (scripts/setup.sh installs it)");
        assert!(
            output.status.success(),
            "shellcheck:\n{}\n{text}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

/// Answers as IMDSv2 does, for one instance with a role.
async fn imds_stand_in() -> String {
    fn tokened(
        headers: &HeaderMap,
        answer: &'static str,
    ) -> Result<&'static str, axum::http::StatusCode> {
        match headers.get("x-aws-ec2-metadata-token") {
            Some(token) if token == "imds-token" => Ok(answer),
            _ => Err(axum::http::StatusCode::UNAUTHORIZED),
        }
    }
    let app = Router::new()
        .route(
            "/latest/api/token",
            put(|headers: HeaderMap| async move {
                if headers.contains_key("x-aws-ec2-metadata-token-ttl-seconds") {
                    Ok("imds-token")
                } else {
                    Err(axum::http::StatusCode::BAD_REQUEST)
                }
            }),
        )
        .route(
            "/latest/meta-data/instance-id",
            get(|headers: HeaderMap| async move { tokened(&headers, INSTANCE_ID) }),
        )
        .route(
            "/latest/meta-data/placement/region",
            get(|headers: HeaderMap| async move { tokened(&headers, "us-east-1") }),
        )
        .route(
            "/latest/meta-data/iam/security-credentials/",
            get(|headers: HeaderMap| async move { tokened(&headers, "runner-role") }),
        )
        .route(
            "/latest/meta-data/iam/security-credentials/runner-role",
            get(|headers: HeaderMap| async move {
                tokened(
                    &headers,
                    r#"{"Code":"Success","AccessKeyId":"testing","SecretAccessKey":"testing","Token":"testing","Expiration":"2099-01-01T00:00:00Z"}"#,
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{address}")
}

/// A runner package whose `run.sh` records its arguments and hook variables.
fn stand_in_package(dir: &Path) -> Vec<u8> {
    let content = dir.join("package");
    std::fs::create_dir_all(content.join("bin")).unwrap();
    std::fs::write(
        content.join("run.sh"),
        "#!/bin/bash\n\
         here=$(cd \"$(dirname \"$0\")\" && pwd)\n\
         printf '%s\\n' \"$@\" > \"$here/ran-with\"\n\
         printf '%s\\n' \"$ACTIONS_RUNNER_HOOK_JOB_STARTED\" \"$ACTIONS_RUNNER_HOOK_JOB_COMPLETED\" > \"$here/hooks\"\n\
         echo 'Connected to GitHub'\n\
         bash \"$ACTIONS_RUNNER_HOOK_JOB_STARTED\" >> \"$here/job-log\" 2>&1\n\
         echo 'Running job: build'\n\
         bash \"$ACTIONS_RUNNER_HOOK_JOB_COMPLETED\" >> \"$here/job-log\" 2>&1\n\
         echo 'Job build completed with result: Succeeded'\n",
    )
    .unwrap();
    std::fs::write(
        content.join("bin/installdependencies.sh"),
        "#!/bin/bash\ntouch \"$(dirname \"$0\")/../dependencies-installed\"\n",
    )
    .unwrap();
    for file in ["run.sh", "bin/installdependencies.sh"] {
        let status = Command::new("chmod")
            .arg("755")
            .arg(content.join(file))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let archive = dir.join("package.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&content)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(archive).unwrap()
}

/// `shutdown`, `sudo`, `useradd` and `chown` that record what they were asked.
fn stand_ins(dir: &Path) -> PathBuf {
    let bin = dir.join("stand-ins");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("calls");
    for (name, body) in [
        ("shutdown", "echo \"shutdown $*\" >> \"$CALLS\""),
        ("useradd", "echo \"useradd $*\" >> \"$CALLS\""),
        ("chown", "echo \"chown $*\" >> \"$CALLS\""),
        (
            "sudo",
            "echo \"sudo $1 $2\" >> \"$CALLS\"\nshift 2\nexec \"$@\"",
        ),
    ] {
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
        let status = Command::new("chmod")
            .arg("755")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
    }
    std::fs::write(&log, "").unwrap();
    bin
}

struct Run {
    status: std::process::ExitStatus,
    stderr: String,
    calls: String,
}

/// Runs `script` with bash, the stand-ins first on PATH, the AWS CLI (or not) next.
fn run(script: &str, dir: &Path, moto: &MotoServer, with_aws_cli: bool) -> Run {
    let bin = stand_ins(dir);
    let mut path = vec![bin];
    if with_aws_cli {
        path.push(runway_testkit::workspace_root().join(".tools/venv/bin"));
    }
    path.extend([PathBuf::from("/usr/bin"), PathBuf::from("/bin")]);
    let script_path = dir.join("user-data.sh");
    std::fs::write(&script_path, script).unwrap();
    let output = Command::new("timeout")
        .arg("120")
        .arg("bash")
        .arg(&script_path)
        .env_clear()
        .env("PATH", std::env::join_paths(path).unwrap())
        .env("HOME", dir)
        .env("CALLS", dir.join("calls"))
        .env("AWS_ENDPOINT_URL", moto.endpoint_url())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    Run {
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        calls: std::fs::read_to_string(dir.join("calls")).unwrap_or_default(),
    }
}

struct Stage {
    ssm: aws_sdk_ssm::Client,
    parameter: String,
    bucket: String,
    sha256: String,
    prefix: String,
}

async fn stage(moto: &MotoServer, name: &str, dir: &Path) -> Stage {
    let config = moto.sdk_config().await;
    let ssm = aws_sdk_ssm::Client::new(&config);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    );
    let prefix = format!("/runway/{name}/jit");
    let parameter = format!("{prefix}/{INSTANCE_ID}");
    ssm.put_parameter()
        .name(&parameter)
        .value(format!("jit-config-of-{name}"))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let bucket = format!("{name}-runner-cache");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let package = stand_in_package(dir);
    for platform in ["linux-x64", "linux-arm64"] {
        s3.put_object()
            .bucket(&bucket)
            .key(format!(
                "runners/{VERSION}/actions-runner-{platform}-{VERSION}.tar.gz"
            ))
            .body(package.clone().into())
            .send()
            .await
            .unwrap();
    }
    Stage {
        ssm,
        parameter,
        bucket,
        sha256: hex::encode(Sha256::digest(&package)),
        prefix,
    }
}

async fn parameter_exists(ssm: &aws_sdk_ssm::Client, name: &str) -> bool {
    ssm.get_parameter().name(name).send().await.is_ok()
}

async fn installs_and_runs_one_job(name: &str, with_aws_cli: bool) {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    let dir = tempfile::tempdir().unwrap();
    let staged = stage(moto, name, dir.path()).await;
    let imds = imds_stand_in().await;
    let runner_dir = dir.path().join("actions-runner");
    // The pool's log group, made as the provision function makes it before a launch.
    let group = format!("/runway/{name}/runners/linux");
    let logs = CloudWatchRunnerLogs::new(
        aws_sdk_cloudwatchlogs::Client::new(&moto.sdk_config().await),
        Some(7),
    );
    logs.ensure_group(&group).await.unwrap();
    let mut boot = boot(
        &staged.prefix,
        &runner_dir,
        &imds,
        Some(install(&staged.bucket, &staged.sha256)),
    );
    boot.logs = Some(BootLogs {
        group: group.clone(),
        stream: format!("{name}-7-a1-1"),
        dir: dir.path().join("log").display().to_string(),
    });
    let script = boot.render(BootOs::Linux).unwrap();
    assert!(!script.contains(&format!("jit-config-of-{name}")));

    let ran = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        let endpoint = moto;
        move || run(&script, &dir, endpoint, with_aws_cli)
    })
    .await
    .unwrap();

    assert!(ran.status.success(), "{}\n{}", ran.stderr, ran.calls);
    let args = std::fs::read_to_string(runner_dir.join("ran-with"))
        .unwrap_or_else(|_| panic!("the runner did not run:\n{}", ran.stderr));
    assert_eq!(args, format!("--jitconfig\njit-config-of-{name}\n"));
    let hooks = std::fs::read_to_string(runner_dir.join("hooks")).unwrap();
    let hooks_dir = runner_dir.join(".runway-hooks");
    assert_eq!(
        hooks,
        format!(
            "{}\n{}\n",
            hooks_dir.join("job-started.sh").display(),
            hooks_dir.join("job-completed.sh").display()
        )
    );
    assert!(
        runner_dir.join("before-ran").exists(),
        "the before_runner hook ran"
    );
    assert!(runner_dir.join("dependencies-installed").exists());
    assert!(
        ran.calls
            .contains("useradd --create-home --shell /bin/bash runner"),
        "{}",
        ran.calls
    );
    assert!(ran.calls.contains("sudo -u runner"), "{}", ran.calls);
    assert!(ran.calls.ends_with("shutdown -h now\n"), "{}", ran.calls);
    assert!(
        !parameter_exists(&staged.ssm, &staged.parameter).await,
        "the JIT config is deleted once read"
    );

    // The boot's, the hooks' and the runner's lines reached the runner's stream, in order,
    // before the instance shut down.
    let lines = logs
        .read(&RunnerLogLocation {
            group: group.clone(),
            stream: StreamName::Exact(format!("{name}-7-a1-1")),
        })
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no log stream:\n{}", ran.stderr));
    let messages: Vec<&str> = lines.iter().map(|line| line.message.as_str()).collect();
    let expected = [
        format!("runway: runner {name}-7-a1-1 on {INSTANCE_ID} logs to {group}"),
        format!(
            "runway: installing runner {VERSION} from s3://{}/runners/",
            staged.bucket
        ),
        "runway: starting the runner".to_string(),
        "Connected to GitHub".to_string(),
        "Running job: build".to_string(),
        "Job build completed with result: Succeeded".to_string(),
        "runway: the runner exited with 0".to_string(),
    ];
    let mut at = 0;
    for line in &expected {
        let found = messages[at..]
            .iter()
            .position(|message| message.starts_with(line.as_str()))
            .unwrap_or_else(|| panic!("{line:?} after line {at} of {messages:#?}"));
        at += found + 1;
    }
    // The job hooks print into the job's log (as the runner shows it), and a copy into the
    // runner log: once each, wherever their writer put them.
    for hook in ["started", "completed"] {
        assert_eq!(
            messages.iter().filter(|message| **message == hook).count(),
            1,
            "{hook:?} in {messages:#?}"
        );
    }
    let job_log = std::fs::read_to_string(runner_dir.join("job-log")).unwrap();
    assert_eq!(job_log, "started\ncompleted\n");
    assert!(lines.iter().all(|line| line.timestamp.is_some()));
    // The provision function's group keeps events for the stack's retention.
    let described = aws_sdk_cloudwatchlogs::Client::new(&moto.sdk_config().await)
        .describe_log_groups()
        .log_group_name_prefix(&group)
        .send()
        .await
        .unwrap();
    assert_eq!(described.log_groups()[0].retention_in_days(), Some(7));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_linux_boot_script_installs_the_runner_from_the_cache_with_the_aws_cli() {
    installs_and_runs_one_job("boot-cli", true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_linux_boot_script_installs_the_runner_with_curl_when_the_aws_cli_is_missing() {
    installs_and_runs_one_job("boot-curl", false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_package_is_refused_and_the_instance_still_shuts_down() {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    let dir = tempfile::tempdir().unwrap();
    let staged = stage(moto, "boot-tampered", dir.path()).await;
    let imds = imds_stand_in().await;
    let runner_dir = dir.path().join("actions-runner");
    // The manifest says another hash than the package in the bucket has.
    let script = boot(
        &staged.prefix,
        &runner_dir,
        &imds,
        Some(install(&staged.bucket, &"0".repeat(64))),
    )
    .render(BootOs::Linux)
    .unwrap();
    let ran = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || run(&script, &dir, moto, true)
    })
    .await
    .unwrap();
    assert!(!ran.status.success());
    assert!(ran.stderr.contains("refused"), "{}", ran.stderr);
    assert!(!runner_dir.join("run.sh").exists(), "nothing unpacked");
    assert!(
        !runner_dir.join("ran-with").exists(),
        "the runner never ran"
    );
    assert!(ran.calls.contains("shutdown -h now"), "{}", ran.calls);
    assert!(!ran.calls.contains("sudo"), "{}", ran.calls);
    assert!(!parameter_exists(&staged.ssm, &staged.parameter).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_jit_config_shuts_the_instance_down() {
    let moto = MotoServer::shared().expect("moto starts (run scripts/setup.sh)");
    let dir = tempfile::tempdir().unwrap();
    let imds = imds_stand_in().await;
    let runner_dir = dir.path().join("actions-runner");
    std::fs::create_dir_all(&runner_dir).unwrap();
    // One try only: the stand-in `seq` makes the wait loop short.
    let script = boot("/runway/boot-none/jit", &runner_dir, &imds, None)
        .render(BootOs::Linux)
        .unwrap()
        .replace("$(seq 1 60)", "1")
        .replace("sleep 5", "true");
    let ran = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || run(&script, &dir, moto, true)
    })
    .await
    .unwrap();
    assert!(!ran.status.success());
    assert!(ran.stderr.contains("no JIT config"), "{}", ran.stderr);
    assert_eq!(ran.calls, "shutdown -h now\n");
}
