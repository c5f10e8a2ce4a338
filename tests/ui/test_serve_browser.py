"""`kcockpit serve` in a real browser: Debian's chromium, driven headless by Playwright (no
browser is downloaded), loads the page, waits for the cockpit to draw, presses keys and
checks what the page received. Required in CI (CI=true), skipped with a reason elsewhere
when chromium is missing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ui_support import scenario_records

from kcockpit.sources.capture import write_capture
from kcockpit.ui.serve import cockpit_arguments, is_loopback

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
# What the page's websocket receives, decoded, kept for the test to read: the terminal is drawn
# on a canvas, so its text is read from the stream that draws it.
RECORD_FRAMES = """
(() => {
  window.__kcockpit = "";
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const socket = new Native(...args);
    const decoder = new TextDecoder("utf-8");
    socket.addEventListener("message", (event) => {
      if (typeof event.data === "string") { window.__kcockpit += event.data; return; }
      const read = (buffer) => { window.__kcockpit += decoder.decode(new Uint8Array(buffer), {stream: true}); };
      if (event.data instanceof Blob) { event.data.arrayBuffer().then(read); } else { read(event.data); }
    });
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
})();
"""


def test_the_serve_command_passes_on_the_cockpits_options_only() -> None:
    assert cockpit_arguments(["--demo", "--host", "0.0.0.0", "--port=8001", "--seed", "3"]) == ["--demo", "--seed", "3"]
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path: Path):
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    capture = tmp_path / "flows.json"
    write_capture(scenario_records(300), capture)
    port = free_port()
    env = {**os.environ, "KCOCKPIT_EXPORT_DIR": str(tmp_path / "exports")}
    server = subprocess.Popen(
        [sys.executable, "-m", "kcockpit", "serve", "--port", str(port), "--input-file", str(capture), "--no-kubernetes"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                output = server.stdout.read().decode(errors="replace") if server.poll() is not None else ""
                server.kill()
                pytest.fail(f"kcockpit serve did not listen on {port}: {output}")
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/"
    os.killpg(server.pid, 15)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, 9)
        server.wait(5)


def test_the_cockpit_runs_in_a_browser_and_answers_keys(served: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.add_init_script(RECORD_FRAMES)
            page.goto(served)

            def received() -> str:
                return page.evaluate("window.__kcockpit || ''")

            def wait_for(text: str, timeout: float = 30) -> None:
                deadline = time.monotonic() + timeout
                while text not in received():
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{text!r} never reached the page; it got {len(received())} characters")
                    page.wait_for_timeout(100)

            page.wait_for_selector("body.-first-byte", timeout=30_000)  # the cockpit drew its first frame
            wait_for("Flows")
            wait_for("frontend")
            page.locator(".textual-terminal").click()
            page.keyboard.press("?")
            wait_for("BINDING ID")  # the help screen
            page.screenshot(path=str(tmp_path / "browser.png"))
            page.keyboard.press("Escape")
            page.wait_for_timeout(300)  # esc then q at once reads as alt+q in a terminal
            page.keyboard.press("q")
            page.wait_for_selector("body.-closed", timeout=30_000)  # the cockpit quit: the page says so
        finally:
            browser.close()
