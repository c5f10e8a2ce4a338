"""Make the README screenshots from the embedded demo: `python scripts/screenshots.py`.

Runs the cockpit headless on the simulated cluster in its "broken" phase (frontend's DNS
lookups dropped by the egress policy), saves SVGs of the Flows tab and of the detail of
a dropped DNS flow, and converts them to PNG with rsvg-convert (Debian: librsvg2-bin).
Output, every tab in the broken phase and more: screenshots/flows.{svg,png},
flow-detail.{svg,png}, policies.{svg,png}, services.{svg,png} (after healthy then broken;
`--services`: only that one), dns.{svg,png} (the verdict), talk.{svg,png} (talk mode with
its caption, step 3) and browser.png (`kcockpit serve` in Debian's chromium, through
Playwright; skipped with a note when chromium is missing).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tui"))

from kcockpit.model.record import VERDICT_DROPPED  # noqa: E402
from kcockpit.model.store import FlowStore  # noqa: E402
from kcockpit.sim.embedded import DemoCluster  # noqa: E402
from kcockpit.ui.app import CockpitApp  # noqa: E402
from kcockpit.ui.tabs.flows import FlowsTab  # noqa: E402
from kcockpit.ui.screens.detail import FlowDetailScreen  # noqa: E402
from kcockpit.application.session import DemoSession  # noqa: E402


async def wait_for(predicate, pilot, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if predicate():
            return
        await pilot.pause(0.1)
    raise SystemExit("screenshots: the demo produced no matching flows in time")


async def capture(out: Path, size: tuple[int, int], seed: int) -> list[Path]:
    cluster = DemoCluster(seed=seed, rate=300, scenario="broken")
    # services: the demo's Kubernetes API feeds the policy engine, so the detail explains
    # the drop and shows the fix; no Prometheus (nothing on these two screens uses it).
    session = DemoSession(cluster, FlowStore(100_000), services=True, start_prometheus=False)
    app = CockpitApp(session, initial_filter="ns=otel-demo")
    written = []
    async with app.run_test(size=size) as pilot:
        table = app.tab(FlowsTab).table
        policy = session.integrations.policy
        await wait_for(lambda: app.session.state().state == "live" and len(table.rows) > size[1], pilot)
        await wait_for(lambda: policy.data().cluster is not None, pilot)
        await pilot.pause(2.5)  # a few status refreshes: flows/s and nodes settle
        written.append(Path(app.save_screenshot("flows.svg", str(out))))
        rows = table.rows.snapshot()
        drops = [i for i, r in enumerate(rows) if r.verdict == VERDICT_DROPPED and r.destination.port == 53]
        if not drops:
            raise SystemExit("screenshots: no dropped DNS flow in the view")
        table.pause()
        table.cursor = drops[-1]
        table.action_open()
        await wait_for(lambda: isinstance(app.screen, FlowDetailScreen), pilot)
        await pilot.pause(0.3)
        written.append(Path(app.save_screenshot("flow-detail.svg", str(out))))
        # --- the Policies tab (broken phase): verdict groups, the DNS drop on top
        from kcockpit.ui.tabs.policies import PoliciesTab

        await pilot.press("escape", "4")
        tab = app.tab(PoliciesTab)
        await wait_for(lambda: tab.model is not None and tab.model.rows and not tab.model.reason, pilot)
        for _ in range(200):  # kafka's audit verdicts come every few seconds: show one
            if any(r.group.verdict == "AUDIT" for r in tab.model.rows):
                break
            await pilot.pause(0.1)
        await pilot.pause(0.5)
        written.append(Path(app.save_screenshot("policies.svg", str(out))))
    return written


# --- the Services tab (screenshots/services.{svg,png}) ------------------------------------


async def capture_services(out: Path, size: tuple[int, int], seed: int) -> list[Path]:
    """The Services tab after 15 s healthy then 25 s broken: loadgenerator -> frontend red
    with 5xx, frontend's DNS dropped (POLICY_DENIED), its backend calls stopped."""
    from kcockpit.ui.tabs.services import ServicesTab

    cluster = DemoCluster(seed=seed, rate=300, scenario="healthy")
    session = DemoSession(cluster, FlowStore(100_000), services=True, start_prometheus=False)
    app = CockpitApp(session)
    async with app.run_test(size=size) as pilot:
        await wait_for(lambda: app.session.state().state == "live", pilot)
        await pilot.pause(15)
        session.demo.set_phase("broken")
        await pilot.pause(25)
        await pilot.press("2")
        tab = app.tab(ServicesTab)
        await wait_for(lambda: bool(tab.tree_view.rows), pilot)
        rows = tab.tree_view.rows
        frontend = next(i for i, r in enumerate(rows) if r.parent is not None and r.node.endpoint.name == "otel-demo/frontend")
        tab.tree_view.move_to(frontend)
        await pilot.pause(1.0)
        return [Path(app.save_screenshot("services.svg", str(out)))]


# --- the DNS tab ---------------------------------------------------------------------------

async def capture_dns(out: Path, size: tuple[int, int], seed: int) -> list[Path]:
    """screenshots/dns.svg: the DNS tab's verdict on the broken phase. A session of its own,
    unfiltered: the Flows tab's filter above would make the aggregates count a stream of
    their own, which takes a while to fill the table."""
    from kcockpit.ui.tabs.dns import DnsTab

    cluster = DemoCluster(seed=seed, rate=300, scenario="broken")
    session = DemoSession(cluster, FlowStore(100_000), services=True, start_prometheus=False)
    app = CockpitApp(session)
    async with app.run_test(size=size) as pilot:
        await wait_for(lambda: app.session.state().state == "live", pilot)
        await pilot.press("3")
        tab = app.tab(DnsTab)
        await wait_for(lambda: tab.health is not None and len(tab.names) >= 12
                       and any(v.kind == "dropped" and v.correlation for v in tab.health.verdicts), pilot, timeout=90)
        await pilot.pause(1.0)
        tab.focus_verdicts()
        app.clear_notifications()
        await pilot.pause(0.3)
        return [Path(app.save_screenshot("dns.svg", str(out)))]


# --- talk mode and the browser ------------------------------------------------------------

async def capture_talk(out: Path, size: tuple[int, int], seed: int) -> list[Path]:
    """Talk mode at step 3 (the Services tab on the broken demo), caption bar on top."""
    from kcockpit.application.talk import built_in_script
    from kcockpit.ui.tabs.services import ServicesTab

    cluster = DemoCluster(seed=seed, rate=300, scenario="healthy")
    session = DemoSession(cluster, FlowStore(100_000), services=True, start_prometheus=False)
    app = CockpitApp(session, theme="high-contrast", talk=built_in_script())
    async with app.run_test(size=size) as pilot:
        await wait_for(lambda: app.session.state().state == "live", pilot)
        await pilot.pause(10)
        await pilot.press("pagedown")
        await pilot.pause(20)
        await pilot.press("pagedown")
        tab = app.tab(ServicesTab)
        await wait_for(lambda: bool(tab.tree_view.rows), pilot)
        await pilot.pause(2.0)
        return [Path(app.save_screenshot("talk.svg", str(out)))]


def capture_browser(out: Path, seed: int) -> list[Path]:
    """`kcockpit serve --demo` in headless chromium: the page once the cockpit drew, broken
    phase (`]`), Flows tab."""
    import os
    import socket
    import time

    chromium = shutil.which("chromium")
    if chromium is None:
        print("screenshots: chromium not found (apt-get install chromium): browser.png skipped", file=sys.stderr)
        return []
    from playwright.sync_api import sync_playwright

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "kcockpit", "serve", "--port", str(port), "--demo", "--seed", str(seed),
                               "--no-kubernetes"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "tui")}, start_new_session=True)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("body.-first-byte", timeout=60_000)
            page.wait_for_timeout(4000)
            page.locator(".xterm-helper-textarea").focus()  # keys to the cockpit; a click would select a row
            page.keyboard.press("]")  # the broken phase
            page.wait_for_timeout(8000)
            path = out / "browser.png"
            page.screenshot(path=str(path))
            browser.close()
        return [path]
    finally:
        os.killpg(server.pid, 15)
        server.wait(10)


def svg_to_png(svg: Path, png: Path) -> None:
    """rsvg-convert collapses the leading no-break spaces Textual indents with (YAML and
    labels lost their indentation); plain spaces under xml:space="preserve" keep it."""
    text = svg.read_text(encoding="utf-8")
    text = text.replace("<svg ", '<svg xml:space="preserve" ', 1).replace("&#160;", " ")
    subprocess.run(["rsvg-convert", "-o", str(png)], input=text.encode(), check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--width", type=int, default=120)
    parser.add_argument("--height", type=int, default=36)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--services", action="store_true", help="only the Services tab's screenshot")
    args = parser.parse_args()
    if shutil.which("rsvg-convert") is None:
        print("screenshots: rsvg-convert not found (Debian: apt-get install librsvg2-bin)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    shots = [] if args.services else asyncio.run(capture(args.out, (args.width, args.height), args.seed))
    shots += asyncio.run(capture_services(args.out, (args.width, args.height), args.seed))
    if not args.services:
        shots += asyncio.run(capture_dns(args.out, (args.width, args.height), args.seed))
        shots += asyncio.run(capture_talk(args.out, (args.width, args.height), args.seed))
    for svg in shots:
        png = svg.with_suffix(".png")
        svg_to_png(svg, png)
        print(f"wrote {svg} and {png}")
    if not args.services:
        for png in capture_browser(args.out, args.seed):
            print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
