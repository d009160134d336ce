//! The image recipe (sam/images/template.yaml) for real: every bash step of its component
//! passes shellcheck; the runner install, run by bash against stand-ins for GitHub (`curl`)
//! and `chown`, puts the runner where runway's boot script looks for it, runs its
//! `installdependencies.sh` and refuses a package whose SHA-256 is not the one GitHub
//! publishes; the component's runner directory and user are the EC2 pools' defaults.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use runway_deploy_tests::{Template, repo_root};
use runway_providers::Ec2PoolConfig;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const VERSION: &str = "2.321.0";
const RELEASES: &str = "https://api.github.com/repos/actions/runner/releases";

fn images() -> Template {
    Template::load(&repo_root().join("sam/images/template.yaml")).expect("sam/images/template.yaml")
}

/// The AWSTOE document of the runner component (its `Data`).
fn component() -> Value {
    let template = images();
    let components = template.resources_of_type("AWS::ImageBuilder::Component");
    assert_eq!(components.len(), 1, "one component: {components:?}");
    let data = components["RunnerComponent"]["Properties"]["Data"]
        .as_str()
        .expect("the component's document is inline");
    serde_yaml::from_str(data).expect("the component's document is YAML")
}

/// One `ExecuteBash` step: its phase, name and script.
#[derive(Debug, Clone)]
struct BashStep {
    phase: String,
    name: String,
    script: String,
}

fn bash_steps(document: &Value) -> Vec<BashStep> {
    let mut steps = Vec::new();
    for phase in document["phases"].as_array().expect("phases") {
        for step in phase["steps"].as_array().expect("steps") {
            assert_eq!(step["action"], "ExecuteBash", "{step}");
            let commands = step["inputs"]["commands"].as_array().expect("commands");
            let script: Vec<&str> = commands.iter().map(|c| c.as_str().unwrap()).collect();
            steps.push(BashStep {
                phase: phase["name"].as_str().unwrap().to_owned(),
                name: step["name"].as_str().unwrap().to_owned(),
                script: script.join("\n"),
            });
        }
    }
    steps
}

fn step(document: &Value, phase: &str, name: &str) -> BashStep {
    bash_steps(document)
        .into_iter()
        .find(|step| step.phase == phase && step.name == name)
        .unwrap_or_else(|| panic!("no {phase} step {name}"))
}

/// The component parameter's default.
fn default_of(document: &Value, name: &str) -> String {
    document["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find_map(|parameter| parameter.get(name))
        .and_then(|parameter| parameter["default"].as_str())
        .unwrap_or_else(|| panic!("no default for the parameter {name}"))
        .to_owned()
}

/// `script` with AWSTOE's `{{ Name }}` placeholders replaced; every one must be replaced.
fn substituted(script: &str, values: &[(&str, &str)]) -> String {
    let mut script = script.to_owned();
    for (name, value) in values {
        script = script.replace(&format!("{{{{ {name} }}}}"), value);
    }
    assert!(!script.contains("{{"), "a placeholder is left:\n{script}");
    script
}

/// Every placeholder replaced by the component's defaults.
fn with_defaults(document: &Value, script: &str) -> String {
    let names = ["RunnerVersion", "RunnerDir", "RunnerUser"];
    let defaults: Vec<String> = names.iter().map(|n| default_of(document, n)).collect();
    let values: Vec<(&str, &str)> = names
        .iter()
        .zip(&defaults)
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    substituted(script, &values)
}

fn shellcheck(script: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("step.sh");
    std::fs::write(&path, format!("#!/bin/bash\n{script}\n")).unwrap();
    Command::new("shellcheck")
        .arg(&path)
        .output()
        .expect("shellcheck runs (scripts/setup.sh installs it)")
}

#[test]
fn every_bash_step_passes_shellcheck() {
    let document = component();
    let steps = bash_steps(&document);
    let names: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| (s.phase.as_str(), s.name.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("build", "InstallPackages"),
            ("build", "CreateRunnerUser"),
            ("build", "InstallRunner"),
            ("build", "Cleanup"),
            ("validate", "CheckImage"),
            ("test", "CheckImage"),
        ]
    );
    for step in steps {
        let script = with_defaults(&document, &step.script);
        assert!(script.starts_with("set -euo pipefail\n"), "{}", step.name);
        let output = shellcheck(&script);
        assert!(
            output.status.success(),
            "{} {}: shellcheck:\n{}",
            step.phase,
            step.name,
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn shellcheck_catches_a_broken_step() {
    // The install with the checksum it computed unquoted: shellcheck must refuse it, or the
    // check above proves nothing.
    let document = component();
    let install = with_defaults(&document, &step(&document, "build", "InstallRunner").script);
    let broken = install.replacen(
        "[ \"$actual\" = \"$sha256\" ]",
        "[ $actual = \"$sha256\" ]",
        1,
    );
    assert_ne!(broken, install);
    let output = shellcheck(&broken);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("SC2086"));
}

#[test]
fn the_runner_goes_where_runways_boot_script_looks_for_it() {
    let document = component();
    let pool = Ec2PoolConfig::from_ami("ami-0123456789abcdef0", Vec::new());
    assert_eq!(default_of(&document, "RunnerDir"), pool.runner_dir);
    assert_eq!(default_of(&document, "RunnerUser"), pool.runner_user);
    assert_eq!(default_of(&document, "RunnerVersion"), "latest");
    // The recipe sets the version only, so the directory and user stay the defaults.
    let template = images();
    let recipe = template.resource("Recipe").unwrap();
    let components = recipe["Properties"]["Components"].as_array().unwrap();
    assert_eq!(components.len(), 1);
    assert_eq!(
        components[0]["ComponentArn"],
        json!({"Fn::GetAtt": ["RunnerComponent", "Arn"]})
    );
    assert_eq!(
        components[0]["Parameters"],
        json!([{"Name": "RunnerVersion", "Value": [{"Ref": "RunnerVersion"}]}])
    );
    assert_eq!(
        template.root["Parameters"]["RunnerVersion"]["Default"],
        "latest"
    );
}

#[test]
fn the_image_carries_docker_and_the_cloudwatch_agent_not_started() {
    let document = component();
    let packages = step(&document, "build", "InstallPackages").script;
    // The `dnf install -y` command with its continuation lines.
    let mut install = String::new();
    for line in packages
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("dnf install -y"))
    {
        install.push_str(line.trim_end_matches('\\'));
        install.push(' ');
        if !line.ends_with('\\') {
            break;
        }
    }
    for package in [
        "docker",
        "amazon-cloudwatch-agent",
        "git",
        "jq",
        "unzip",
        "libicu",
    ] {
        assert!(
            install.split_whitespace().any(|word| word == package),
            "{package} is not installed: {install}"
        );
    }
    assert!(packages.contains("systemctl enable --now docker"));
    assert!(packages.contains("systemctl disable --now amazon-cloudwatch-agent"));
    assert!(
        step(&document, "build", "CreateRunnerUser")
            .script
            .contains("usermod -aG docker \"$runner_user\"")
    );
    // The checks run on the build instance and again on an instance booted from the image.
    let validate = step(&document, "validate", "CheckImage").script;
    assert_eq!(validate, step(&document, "test", "CheckImage").script);
    for check in [
        "[ -x \"$runner_dir/run.sh\" ]",
        "[ ! -e \"$runner_dir/.runner\" ]",
        "sudo -u \"$runner_user\" docker version",
        "agent_ctl=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl",
        "[ -x \"$agent_ctl\" ]",
        "\"$agent_ctl\" -a status | jq -e '.status == \"stopped\"'",
    ] {
        assert!(validate.contains(check), "the checks lack {check}");
    }
}

// ---- The runner install against stand-ins ---------------------------------------------------

/// A stand-in GitHub and a runner package, and the runner install step to run against them.
struct Stage {
    dir: tempfile::TempDir,
    platform: &'static str,
    package: Vec<u8>,
}

impl Stage {
    fn new() -> Stage {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        let web = dir.path().join("web");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&web).unwrap();
        // curl answers from web/, a file per URL; chown records its arguments.
        write_executable(
            &bin.join("curl"),
            r#"#!/bin/bash
out="" url=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o | -H | --retry) [ "$1" = -o ] && out=$2; shift 2 ;;
    -*) shift ;;
    *) url=$1; shift ;;
  esac
done
echo "$url" >> "$STAGE/requests"
file="$STAGE/web/$(printf '%s' "$url" | tr -c 'A-Za-z0-9._-' '_')"
[ -f "$file" ] || exit 22
if [ -n "$out" ]; then cp "$file" "$out"; else cat "$file"; fi
"#,
        );
        write_executable(
            &bin.join("chown"),
            "#!/bin/bash\necho \"$*\" >> \"$STAGE/chowned\"\n",
        );
        // The package: run.sh, and an installdependencies.sh that leaves a mark.
        let content = dir.path().join("package");
        std::fs::create_dir_all(content.join("bin")).unwrap();
        write_executable(&content.join("run.sh"), "#!/bin/bash\necho runner\n");
        write_executable(
            &content.join("bin/installdependencies.sh"),
            "#!/bin/bash\ntouch \"$(dirname \"$0\")/../dependencies-installed\"\n",
        );
        let archive = dir.path().join("package.tar.gz");
        let status = Command::new("tar")
            .arg("-czf")
            .arg(&archive)
            .arg("-C")
            .arg(&content)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        let platform = match std::env::consts::ARCH {
            "x86_64" => "linux-x64",
            "aarch64" => "linux-arm64",
            other => panic!("no runner package for {other}"),
        };
        Stage {
            package: std::fs::read(&archive).unwrap(),
            dir,
            platform,
        }
    }

    fn asset(&self, version: &str) -> String {
        format!("actions-runner-{}-{version}.tar.gz", self.platform)
    }

    fn sha256(&self) -> String {
        hex(&Sha256::digest(&self.package))
    }

    /// GitHub answers `url` with `body`.
    fn serve(&self, url: &str, body: &[u8]) {
        let name: String = url
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        std::fs::write(self.dir.path().join("web").join(name), body).unwrap();
    }

    /// The release `version` at `url`, its package with `digest` (none: `null`) and release
    /// notes `body`, as GitHub's releases API gives it.
    fn release(&self, url: &str, version: &str, digest: Option<&str>, body: &str) {
        let download = format!(
            "https://github.com/actions/runner/releases/download/v{version}/{}",
            self.asset(version)
        );
        let release = json!({
            "tag_name": format!("v{version}"),
            "body": body,
            "assets": [
                {"name": format!("actions-runner-win-x64-{version}.zip"),
                 "browser_download_url": "https://example.invalid/win.zip",
                 "digest": format!("sha256:{}", "0".repeat(64))},
                {"name": self.asset(version), "browser_download_url": download,
                 "digest": digest},
            ],
        });
        self.serve(url, release.to_string().as_bytes());
        self.serve(&download, &self.package);
    }

    fn runner_dir(&self) -> PathBuf {
        self.dir.path().join("opt/actions-runner")
    }

    /// The component's InstallRunner step, run by bash with the stand-ins first on the PATH.
    fn install(&self, version: &str) -> Output {
        let document = component();
        let runner_dir = self.runner_dir().display().to_string();
        let script = substituted(
            &step(&document, "build", "InstallRunner").script,
            &[
                ("RunnerVersion", version),
                ("RunnerDir", &runner_dir),
                ("RunnerUser", "runner"),
            ],
        );
        let path = format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("PATH", path)
            .env("STAGE", self.dir.path())
            .output()
            .unwrap()
    }

    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("requests"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn installed(&self) -> bool {
        self.runner_dir().join("run.sh").exists()
    }
}

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Release notes with the runner's `BEGIN SHA` markers for linux-x64 and linux-arm64.
fn marked_notes(sha256: &str) -> String {
    format!(
        "## Packages\n<!-- BEGIN SHA linux-x64 -->{sha256}<!-- END SHA linux-x64 -->\n\
         <!-- BEGIN SHA linux-arm64 -->{sha256}<!-- END SHA linux-arm64 -->\n"
    )
}

#[test]
fn the_latest_runner_is_installed_checked_against_githubs_digest() {
    let stage = Stage::new();
    let digest = format!("sha256:{}", stage.sha256());
    stage.release(&format!("{RELEASES}/latest"), VERSION, Some(&digest), "");
    let output = stage.install("latest");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stage.installed());
    assert!(
        stage.runner_dir().join("dependencies-installed").exists(),
        "installdependencies.sh ran"
    );
    assert_eq!(
        std::fs::read_to_string(stage.dir.path().join("chowned")).unwrap(),
        format!("-R runner {}\n", stage.runner_dir().display())
    );
    assert_eq!(
        stage.requests(),
        [
            format!("{RELEASES}/latest"),
            format!(
                "https://github.com/actions/runner/releases/download/v{VERSION}/{}",
                stage.asset(VERSION)
            ),
        ]
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("actions runner {VERSION}")));
}

#[test]
fn a_pinned_version_is_read_by_its_tag() {
    let stage = Stage::new();
    let digest = format!("sha256:{}", stage.sha256());
    stage.release(
        &format!("{RELEASES}/tags/v2.320.0"),
        "2.320.0",
        Some(&digest),
        "",
    );
    let output = stage.install("2.320.0");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stage.installed());
    assert_eq!(stage.requests()[0], format!("{RELEASES}/tags/v2.320.0"));
}

#[test]
fn a_package_that_is_not_what_github_says_is_refused() {
    let stage = Stage::new();
    let digest = format!("sha256:{}", "a".repeat(64));
    stage.release(&format!("{RELEASES}/latest"), VERSION, Some(&digest), "");
    let output = stage.install("latest");
    assert!(!output.status.success());
    assert!(stderr(&output).contains("refused"), "{}", stderr(&output));
    assert!(!stage.installed());
}

#[test]
fn without_a_digest_the_release_notes_checksum_is_used() {
    let stage = Stage::new();
    stage.release(
        &format!("{RELEASES}/latest"),
        VERSION,
        None,
        &marked_notes(&stage.sha256().to_uppercase()),
    );
    let output = stage.install("latest");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stage.installed());

    let stage = Stage::new();
    stage.release(
        &format!("{RELEASES}/latest"),
        VERSION,
        None,
        &marked_notes(&"b".repeat(64)),
    );
    let output = stage.install("latest");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("GitHub says"),
        "{}",
        stderr(&output)
    );
    assert!(!stage.installed());
}

#[test]
fn a_release_without_a_checksum_or_with_two_that_differ_is_refused() {
    let stage = Stage::new();
    stage.release(&format!("{RELEASES}/latest"), VERSION, None, "no markers");
    let output = stage.install("latest");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("publishes no SHA-256"),
        "{}",
        stderr(&output)
    );
    assert!(!stage.installed());
    assert_eq!(stage.requests().len(), 1, "nothing downloaded");

    let stage = Stage::new();
    let digest = format!("sha256:{}", stage.sha256());
    stage.release(
        &format!("{RELEASES}/latest"),
        VERSION,
        Some(&digest),
        &marked_notes(&"c".repeat(64)),
    );
    let output = stage.install("latest");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("the release notes say"),
        "{}",
        stderr(&output)
    );
    assert!(!stage.installed());
}

#[test]
fn a_release_without_the_package_is_refused() {
    let stage = Stage::new();
    let release = json!({"tag_name": format!("v{VERSION}"), "body": "", "assets": []});
    stage.serve(
        &format!("{RELEASES}/latest"),
        release.to_string().as_bytes(),
    );
    let output = stage.install("latest");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(&format!("has no {}", stage.asset(VERSION))),
        "{}",
        stderr(&output)
    );
    assert!(!stage.installed());
}
