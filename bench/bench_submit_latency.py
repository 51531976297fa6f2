"""Time from pressing the submit key to the next item being visible, in Chromium.

Seeds a database (100,000 items and 20 annotators by default, as bench_label_rerun), starts
`annotate serve` on a free loopback port, signs in with the keyboard and labels items: each
item gets five option keys, then Ctrl+Enter; the clock runs from the Ctrl+Enter keypress to
the moment the next item's header is on screen. Also reports option keypress to the button
showing as chosen. Prints p50 and p95 over `--items-to-label` items (after 5 warm-up items).

    python bench/bench_submit_latency.py [--items 100000] [--items-to-label 50]
"""

from __future__ import annotations

import argparse
import os
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
KEYS = "bn1q9"
OPTIONS = ["intent-benign", "epistemic_status-answerable", "right_action-answer",
           "observed_action-answer", "confidence-high"]  # fmt: skip
IDLE = (
    "document.querySelector('[data-testid=stApp]')"
    ".getAttribute('data-test-script-state') === 'notRunning'"
)
CHANGED = (
    "(old) => { const e = document.querySelector('.st-key-item-header');"
    " return e && e.innerText !== old; }"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTATE_")}
    env.update(ANNOTATE_DATABASE_URL=url, PYTHONPATH=str(ROOT))
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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def label_items(page: Any, count: int) -> tuple[list[float], list[float]]:
    submit, keypress = [], []
    for _ in range(count):
        page.wait_for_function(IDLE)
        for key, option in zip(KEYS, OPTIONS, strict=True):
            t0 = time.perf_counter()
            page.keyboard.press(key)
            page.wait_for_selector(f".st-key-opt-{option} [data-testid=stBaseButton-primary]")
            keypress.append(time.perf_counter() - t0)
        old = page.inner_text(".st-key-item-header")
        t0 = time.perf_counter()
        page.keyboard.press("Control+Enter")
        page.wait_for_function(CHANGED, arg=old, polling="raf")
        submit.append(time.perf_counter() - t0)
        page.wait_for_function(
            "!document.querySelector(\"[class*='st-key-opt-'] [data-testid=stBaseButton-primary]\")"
        )
        # Keys pressed while the page is still being rebuilt can miss their button.
        page.wait_for_function(IDLE)
    return submit, keypress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--items-to-label", type=int, default=50)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        seed_big(url, items=args.items, annotators=args.annotators, labels_each=1000)
        process, base = serve(url, Path(tmp))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
                )
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(30_000)
                page.goto(base + "/")
                page.wait_for_function(
                    "document.activeElement && document.activeElement.id === 'name'"
                )
                page.keyboard.type("ann00")
                page.keyboard.press("Tab")
                page.keyboard.type("bench password")
                page.keyboard.press("Enter")
                page.wait_for_selector(".st-key-item-header")
                label_items(page, 5)  # warm-up
                submit, keypress = label_items(page, args.items_to_label)
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=10)
    print(f"{args.items:,} items, {args.annotators} annotators; {len(submit)} items labeled")
    print(
        f"submit key -> next item visible: p50 {statistics.median(submit) * 1000:.0f} ms, "
        f"p95 {percentile(submit, 0.95) * 1000:.0f} ms (target p95 < 250 ms)"
    )
    print(
        f"option key -> shown as chosen: p50 {statistics.median(keypress) * 1000:.0f} ms, "
        f"p95 {percentile(keypress, 0.95) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
