#!/usr/bin/env python3
"""Clicks through runway's setup page in headless Chromium, as a person would.

Usage: setup_click_through.py SETUP_URL ORGANIZATION

Drives Chromium over the DevTools protocol (a WebSocket on 127.0.0.1): opens the setup page
with its token, types the organisation, presses "Create the GitHub App", lets the next page
post the manifest to GitHub by itself, presses GitHub's "Create GitHub App" button, and waits
for the page that links to the App's installation. Prints one JSON object: the pages seen,
the App's slug, the install link, and any script error the pages raised. Exits non-zero
with a sentence on stderr when a step does not happen within its time.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import websocket  # websocket-client, from scripts/requirements-dev.txt

STEP_SECONDS = 30


class Failed(Exception):
    pass


class Page:
    """One page target's DevTools connection: commands by id, events kept."""

    def __init__(self, url):
        self.socket = websocket.create_connection(url, timeout=STEP_SECONDS, suppress_origin=True)
        self.next_id = 0
        self.errors = []

    def call(self, method, **params):
        self.next_id += 1
        ident = self.next_id
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("method") == "Runtime.exceptionThrown":
                details = message["params"]["exceptionDetails"]
                self.errors.append(details.get("exception", {}).get("description") or details.get("text"))
            if message.get("id") == ident:
                if "error" in message:
                    raise Failed(f"{method} failed: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise Failed(f"{expression!r} threw: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, what, expression):
        deadline = time.monotonic() + STEP_SECONDS
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except Failed:
                value = None  # the document is being replaced by a navigation
            if value:
                return value
            time.sleep(0.1)
        location = self.evaluate("location.href")
        body = self.evaluate("document.body ? document.body.innerText.slice(0, 400) : ''")
        raise Failed(f"{what} did not happen in {STEP_SECONDS} s (at {location}: {body!r})")


def devtools_port(profile, chrome):
    port_file = os.path.join(profile, "DevToolsActivePort")
    deadline = time.monotonic() + STEP_SECONDS
    while time.monotonic() < deadline:
        if chrome.poll() is not None:
            raise Failed(f"chromium exited with {chrome.returncode} before it listened")
        try:
            with open(port_file) as lines:
                first = lines.readline().strip()
            if first:
                return int(first)
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.1)
    raise Failed(f"chromium did not open its DevTools port in {STEP_SECONDS} s")


def page_socket(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=STEP_SECONDS) as answer:
        targets = json.load(answer)
    for target in targets:
        if target.get("type") == "page":
            return target["webSocketDebuggerUrl"]
    raise Failed(f"chromium lists no page target: {targets}")


def click_through(page, setup_url, organization):
    seen = []
    page.call("Page.enable")
    page.call("Runtime.enable")
    page.call("Page.navigate", url=setup_url)
    seen.append(page.wait_for("the setup page", "document.getElementById('create-app') && location.href"))
    page.evaluate(
        "document.querySelector('input[name=organization]').value = "
        + json.dumps(organization)
        + "; document.getElementById('create-app').click(); true"
    )
    # runway's next page posts the manifest to GitHub by itself.
    seen.append(
        page.wait_for(
            "GitHub's page asking to create the App",
            "document.querySelector('h1') && document.querySelector('h1').innerText"
            ".startsWith('Create GitHub App for') && location.href",
        )
    )
    page.evaluate("document.getElementById('create-app').click(); true")
    seen.append(page.wait_for("runway's last page", "document.getElementById('install-app') && location.href"))
    return {
        "pages": seen,
        "slug": page.evaluate("document.getElementById('app-slug').innerText"),
        "install_url": page.evaluate("document.getElementById('install-app').href"),
        "script_errors": page.errors,
    }


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    setup_url, organization = sys.argv[1], sys.argv[2]
    chromium = shutil.which("chromium")
    if chromium is None:
        print("chromium is not on PATH; run scripts/setup.sh (it installs Debian's chromium)", file=sys.stderr)
        return 1
    profile = tempfile.mkdtemp(prefix="runway-chromium-")
    chrome = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        page = Page(page_socket(devtools_port(profile, chrome)))
        print(json.dumps(click_through(page, setup_url, organization)))
        return 0
    except (Failed, OSError, websocket.WebSocketException) as error:
        print(f"the click-through failed: {error}", file=sys.stderr)
        return 1
    finally:
        chrome.terminate()
        try:
            chrome.wait(timeout=10)
        except subprocess.TimeoutExpired:
            chrome.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
