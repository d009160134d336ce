//! The user data an EC2 runner boots with: one description ([`BootScript`]) and two
//! renderings, a plain bash script for Linux and PowerShell for Windows.
//!
//! Both do the same, and hold no secret (the JIT config travels through SSM only):
//! 1. read the instance id and region through IMDSv2;
//! 2. read the JIT config from the SSM SecureString `<prefix>/<instance id>` (retrying while
//!    runway writes it) and delete it;
//! 3. when the image has no runner in the runner directory, install the version the runner
//!    cache's manifest names from the stack's bucket (`runners/<version>/<asset>`), refusing a
//!    package whose SHA-256 differs from the manifest's; create the runner user if missing and
//!    run the runner's `installdependencies.sh` (Linux);
//! 4. run the pool's `before_runner` hook, then the runner for one job, with the
//!    `job_started` / `job_completed` hooks as the runner's `ACTIONS_RUNNER_HOOK_JOB_*`
//!    scripts;
//! 5. shut down, whatever happened, which terminates the instance.
//!
//! The Linux script uses the AWS CLI when the image has it (Amazon Linux 2023 does) and
//! otherwise signs its few SSM and S3 requests with `curl --aws-sigv4` and the instance
//! role's credentials from IMDS, reading JSON with `python3` (Ubuntu 24.04 has both, and no
//! AWS CLI). The Windows script uses AWS Tools for PowerShell, which AWS's Windows Server AMIs
//! carry.

use crate::ProviderError;

/// EC2 refuses user data over 16 KB (before base64).
pub const USER_DATA_LIMIT: usize = 16 * 1024;

/// Where instances reach IMDS.
pub const DEFAULT_IMDS_URL: &str = "http://169.254.169.254";

/// The line that ends an embedded hook; a hook may not contain it.
const HOOK_END: &str = "RUNWAY_HOOK_END";

/// What an instance boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BootOs {
    #[default]
    Linux,
    Windows,
}

/// One package of the runner cache: its object key and SHA-256 (lower-case hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedRunner {
    pub key: String,
    pub sha256: String,
}

/// The runner version the cache holds, per platform: what a boot installs when the image
/// has no runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerInstall {
    pub bucket: String,
    pub version: String,
    pub linux_x64: Option<CachedRunner>,
    pub linux_arm64: Option<CachedRunner>,
    pub win_x64: Option<CachedRunner>,
}

/// A pool's scripts around the runner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootHooks {
    /// Runs as root (Administrator) before the runner starts; a failure stops the boot.
    pub before_runner: Option<String>,
    /// The runner's `ACTIONS_RUNNER_HOOK_JOB_STARTED`: runs before each job, as the runner.
    pub job_started: Option<String>,
    /// The runner's `ACTIONS_RUNNER_HOOK_JOB_COMPLETED`: runs after each job, as the runner.
    pub job_completed: Option<String>,
}

impl BootHooks {
    fn named(&self) -> [(&'static str, Option<&String>); 3] {
        [
            ("before_runner", self.before_runner.as_ref()),
            ("job_started", self.job_started.as_ref()),
            ("job_completed", self.job_completed.as_ref()),
        ]
    }

    /// A hook must fit its place in the script: no NUL, not the end marker, and nothing that
    /// would end a PowerShell here-string or the `<powershell>` block early.
    pub fn validate(&self) -> Result<(), ProviderError> {
        for (name, script) in self.named() {
            let Some(script) = script else { continue };
            if script.trim().is_empty() {
                return Err(ProviderError::config(format!(
                    "the {name} hook is empty: remove it or give it a script"
                )));
            }
            if script.contains('\0') {
                return Err(ProviderError::config(format!(
                    "the {name} hook contains a NUL character"
                )));
            }
            if script.lines().any(|line| {
                line.trim() == HOOK_END || line.starts_with("'@") || line.contains("</powershell>")
            }) {
                return Err(ProviderError::config(format!(
                    "the {name} hook contains a line the boot script uses to end it \
                     ({HOOK_END}, a line starting with '@, or </powershell>): rewrite that line"
                )));
            }
        }
        Ok(())
    }
}

/// Everything the user data says, rendered by [`BootScript::linux`] or
/// [`BootScript::windows`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootScript {
    /// SSM prefix of JIT configs (`<prefix>/<instance id>`).
    pub jit_prefix: String,
    pub runner_dir: String,
    pub runner_user: String,
    /// IMDS root: [`DEFAULT_IMDS_URL`] on EC2 (tests point it at a stand-in).
    pub imds_url: String,
    /// Where to install the runner from when the image lacks it; `None`: the image must have it.
    pub install: Option<RunnerInstall>,
    pub hooks: BootHooks,
}

impl BootScript {
    /// The script for `os`, refused when EC2 would refuse it as too large.
    pub fn render(&self, os: BootOs) -> Result<String, ProviderError> {
        self.hooks.validate()?;
        let script = match os {
            BootOs::Linux => self.linux(),
            BootOs::Windows => self.windows(),
        };
        if script.len() > USER_DATA_LIMIT {
            return Err(ProviderError::config(format!(
                "the boot script is {} bytes, over EC2's {USER_DATA_LIMIT}-byte user data \
                 limit: shorten the pool's hooks (e.g. have a hook download and run a longer \
                 script) or bake what they do into the image",
                script.len()
            )));
        }
        Ok(script)
    }

    /// The Linux user data: a plain bash script.
    pub fn linux(&self) -> String {
        let install = self.install.as_ref();
        let package = |runner: Option<&CachedRunner>| {
            runner.map_or((String::new(), String::new()), |runner| {
                (runner.key.clone(), runner.sha256.clone())
            })
        };
        let (key_x64, sha_x64) = package(install.and_then(|i| i.linux_x64.as_ref()));
        let (key_arm64, sha_arm64) = package(install.and_then(|i| i.linux_arm64.as_ref()));
        let bucket = install.map_or("", |i| i.bucket.as_str());
        let version = install.map_or("", |i| i.version.as_str());
        let mut hooks = String::new();
        let mut hook_env = String::new();
        for (name, script) in self.hooks.named() {
            let Some(script) = script else { continue };
            let file = format!("$hooks_dir/{}.sh", name.replace('_', "-"));
            hooks.push_str(&format!(
                "cat > \"{file}\" <<'{HOOK_END}'\n{}\n{HOOK_END}\nchmod 755 \"{file}\"\n",
                script.trim_end()
            ));
            match name {
                "job_started" => {
                    hook_env.push_str(&format!(" \"ACTIONS_RUNNER_HOOK_JOB_STARTED={file}\""))
                }
                "job_completed" => {
                    hook_env.push_str(&format!(" \"ACTIONS_RUNNER_HOOK_JOB_COMPLETED={file}\""))
                }
                _ => {}
            }
        }
        let before_runner = if self.hooks.before_runner.is_some() {
            "bash \"$hooks_dir/before-runner.sh\" || stop \"the before_runner hook failed\"\n"
        } else {
            ""
        };
        format!(
            r#"#!/bin/bash
# runway runner boot. No secret in here: the JIT config is read from SSM (only this instance
# may read it) and deleted; the runner is installed from the stack's runner cache when the
# image lacks it; one ephemeral runner runs; then the instance shuts down (and terminates).
set -uo pipefail
imds="{imds}/latest"
parameter_prefix="{prefix}"
runner_dir="{runner_dir}"
runner_user="{runner_user}"
hooks_dir="$runner_dir/.runway-hooks"
cache_bucket="{bucket}"
runner_version="{version}"
package_linux_x64="{key_x64}"
sha256_linux_x64="{sha_x64}"
package_linux_arm64="{key_arm64}"
sha256_linux_arm64="{sha_arm64}"

log() {{ echo "runway: $*" >&2; }}
stop() {{
  log "$1; shutting down"
  shutdown -h now
  exit 1
}}

token=$(curl -sf -X PUT "$imds/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600')
metadata() {{ curl -sf -H "X-aws-ec2-metadata-token: $token" "$imds/meta-data/$1"; }}
instance_id=$(metadata instance-id) || stop "cannot read the instance id from IMDS"
region=$(metadata placement/region) || stop "cannot read the region from IMDS"

# The AWS CLI when the image has it; else curl's SigV4 with the instance role's credentials.
json_field() {{
  python3 -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1:]:
    value = value[key]
print(value)' "$@"
}}
signed() {{
  local service=$1 url=$2 role credentials
  shift 2
  role=$(metadata iam/security-credentials/) || return 1
  credentials=$(metadata "iam/security-credentials/$role") || return 1
  curl -sf --aws-sigv4 "aws:amz:$region:$service" \
    --user "$(json_field AccessKeyId <<<"$credentials"):$(json_field SecretAccessKey <<<"$credentials")" \
    -H "x-amz-security-token: $(json_field Token <<<"$credentials")" "$@" "$url"
}}
ssm() {{
  signed ssm "${{AWS_ENDPOINT_URL:-https://ssm.$region.amazonaws.com}}/" -X POST \
    -H "X-Amz-Target: AmazonSSM.$1" -H 'Content-Type: application/x-amz-json-1.1' --data "$2"
}}
get_parameter() {{
  if command -v aws >/dev/null 2>&1; then
    aws ssm get-parameter --region "$region" --name "$1" --with-decryption \
      --query Parameter.Value --output text
  else
    ssm GetParameter "{{\"Name\":\"$1\",\"WithDecryption\":true}}" | json_field Parameter Value
  fi
}}
delete_parameter() {{
  if command -v aws >/dev/null 2>&1; then
    aws ssm delete-parameter --region "$region" --name "$1"
  else
    ssm DeleteParameter "{{\"Name\":\"$1\"}}" >/dev/null
  fi
}}
download() {{
  if command -v aws >/dev/null 2>&1; then
    aws s3 cp --region "$region" --only-show-errors "s3://$cache_bucket/$1" "$2"
  elif [ -n "${{AWS_ENDPOINT_URL:-}}" ]; then
    signed s3 "$AWS_ENDPOINT_URL/$cache_bucket/$1" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -o "$2"
  else
    signed s3 "https://$cache_bucket.s3.$region.amazonaws.com/$1" \
      -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -o "$2"
  fi
}}

parameter="$parameter_prefix/$instance_id"
config=""
for _ in $(seq 1 60); do
  config=$(get_parameter "$parameter" 2>/dev/null) && [ -n "$config" ] && break
  config=""
  sleep 5
done
[ -n "$config" ] || stop "no JIT config at $parameter"
delete_parameter "$parameter" || log "could not delete $parameter; runway's teardown removes it"

id -u "$runner_user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$runner_user" \
  || stop "cannot create the user $runner_user"
if [ ! -x "$runner_dir/run.sh" ]; then
  if [ -z "$cache_bucket" ] || [ -z "$runner_version" ]; then
    stop "no runner in $runner_dir and no runner cache to install one from"
  fi
  case "$(uname -m)" in
    x86_64) package=$package_linux_x64 sha256=$sha256_linux_x64 ;;
    aarch64 | arm64) package=$package_linux_arm64 sha256=$sha256_linux_arm64 ;;
    *) stop "no runner package for $(uname -m)" ;;
  esac
  [ -n "$package" ] || stop "the runner cache has no package for $(uname -m)"
  log "installing runner $runner_version from s3://$cache_bucket/$package"
  archive=$(mktemp) || stop "cannot make a temporary file"
  download "$package" "$archive" || stop "cannot download s3://$cache_bucket/$package"
  actual=$(sha256sum "$archive" | cut -d ' ' -f 1)
  if [ "$actual" != "$sha256" ]; then
    rm -f "$archive"
    stop "s3://$cache_bucket/$package has SHA-256 $actual, the runner cache says $sha256: refused"
  fi
  mkdir -p "$runner_dir" || stop "cannot make $runner_dir"
  tar -xzf "$archive" -C "$runner_dir" || stop "cannot unpack the runner"
  rm -f "$archive"
  chown -R "$runner_user" "$runner_dir" || stop "cannot give $runner_dir to $runner_user"
  if [ -x "$runner_dir/bin/installdependencies.sh" ]; then
    "$runner_dir/bin/installdependencies.sh" || log "installdependencies.sh failed; trying the runner anyway"
  fi
fi

mkdir -p "$hooks_dir"
{hooks}{before_runner}cd "$runner_dir" || stop "no runner directory $runner_dir"
sudo -u "$runner_user" env{hook_env} ./run.sh --jitconfig "$config"
log "the runner exited with $?"
shutdown -h now
"#,
            imds = self.imds_url.trim_end_matches('/'),
            prefix = self.jit_prefix,
            runner_dir = self.runner_dir,
            runner_user = self.runner_user,
        )
    }

    /// The Windows user data: PowerShell, run once (`<persist>false</persist>`).
    pub fn windows(&self) -> String {
        let install = self.install.as_ref();
        let runner = install.and_then(|i| i.win_x64.as_ref());
        let bucket = install.map_or("", |i| i.bucket.as_str());
        let version = install.map_or("", |i| i.version.as_str());
        let (key, sha256) = runner.map_or(("", ""), |r| (r.key.as_str(), r.sha256.as_str()));
        let mut hooks = String::new();
        for (name, script) in self.hooks.named() {
            let Some(script) = script else { continue };
            let file = format!("$hooksDir\\{}.ps1", name.replace('_', "-"));
            hooks.push_str(&format!(
                "Set-Content -Path \"{file}\" -Encoding UTF8 -Value @'\n{}\n'@\n",
                script.trim_end()
            ));
            match name {
                "before_runner" => hooks.push_str(&format!(
                    "& powershell -NoProfile -ExecutionPolicy Bypass -File \"{file}\"\n\
                     if ($LASTEXITCODE -ne 0) {{ Stop-Boot 'the before_runner hook failed' }}\n"
                )),
                "job_started" => hooks.push_str(&format!(
                    "$env:ACTIONS_RUNNER_HOOK_JOB_STARTED = \"{file}\"\n"
                )),
                _ => hooks.push_str(&format!(
                    "$env:ACTIONS_RUNNER_HOOK_JOB_COMPLETED = \"{file}\"\n"
                )),
            }
        }
        format!(
            r#"<powershell>
# runway runner boot. No secret in here: the JIT config is read from SSM (only this instance
# may read it) and deleted; the runner is installed from the stack's runner cache when the
# image lacks it; one ephemeral runner runs; then the instance shuts down (and terminates).
$ErrorActionPreference = 'Stop'
$imds = '{imds}/latest'
$parameterPrefix = '{prefix}'
$runnerDir = '{runner_dir}'
$hooksDir = Join-Path $runnerDir '.runway-hooks'
$cacheBucket = '{bucket}'
$runnerVersion = '{version}'
$package = '{key}'
$sha256 = '{sha256}'
function Stop-Boot([string]$why) {{
  Write-Output "runway: $why; shutting down"
  shutdown /s /t 0
  exit 1
}}
try {{
  $token = Invoke-RestMethod -Method Put -Uri "$imds/api/token" -Headers @{{ 'X-aws-ec2-metadata-token-ttl-seconds' = '21600' }}
  $metadata = @{{ 'X-aws-ec2-metadata-token' = $token }}
  $instanceId = Invoke-RestMethod -Uri "$imds/meta-data/instance-id" -Headers $metadata
  $region = Invoke-RestMethod -Uri "$imds/meta-data/placement/region" -Headers $metadata
  $parameter = "$parameterPrefix/$instanceId"
  $config = $null
  for ($try = 0; $try -lt 60 -and -not $config; $try++) {{
    try {{ $config = (Get-SSMParameter -Region $region -Name $parameter -WithDecryption $true).Value }}
    catch {{ Start-Sleep -Seconds 5 }}
  }}
  if (-not $config) {{ Stop-Boot "no JIT config at $parameter" }}
  try {{ Remove-SSMParameter -Region $region -Name $parameter -Force }}
  catch {{ Write-Output "runway: could not delete $parameter; runway's teardown removes it" }}
  if (-not (Test-Path (Join-Path $runnerDir 'run.cmd'))) {{
    if (-not $cacheBucket -or -not $package) {{ Stop-Boot "no runner in $runnerDir and no runner cache to install one from" }}
    Write-Output "runway: installing runner $runnerVersion from s3://$cacheBucket/$package"
    $archive = Join-Path $env:TEMP 'actions-runner.zip'
    Read-S3Object -Region $region -BucketName $cacheBucket -Key $package -File $archive | Out-Null
    $actual = (Get-FileHash -Algorithm SHA256 -Path $archive).Hash.ToLowerInvariant()
    if ($actual -ne $sha256) {{
      Remove-Item -Force $archive
      Stop-Boot "s3://$cacheBucket/$package has SHA-256 $actual, the runner cache says ${{sha256}}: refused"
    }}
    New-Item -ItemType Directory -Force -Path $runnerDir | Out-Null
    Expand-Archive -Path $archive -DestinationPath $runnerDir -Force
    Remove-Item -Force $archive
  }}
  New-Item -ItemType Directory -Force -Path $hooksDir | Out-Null
{hooks}  Set-Location $runnerDir
  & .\run.cmd --jitconfig $config
  Write-Output "runway: the runner exited with $LASTEXITCODE"
}} catch {{
  Write-Output "runway: $_"
}}
shutdown /s /t 0
</powershell>
<persist>false</persist>
"#,
            imds = self.imds_url.trim_end_matches('/'),
            prefix = self.jit_prefix,
            runner_dir = self.runner_dir,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot() -> BootScript {
        BootScript {
            jit_prefix: "/runway/ci/jit".into(),
            runner_dir: "/opt/actions-runner".into(),
            runner_user: "runner".into(),
            imds_url: DEFAULT_IMDS_URL.into(),
            install: Some(RunnerInstall {
                bucket: "ci-runner-cache".into(),
                version: "2.321.0".into(),
                linux_x64: Some(CachedRunner {
                    key: "runners/2.321.0/actions-runner-linux-x64-2.321.0.tar.gz".into(),
                    sha256: "a".repeat(64),
                }),
                linux_arm64: Some(CachedRunner {
                    key: "runners/2.321.0/actions-runner-linux-arm64-2.321.0.tar.gz".into(),
                    sha256: "b".repeat(64),
                }),
                win_x64: Some(CachedRunner {
                    key: "runners/2.321.0/actions-runner-win-x64-2.321.0.zip".into(),
                    sha256: "c".repeat(64),
                }),
            }),
            hooks: BootHooks {
                before_runner: Some("dnf install -y git".into()),
                job_started: Some("echo started".into()),
                job_completed: Some("echo done".into()),
            },
        }
    }

    #[test]
    fn the_linux_script_installs_from_the_cache_and_wires_the_hooks() {
        let script = boot().render(BootOs::Linux).unwrap();
        assert!(script.starts_with("#!/bin/bash\n"), "a plain shell script");
        assert!(script.contains("imds=\"http://169.254.169.254/latest\""));
        assert!(script.contains("X-aws-ec2-metadata-token"));
        assert!(script.contains("cache_bucket=\"ci-runner-cache\""));
        assert!(script.contains(&format!("sha256_linux_arm64=\"{}\"", "b".repeat(64))));
        assert!(script.contains("sha256sum \"$archive\""));
        assert!(script.contains("installdependencies.sh"));
        assert!(script.contains("useradd"));
        assert!(script.contains("ACTIONS_RUNNER_HOOK_JOB_STARTED=$hooks_dir/job-started.sh"));
        assert!(script.contains("ACTIONS_RUNNER_HOOK_JOB_COMPLETED=$hooks_dir/job-completed.sh"));
        assert!(script.contains("bash \"$hooks_dir/before-runner.sh\""));
        assert!(script.contains("dnf install -y git\nRUNWAY_HOOK_END"));
        assert!(script.ends_with("shutdown -h now\n"));
    }

    #[test]
    fn the_windows_script_says_the_same_in_powershell() {
        let mut boot = boot();
        boot.runner_dir = "C:\\actions-runner".into();
        let script = boot.render(BootOs::Windows).unwrap();
        assert!(script.starts_with("<powershell>\n"));
        assert!(script.ends_with("</powershell>\n<persist>false</persist>\n"));
        assert!(
            script.contains("Get-SSMParameter -Region $region -Name $parameter -WithDecryption")
        );
        assert!(script.contains("Remove-SSMParameter"));
        assert!(script.contains("X-aws-ec2-metadata-token-ttl-seconds"));
        assert!(script.contains("$package = 'runners/2.321.0/actions-runner-win-x64-2.321.0.zip'"));
        assert!(script.contains(&format!("$sha256 = '{}'", "c".repeat(64))));
        assert!(script.contains("Get-FileHash -Algorithm SHA256"));
        assert!(script.contains("$env:ACTIONS_RUNNER_HOOK_JOB_STARTED"));
        assert!(script.contains("$env:ACTIONS_RUNNER_HOOK_JOB_COMPLETED"));
        assert!(script.contains("& .\\run.cmd --jitconfig $config"));
        assert!(script.contains("shutdown /s /t 0"));
        assert!(!script.contains("linux-x64"));
        // PowerShell reads `"$name:"` as a scoped variable: such text must say `${name}:`.
        for line in script.lines().filter(|line| line.contains('"')) {
            for (index, _) in line.match_indices('$') {
                let name: String = line[index + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                let after = line[index + 1 + name.len()..].chars().next();
                assert!(
                    name.is_empty() || after != Some(':') || name == "env",
                    "{line}"
                );
            }
        }
    }

    #[test]
    fn no_cache_leaves_the_install_to_the_image() {
        let mut boot = boot();
        boot.install = None;
        let script = boot.render(BootOs::Linux).unwrap();
        assert!(script.contains("cache_bucket=\"\""));
        assert!(script.contains("no runner in $runner_dir and no runner cache"));
    }

    #[test]
    fn hooks_that_would_break_the_script_are_refused() {
        for bad in [
            "echo a\nRUNWAY_HOOK_END\nreboot",
            "'@\nStop-Computer",
            "</powershell>",
            "  ",
            "a\0b",
        ] {
            let mut boot = boot();
            boot.hooks.job_started = Some(bad.into());
            assert!(
                matches!(
                    boot.render(BootOs::Linux),
                    Err(ProviderError::Config { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_script_over_16_kb_is_refused_with_what_to_do() {
        let mut boot = boot();
        boot.hooks.before_runner = Some("echo 0123456789abcdef\n".repeat(1000));
        for os in [BootOs::Linux, BootOs::Windows] {
            let error = boot.render(os).unwrap_err().to_string();
            assert!(error.contains("16384-byte user data limit"), "{error}");
            assert!(error.contains("shorten the pool's hooks"), "{error}");
        }
    }
}
