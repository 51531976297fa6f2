"""Time from pressing the submit key to the next item being visible, in Chromium.

Seeds a database (100,000 items and 20 annotators by default, as bench_label_rerun), starts
`annotate serve` on a free loopback port, signs in with the keyboard and labels items with the
browser form's focus model: a number key in each field, Tab between them, then Ctrl+Enter. The
clock runs from the Ctrl+Enter keypress to the moment the next item's header and its empty
form are on screen. Also reports option key to the option showing as chosen, and the server
process's CPU time (user + system, from /proc) per labeled item. Prints p50 and p95 over
`--items-to-label` items (after 5 warm-up items, and once the server is idle: its start-up
warming of the lead figures is a one-time cost, not a label's).

`--seeded FILE` copies a seeded database from FILE (made there on first use).

    python bench/bench_submit_latency.py [--items 100000] [--items-to-label 50] [--code DIR]
        [--seeded FILE]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_label_rerun import seed_big  # noqa: E402

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# (key, field, option) per item: number keys in the marked field, Tab to the next one.
KEYS = [("1", "intent", "benign"), ("Tab", "", ""), ("1", "epistemic_status", "answerable"),
        ("Tab", "", ""), ("1", "right_action", "answer"), ("Tab", "", ""),
        ("1", "observed_action", "answer"), ("Tab", "", ""), ("Tab", "", ""),
        ("3", "confidence", "high")]  # fmt: skip
FORM = "document.querySelector('[data-testid=stBidiComponentIsolated]')?.shadowRoot"
# The next item is on screen: a new header, and its form ready for keys.
CHANGED = (
    "([header, old]) => { const e = document.querySelector('.st-key-item-header');"
    " const r = " + FORM + "; const f = r && r.querySelector('.lf');"
    " return e && e.innerText !== header && f && f.dataset.assignment !== old"
    " && f.dataset.state === 'ready'; }"
)


# Measured inside the page too, without Playwright's round trips: from the number key's
# keydown event to the first animation frame after its option shows as chosen. Installed
# before the page's own scripts, so that it sees the key before the form takes it.
IN_PAGE = """
window.__keyAt = null; window.__shown = [];
window.addEventListener('keydown', (e) => {
  if (e.key >= '1' && e.key <= '9') window.__keyAt = e.timeStamp;
}, true);
new MutationObserver(() => {
  const host = document.querySelector('[data-testid=stBidiComponentIsolated]');
  if (!host || !host.shadowRoot || host.__watched) return;
  host.__watched = true;
  new MutationObserver((changes) => {
    const at = window.__keyAt;
    if (at === null) return;
    if (!changes.some((c) => c.target.getAttribute('aria-pressed') === 'true')) return;
    window.__keyAt = null;
    requestAnimationFrame(() => window.__shown.push(performance.now() - at));
  }).observe(host.shadowRoot, {subtree: true, attributes: true, attributeFilter: ['aria-pressed']});
}).observe(document, {subtree: true, childList: true});
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(url: str, workdir: Path, code: Path = ROOT) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTATE_")}
    env.update(ANNOTATE_DATABASE_URL=url, PYTHONPATH=str(code))
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from annotate.cli import main; main()",
            "serve",
            "--port",
            str(port),
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2):
                return process, base
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, timeout_s: float = 180.0) -> float:
    """Wait until server `pid` is idle (under 2% of a core over a second, twice running): its
    start-up work (`annotate serve` warms the lead figures of recently labeled campaigns) is
    then done and stays out of the per-label figures. Returns the seconds waited."""
    started = time.monotonic()
    quiet = 0
    last = proc_cpu(pid)
    while quiet < 2 and time.monotonic() - started < timeout_s:
        time.sleep(1.0)
        now = proc_cpu(pid)
        quiet = quiet + 1 if now - last < 0.02 else 0
        last = now
    return time.monotonic() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def label_items(page: Any, count: int) -> tuple[list[float], list[float]]:
    submit, keypress = [], []
    for _ in range(count):
        for key, name, value in KEYS:
            t0 = time.perf_counter()
            page.keyboard.press(key)
            if name:
                page.wait_for_selector(
                    f"button.lf-opt[data-field={name}][data-value={value}][aria-pressed=true]"
                )
                keypress.append(time.perf_counter() - t0)
        header = page.inner_text(".st-key-item-header")
        old = page.get_attribute(".lf", "data-assignment")
        t0 = time.perf_counter()
        page.keyboard.press("Control+Enter")
        page.wait_for_function(CHANGED, arg=[header, old], polling="raf")
        submit.append(time.perf_counter() - t0)
    return submit, keypress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--items-to-label", type=int, default=50)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout the server runs")
    parser.add_argument("--seeded", type=Path, help="a seeded SQLite file to copy (or create)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        if args.seeded is not None and args.seeded.exists():
            shutil.copy(args.seeded, f"{tmp}/bench.db")
        else:
            seed_big(url, items=args.items, annotators=args.annotators, labels_each=1000)
            if args.seeded is not None:
                shutil.copy(f"{tmp}/bench.db", args.seeded)
        process, base = serve(url, Path(tmp), args.code)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.add_init_script(IN_PAGE)
                page.set_default_timeout(30_000)
                page.goto(base + "/")
                page.wait_for_function(
                    "document.activeElement && document.activeElement.id === 'name'"
                )
                page.keyboard.type("ann00")
                page.keyboard.press("Tab")
                page.keyboard.type("bench password")
                page.keyboard.press("Enter")
                page.wait_for_selector(".lf[data-state=ready]")
                label_items(page, 5)  # warm-up
                settle(process.pid)
                page.evaluate("window.__shown = []")
                cpu0 = proc_cpu(process.pid)
                submit, keypress = label_items(page, args.items_to_label)
                cpu = (proc_cpu(process.pid) - cpu0) / len(submit)
                shown = [ms / 1000 for ms in page.evaluate("window.__shown")]
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=10)
    print(
        f"code {args.code}; {args.items:,} items, {args.annotators} annotators; "
        f"{len(submit)} items labeled; load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"submit key -> next item visible: p50 {statistics.median(submit) * 1000:.0f} ms, "
        f"p95 {percentile(submit, 0.95) * 1000:.0f} ms (target p95 < 120 ms)"
    )
    print(f"server CPU per label: {cpu * 1000:.1f} ms (target <= 15 ms)")
    print(
        f"option key -> shown as chosen: p50 {statistics.median(keypress) * 1000:.0f} ms, "
        f"p95 {percentile(keypress, 0.95) * 1000:.0f} ms (target p95 < 30 ms), as Playwright "
        "sees it"
    )
    print(
        f"option key -> next frame with it shown, in the page ({len(shown)} keys): "
        f"p50 {statistics.median(shown) * 1000:.1f} ms, p95 {percentile(shown, 0.95) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
