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

/// Where a boot ships its output (its own lines, the hooks' and the runner's): a CloudWatch
/// Logs group and stream, through the CloudWatch agent when the image has it and a small
/// shipper in the script when it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootLogs {
    /// The pool's group (`/runway/<stack>/runners/<pool>`), made by runway before the launch.
    pub group: String,
    /// The runner's stream: its name.
    pub stream: String,
    /// Where the instance keeps the log file it ships ([`DEFAULT_LINUX_LOG_DIR`],
    /// [`DEFAULT_WINDOWS_LOG_DIR`]).
    pub dir: String,
}

/// Where a Linux runner keeps `runner.log`.
pub const DEFAULT_LINUX_LOG_DIR: &str = "/var/log/runway";

/// Where a Windows runner keeps `runner.log`.
pub const DEFAULT_WINDOWS_LOG_DIR: &str = "C:\\ProgramData\\runway";

impl BootLogs {
    /// Names go into the script as they are: CloudWatch's name characters, no quotes.
    fn validate(&self) -> Result<(), ProviderError> {
        let plain = |value: &str, extra: &[char]| {
            !value.is_empty()
                && value.len() <= 512
                && value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-./#".contains(c) || extra.contains(&c))
        };
        if !plain(&self.group, &[]) || !plain(&self.stream, &[]) {
            return Err(ProviderError::config(format!(
                "the runner log group {:?} and stream {:?} may only use letters, digits and \
                 '_', '-', '.', '/', '#'",
                self.group, self.stream
            )));
        }
        if !plain(&self.dir, &[':', '\\']) {
            return Err(ProviderError::config(format!(
                "the runner log directory {:?} may only use letters, digits and '_', '-', '.', \
                 '/', ':', '\\'",
                self.dir
            )));
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
    /// Where the boot's output goes; `None`: it stays on the instance (and its console).
    pub logs: Option<BootLogs>,
}

impl BootScript {
    /// The script for `os`, refused when EC2 would refuse it as too large.
    pub fn render(&self, os: BootOs) -> Result<String, ProviderError> {
        self.hooks.validate()?;
        if let Some(logs) = &self.logs {
            logs.validate()?;
        }
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
        let logs = self.logs.as_ref();
        let log_group = logs.map_or("", |l| l.group.as_str());
        let log_stream = logs.map_or("", |l| l.stream.as_str());
        let log_dir = logs.map_or(DEFAULT_LINUX_LOG_DIR, |l| l.dir.as_str());
        let mut hooks = String::new();
        let mut hook_env = String::new();
        for (name, script) in self.hooks.named() {
            let Some(script) = script else { continue };
            let file = format!("$hooks_dir/{}.sh", name.replace('_', "-"));
            // The runner shows a job hook's output in the job's log; the runner log gets a copy.
            let copy = match (name, logs) {
                ("before_runner", _) | (_, None) => String::new(),
                (_, Some(logs)) => format!("exec > >(tee -a '{}/runner.log') 2>&1\n", logs.dir),
            };
            hooks.push_str(&format!(
                "cat > \"{file}\" <<'{HOOK_END}'\n{copy}{}\n{HOOK_END}\nchmod 755 \"{file}\"\n",
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
# image lacks it; one ephemeral runner runs; its output goes to CloudWatch Logs; then the
# instance shuts down (and terminates).
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
log_group="{log_group}"
log_stream="{log_stream}"
log_dir="{log_dir}"
log_file="$log_dir/runner.log"
agent=/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl

# Everything this script and the runner print goes to the console and to the runner log.
exec 3>&1 4>&2
if [ -n "$log_group" ] && mkdir -p "$log_dir" && touch "$log_file"; then
  exec > >(tee -a "$log_file" >&3) 2> >(tee -a "$log_file" >&4)
else
  log_group=""
fi

log() {{ echo "runway: $*" >&2; }}
shipper="" agent_started=""
finish() {{
  if [ -n "$shipper" ]; then
    sleep 1
    touch "$log_dir/done"
    wait "$shipper"
  elif [ -n "$agent_started" ]; then
    # The agent sends every 5 s, and what it has read when it stops.
    sleep 6
    "$agent" -a stop >/dev/null 2>&1
  fi
  shutdown -h now
  exit "$1"
}}
stop() {{
  log "$1; shutting down"
  finish 1
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

# The shipper: every 5 s, the log's new whole lines (at most 9,000 and 800 KB a call, within
# PutLogEvents' limits) go to the runner's stream; once more after `done` appears.
logs_call() {{
  if command -v aws >/dev/null 2>&1; then
    case $1 in
      CreateLogStream) aws logs create-log-stream --region "$region" --cli-input-json "file://$2" ;;
      PutLogEvents) aws logs put-log-events --region "$region" --cli-input-json "file://$2" ;;
    esac
  else
    signed logs "${{AWS_ENDPOINT_URL:-https://logs.$region.amazonaws.com}}/" -m 30 -X POST \
      -H "X-Amz-Target: Logs_20140328.$1" -H 'Content-Type: application/x-amz-json-1.1' \
      --data-binary "@$2"
  fi
}}
batch() {{
  python3 - "$log_file" "$1" "$log_group" "$log_stream" "$2" <<'RUNWAY_BATCH'
import json, sys, time
path, start, group, stream, out = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
with open(path, 'rb') as f:
    f.seek(start)
    data = f.read(800000)
events, used, now = [], 0, int(time.time() * 1000)
for line in data.split(b'\n')[:-1]:
    if len(events) == 9000:
        break
    events.append({{'timestamp': now, 'message': line.decode('utf-8', 'replace') or ' '}})
    used += len(line) + 1
if not events and len(data) == 800000:
    events, used = [{{'timestamp': now, 'message': data[:200000].decode('utf-8', 'replace')}}], 200000
if events:
    with open(out, 'w') as f:
        json.dump({{'logGroupName': group, 'logStreamName': stream, 'logEvents': events}}, f)
print(start + used)
RUNWAY_BATCH
}}
ship() {{
  local offset=0 next last body="$log_dir/batch.json"
  printf '{{"logGroupName":"%s","logStreamName":"%s"}}' "$log_group" "$log_stream" >"$log_dir/stream.json"
  logs_call CreateLogStream "$log_dir/stream.json" >/dev/null
  while :; do
    last=""
    [ -e "$log_dir/done" ] && last=yes
    while rm -f "$body" && next=$(batch "$offset" "$body") && [ -s "$body" ]; do
      logs_call PutLogEvents "$body" >/dev/null || break
      offset=$next
    done
    [ -n "$last" ] && return
    sleep 5
  done
}}
if [ -n "$log_group" ]; then
  if [ -x "$agent" ]; then
    printf '{{"logs":{{"force_flush_interval":5,"logs_collected":{{"files":{{"collect_list":[{{"file_path":"%s","log_group_name":"%s","log_stream_name":"%s"}},{{"file_path":"%s/_diag/*.log","log_group_name":"%s","log_stream_name":"%s/diag"}}]}}}}}}}}' \
      "$log_file" "$log_group" "$log_stream" "$runner_dir" "$log_group" "$log_stream" >"$log_dir/agent.json"
    "$agent" -a fetch-config -m ec2 -s -c "file:$log_dir/agent.json" >/dev/null && agent_started=yes
  fi
  if [ -z "$agent_started" ]; then
    if command -v python3 >/dev/null 2>&1; then
      ship 2>&4 &
      shipper=$!
    else
      log "no CloudWatch agent and no python3: the runner log stays in $log_file"
    fi
  fi
  log "runner $log_stream on $instance_id logs to $log_group"
fi

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
# The job hooks run as the runner user and copy their output into the runner log.
[ -z "$log_group" ] || chown "$runner_user" "$log_file"
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
log "starting the runner"
sudo -u "$runner_user" env{hook_env} ./run.sh --jitconfig "$config"
log "the runner exited with $?"
finish 0
"#,
            imds = self.imds_url.trim_end_matches('/'),
            prefix = self.jit_prefix,
            runner_dir = self.runner_dir,
            runner_user = self.runner_user,
        )
    }

    /// The Windows user data: PowerShell, run once (`<persist>false</persist>`). The runner
    /// runs as the account EC2Launch runs user data as (the pool's `runner_user` is for
    /// Linux; config checks refuse it on Windows pools).
    pub fn windows(&self) -> String {
        let install = self.install.as_ref();
        let runner = install.and_then(|i| i.win_x64.as_ref());
        let bucket = install.map_or("", |i| i.bucket.as_str());
        let version = install.map_or("", |i| i.version.as_str());
        let (key, sha256) = runner.map_or(("", ""), |r| (r.key.as_str(), r.sha256.as_str()));
        let logs = self.logs.as_ref();
        let log_group = logs.map_or("", |l| l.group.as_str());
        let log_stream = logs.map_or("", |l| l.stream.as_str());
        let log_dir = logs.map_or(DEFAULT_WINDOWS_LOG_DIR, |l| l.dir.as_str());
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
                    "& powershell -NoProfile -ExecutionPolicy Bypass -File \"{file}\" 2>&1 | Write-Log\n\
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
# image lacks it; one ephemeral runner runs; its output goes to CloudWatch Logs; then the
# instance shuts down (and terminates).
$ErrorActionPreference = 'Stop'
$imds = '{imds}/latest'
$parameterPrefix = '{prefix}'
$runnerDir = '{runner_dir}'
$hooksDir = Join-Path $runnerDir '.runway-hooks'
$cacheBucket = '{bucket}'
$runnerVersion = '{version}'
$package = '{key}'
$sha256 = '{sha256}'
$logGroup = '{log_group}'
$logStream = '{log_stream}'
$logDir = '{log_dir}'
$logFile = Join-Path $logDir 'runner.log'
$agent = Join-Path $env:ProgramFiles 'Amazon\AmazonCloudWatchAgent\amazon-cloudwatch-agent-ctl.ps1'
$shipper = $null
$agentStarted = $false
New-Item -ItemType Directory -Force -Path $logDir | Out-Null
function Write-Log {{
  process {{ "$_" | Tee-Object -FilePath $logFile -Append }}
}}
function Stop-Logs {{
  if ($shipper) {{
    Start-Sleep -Seconds 1
    New-Item -ItemType File -Force -Path (Join-Path $logDir 'done') | Out-Null
    Wait-Job $shipper -Timeout 120 | Out-Null
  }} elseif ($agentStarted) {{
    # The agent sends every 5 s, and what it has read when it stops.
    Start-Sleep -Seconds 6
    & $agent -a stop | Out-Null
  }}
}}
function Stop-Boot([string]$why) {{
  "runway: $why; shutting down" | Write-Log
  Stop-Logs
  shutdown /s /t 0
  exit 1
}}
# The shipper: every 5 s, the log's new lines (at most 9,000 a call) go to the runner's
# stream; once more after `done` appears.
$ship = {{
  param($region, $logGroup, $logStream, $logFile, $logDir)
  try {{ New-CWLLogStream -Region $region -LogGroupName $logGroup -LogStreamName $logStream }} catch {{ }}
  $sent = 0
  while ($true) {{
    $last = Test-Path (Join-Path $logDir 'done')
    $lines = @(Get-Content -Path $logFile -ErrorAction SilentlyContinue)
    while ($sent -lt $lines.Count) {{
      $now = [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds()
      $take = [Math]::Min(9000, $lines.Count - $sent)
      $events = $lines[$sent..($sent + $take - 1)] | ForEach-Object {{
        $event = New-Object Amazon.CloudWatchLogs.Model.InputLogEvent
        $event.Message = if ($_) {{ $_ }} else {{ ' ' }}
        $event.Timestamp = [DateTimeOffset]::FromUnixTimeMilliseconds($now).UtcDateTime
        $event
      }}
      try {{ Write-CWLLogEvent -Region $region -LogGroupName $logGroup -LogStreamName $logStream -LogEvent $events | Out-Null }}
      catch {{ break }}
      $sent += $take
    }}
    if ($last) {{ return }}
    Start-Sleep -Seconds 5
  }}
}}
try {{
  $token = Invoke-RestMethod -Method Put -Uri "$imds/api/token" -Headers @{{ 'X-aws-ec2-metadata-token-ttl-seconds' = '21600' }}
  $metadata = @{{ 'X-aws-ec2-metadata-token' = $token }}
  $instanceId = Invoke-RestMethod -Uri "$imds/meta-data/instance-id" -Headers $metadata
  $region = Invoke-RestMethod -Uri "$imds/meta-data/placement/region" -Headers $metadata
  if ($logGroup) {{
    if (Test-Path $agent) {{
      $agentConfig = Join-Path $logDir 'agent.json'
      @{{ logs = @{{ force_flush_interval = 5; logs_collected = @{{ files = @{{ collect_list = @(
        @{{ file_path = $logFile; log_group_name = $logGroup; log_stream_name = $logStream }},
        @{{ file_path = (Join-Path $runnerDir '_diag\*.log'); log_group_name = $logGroup; log_stream_name = "$logStream/diag" }}
      ) }} }} }} }} | ConvertTo-Json -Depth 8 | Set-Content -Path $agentConfig -Encoding ASCII
      & $agent -a fetch-config -m ec2 -s -c "file:$agentConfig" | Out-Null
      $agentStarted = $true
    }} else {{
      $shipper = Start-Job -ScriptBlock $ship -ArgumentList $region, $logGroup, $logStream, $logFile, $logDir
    }}
    "runway: runner $logStream on $instanceId logs to $logGroup" | Write-Log
  }}
  $parameter = "$parameterPrefix/$instanceId"
  $config = $null
  for ($try = 0; $try -lt 60 -and -not $config; $try++) {{
    try {{ $config = (Get-SSMParameter -Region $region -Name $parameter -WithDecryption $true).Value }}
    catch {{ Start-Sleep -Seconds 5 }}
  }}
  if (-not $config) {{ Stop-Boot "no JIT config at $parameter" }}
  try {{ Remove-SSMParameter -Region $region -Name $parameter -Force }}
  catch {{ "runway: could not delete $parameter; runway's teardown removes it" | Write-Log }}
  if (-not (Test-Path (Join-Path $runnerDir 'run.cmd'))) {{
    if (-not $cacheBucket -or -not $package) {{ Stop-Boot "no runner in $runnerDir and no runner cache to install one from" }}
    "runway: installing runner $runnerVersion from s3://$cacheBucket/$package" | Write-Log
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
  # Windows PowerShell turns a native program's stderr line into a terminating error under
  # 'Stop': the hooks' and the runner's output is only logged.
  $ErrorActionPreference = 'Continue'
{hooks}  Set-Location $runnerDir
  "runway: starting the runner" | Write-Log
  & .\run.cmd --jitconfig $config 2>&1 | Write-Log
  "runway: the runner exited with $LASTEXITCODE" | Write-Log
}} catch {{
  "runway: $_" | Write-Log
}}
Stop-Logs
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
            logs: Some(BootLogs {
                group: "/runway/ci/runners/linux-x64".into(),
                stream: "ci-7-a1-1".into(),
                dir: DEFAULT_LINUX_LOG_DIR.into(),
            }),
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
        // The output goes to the runner's stream: the agent's or the script's shipper.
        assert!(script.contains("log_group=\"/runway/ci/runners/linux-x64\""));
        assert!(script.contains("log_stream=\"ci-7-a1-1\""));
        assert!(script.contains("exec > >(tee -a \"$log_file\" >&3)"));
        assert!(script.contains("amazon-cloudwatch-agent-ctl"));
        assert!(script.contains("Logs_20140328.$1"));
        assert!(script.contains("aws logs put-log-events"));
        // Job hooks copy their output into the runner log; before_runner's is already there.
        assert!(script.contains(
            "<<'RUNWAY_HOOK_END'\nexec > >(tee -a '/var/log/runway/runner.log') 2>&1\necho started"
        ));
        assert!(script.contains("<<'RUNWAY_HOOK_END'\ndnf install -y git"));
        assert!(script.ends_with("finish 0\n"));
    }

    #[test]
    fn the_agent_config_and_stream_request_the_script_writes_are_json() {
        let script = boot().render(BootOs::Linux).unwrap();
        for start in ["printf '{\"logs\"", "printf '{\"logGroupName\""] {
            let line = script
                .lines()
                .find(|line| line.trim_start().starts_with(start))
                .unwrap_or_else(|| panic!("{start}"));
            let format = line
                .split_once("printf '")
                .and_then(|(_, rest)| rest.rsplit_once('\''))
                .map(|(format, _)| format)
                .unwrap();
            let filled = format.replace("%s", "x");
            let parsed: serde_json::Value =
                serde_json::from_str(&filled).unwrap_or_else(|error| panic!("{error}: {filled}"));
            assert!(parsed.is_object());
        }
    }

    #[test]
    fn without_logs_the_output_stays_on_the_instance() {
        let mut boot = boot();
        boot.logs = None;
        let script = boot.render(BootOs::Linux).unwrap();
        assert!(script.contains("log_group=\"\""));
        assert!(!script.contains("exec > >(tee -a '"));
    }

    #[test]
    fn log_names_that_would_break_the_script_are_refused() {
        for (group, stream) in [("/runway/ci\"; reboot", "r"), ("/g", "a'b"), ("", "r")] {
            let mut boot = boot();
            boot.logs = Some(BootLogs {
                group: group.into(),
                stream: stream.into(),
                dir: DEFAULT_LINUX_LOG_DIR.into(),
            });
            assert!(boot.render(BootOs::Linux).is_err(), "{group:?} {stream:?}");
        }
    }

    #[test]
    fn the_windows_script_says_the_same_in_powershell() {
        let mut boot = boot();
        boot.runner_dir = "C:\\actions-runner".into();
        boot.logs = Some(BootLogs {
            group: "/runway/ci/runners/win".into(),
            stream: "ci-7-a1-1".into(),
            dir: DEFAULT_WINDOWS_LOG_DIR.into(),
        });
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
        assert!(script.contains("$logGroup = '/runway/ci/runners/win'"));
        assert!(script.contains("Write-CWLLogEvent"));
        assert!(script.contains("amazon-cloudwatch-agent-ctl.ps1"));
        assert!(script.contains("& .\\run.cmd --jitconfig $config 2>&1 | Write-Log"));
        assert!(script.contains("Stop-Logs\nshutdown /s /t 0\n</powershell>"));
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
