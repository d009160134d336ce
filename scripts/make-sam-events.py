#!/usr/bin/env python3
"""Writes sam/events/*.json, the sample events for `sam local invoke`, from the real GitHub
payloads in shared/fixtures and from the job and reaper state machines. Run from anywhere:
python3 scripts/make-sam-events.py

The webhook events are signed with the secret in sam/env.json (a sample, never a real one).
The reaper events (reap-<sweep>.json) are the Parameters of each Task of
statemachines/reaper.asl.json, with the execution name filled in.
"""
import hashlib
import hmac
import json
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent
fixtures = root.parent / "shared" / "fixtures" / "github" / "webhooks" / "workflow_job"
events = root / "sam" / "events"
env = json.loads((root / "sam" / "env.json").read_text())
secret = env["Parameters"]["RUNWAY_WEBHOOK_SECRET"].encode()


def api_event(fixture: str, delivery: str) -> dict:
    body = (fixtures / fixture).read_bytes()
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {
        "version": "2.0",
        "routeKey": "POST /webhook",
        "rawPath": "/webhook",
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "user-agent": "GitHub-Hookshot/1",
            "x-github-event": "workflow_job",
            "x-github-delivery": delivery,
            "x-github-hook-installation-target-type": "integration",
            "x-hub-signature-256": signature,
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "runway",
            "domainName": "runway.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "runway",
            "http": {
                "method": "POST",
                "path": "/webhook",
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "GitHub-Hookshot/1",
            },
            "requestId": delivery,
            "routeKey": "POST /webhook",
            "stage": "$default",
            "time": "25/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795564800000,
        },
        "body": body.decode(),
        "isBase64Encoded": False,
    }


def execution_input(fixture: str, delivery: str) -> dict:
    """What the webhook starts the execution with (runway_webhook::JobExecutionInput)."""
    event = json.loads((fixtures / fixture).read_text())
    job, repo = event["workflow_job"], event["repository"]
    return {
        "job": {
            "id": job["id"],
            "run_id": job["run_id"],
            "run_attempt": job["run_attempt"],
            "name": job["name"],
            "workflow_name": job.get("workflow_name"),
            "labels": job["labels"],
            "head_branch": job.get("head_branch"),
            "html_url": job.get("html_url"),
            "created_at": job.get("created_at"),
        },
        "repository": {
            "id": repo["id"],
            "owner": repo["owner"]["login"],
            "name": repo["name"],
            "full_name": repo["full_name"],
            "private": repo.get("private"),
        },
        "organization": (event.get("organization") or {}).get("login"),
        "installation_id": (event.get("installation") or {}).get("id"),
        "delivery_id": delivery,
    }


def reap_tasks(value):
    """The Parameters of every Task calling the reap function, at any depth."""
    if isinstance(value, dict):
        if value.get("Type") == "Task" and value.get("Resource") == "${ReapFunctionArn}":
            yield value.get("Parameters", {})
        for child in value.values():
            yield from reap_tasks(child)
    elif isinstance(value, list):
        for item in value:
            yield from reap_tasks(item)


def reap_event(parameters: dict, execution: str) -> dict:
    """The task's input as the Lambda gets it: every `key.$` path resolved (only the
    execution's name, `$$.Execution.Name`, is used by the reaper)."""
    event = {}
    for key, value in parameters.items():
        if key.endswith(".$"):
            if value != "$$.Execution.Name":
                raise SystemExit(f"reap task parameter {key}: {value} is not the execution name")
            event[key[:-2]] = execution
        else:
            event[key] = value
    return event


def write(name: str, value: dict) -> None:
    (events / name).write_text(json.dumps(value, indent=2) + "\n")


events.mkdir(parents=True, exist_ok=True)
delivery = "5c2b1a10-ca5e-11f0-8f5d-6e0e4f6a1a01"
queued = execution_input("06-queued.json", delivery)
job = queued["job"]
execution = f"job-{job['id']}-r{queued['repository']['id']}-a{job['run_attempt']}"

write("webhook-queued.json", api_event("06-queued.json", delivery))
write("webhook-in-progress.json", api_event("00-in_progress.json", "5c2b1a10-ca5e-11f0-8f5d-6e0e4f6a1a02"))
write("webhook-completed.json", api_event("01-completed.json", "5c2b1a10-ca5e-11f0-8f5d-6e0e4f6a1a03"))
# The step functions' events: each is the Parameters (or Payload) that a Task state of
# statemachines/job.asl.json passes to its function, resolved against one job's state. The
# step results in that state (route, admission, runner) are what the steps return for this
# job with sam/env.json's pool: handlers/support/tests/lambda.rs runs the steps and compares.
ROUTE = json.loads((root / "sam" / "sample-state" / "route.json").read_text())
ADMISSION = json.loads((root / "sam" / "sample-state" / "admission.json").read_text())
RUNNER = json.loads((root / "sam" / "sample-state" / "runner.json").read_text())
state = {
    "route": ROUTE,
    "admission": ADMISSION,
    "runner": RUNNER,
    # The runner-gone watch's answer: the runner left after running this job.
    "runner_status": {
        "status": "gone",
        "job_id": queued["job"]["id"],
        "reason": f"runner {RUNNER['runner_name']} finished job {queued['job']['id']} (success)",
    },
    "error": {
        "Error": "Runway.ProvisionFailed",
        "Cause": "no capacity for any instance type of pool linux-x64 in any subnet",
    },
}
context = {
    "$$.Execution.Name": execution,
    "$$.Execution.Input": queued,
    "$$.Task.Token": "AQCEAAAAKgAAAAMAAAAAAAAAAfSampleTaskTokenForSamLocalInvoke",
    # A wait's first run; its timed-out re-runs count up (the runner watch then asks GitHub).
    "$$.State.RetryCount": 0,
}
# Task state of job.asl.json -> sample event, one or more per step function.
samples = {
    "Route": "route.json",
    # A job's first admission: the state is the execution input and the route, no admission.
    "Admit": ("admit.json", {"$": {**queued, "route": ROUTE}}),
    "WaitForSlot": "wait-for-slot.json",
    "Provision": "provision.json",
    "AwaitJobEnd": "watch-job-completed.json",
    "AwaitRunnerGone": "watch-runner-gone.json",
    "CheckRunner": "check-runner.json",
    "Teardown": "teardown.json",
    "Release": "release-done.json",
    "ReleaseAfterFailure": "release-failed.json",
}


def job_tasks(states: dict):
    """Every Task state of the job machine, by name, at any depth."""
    for name, definition in states.items():
        if definition.get("Type") == "Task":
            yield name, definition
        for branch in definition.get("Branches", []):
            yield from job_tasks(branch["States"])
        for key in ("Iterator", "ItemProcessor"):
            if key in definition:
                yield from job_tasks(definition[key]["States"])


def resolve(parameters: dict, state: dict) -> dict:
    """The Parameters with every `key.$` path resolved: context paths, or `$.field`."""
    event = {}
    for key, value in parameters.items():
        if not key.endswith(".$"):
            event[key] = value
        elif value in context:
            event[key[:-2]] = context[value]
        elif value == "$":
            event[key[:-2]] = state["$"]
        elif value.startswith("$.") and value[2:] in state:
            event[key[:-2]] = state[value[2:]]
        else:
            raise SystemExit(f"job task parameter {key}: no sample value for {value}")
    return event


definition = json.loads((root / "statemachines" / "job.asl.json").read_text())
tasks = dict(job_tasks(definition["States"]))
for task, sample in samples.items():
    name, overrides = sample if isinstance(sample, tuple) else (sample, {})
    parameters = tasks[task]["Parameters"]
    # lambda:invoke.waitForTaskToken states pass their Payload to the function.
    parameters = parameters.get("Payload", parameters)
    write(name, resolve(parameters, {**state, **overrides}))

reaper = root / "statemachines" / "reaper.asl.json"
if reaper.exists():
    for parameters in reap_tasks(json.loads(reaper.read_text())):
        write(f"reap-{parameters['sweep']}.json", reap_event(parameters, "reaper-sample-execution"))
