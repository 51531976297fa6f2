"""The load driver: many annotators at once in one headless Chromium, labeling by keyboard.

Each annotator gets a browser context of their own (own cookies) on one of the given servers
(round robin), signs in with the keyboard, and labels items exactly as a person would: number
keys and Tab in the browser form, each choice waited for until it shows, then Ctrl+Enter. The
pages run
concurrently on Playwright's async API, so one Python thread and one browser process carry
them all. Used by tests/browser/test_load.py and bench/bench_load.py.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, func, select

from annotate.intake.items import ItemRecord
from annotate.storage import db
from annotate.storage.models import Annotation, Assignment, Item, User
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, LOOPBACK, PASSWORD
from tests.browser.form_helpers import (
    CHANGED,
    FORM_ROOT,
    LABEL_SETS,
    expected_labels,
    item_ids,
    keys_for,
)

HEADER = ".st-key-item-header"
IDLE = (
    "() => { const a = document.querySelector('[data-testid=stApp]');"
    " return a && a.getAttribute('data-test-script-state') === 'notRunning'; }"
)
# The option (field, value) shows as chosen in the form.
SHOWN = (
    "([name, value]) => { const r = " + FORM_ROOT + "; return !!(r && r.querySelector("
    "`button.lf-opt[data-field=${name}][data-value=${value}][aria-pressed=true]`)); }"
)


def make_items(count: int) -> list[ItemRecord]:
    """`count` small items, load-0000, load-0001, ..."""
    return [
        ItemRecord(
            external_id=f"load-{i:04d}",
            prompt=f"Question {i}: how do I stop a runaway process?",
            response=f"Answer {i}: find its PID with `ps`, then `kill PID`.",
            model="model-a",
        )
        for i in range(count)
    ]


@dataclass
class AnnotatorRun:
    """What one annotator's page did: items seen and submitted, in order, and the timings."""

    name: str
    base_url: str
    seen: list[str] = field(default_factory=list)
    submitted: dict[str, dict[str, Any]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    error: str | None = None
    step: str = "starting"


@dataclass
class LoadResult:
    """Every annotator's run and the wall time of the whole load."""

    runs: list[AnnotatorRun]
    seconds: float

    @property
    def labels(self) -> int:
        """Submits acknowledged by the page (the next item showed)."""
        return sum(len(r.submitted) for r in self.runs)

    @property
    def labels_per_second(self) -> float:
        """Acknowledged submits per second of wall time, sign-in included."""
        return self.labels / self.seconds if self.seconds else 0.0

    def latency(self, q: float) -> float:
        """The q-quantile (0..1) of submit-key-to-next-item times, in seconds."""
        values = sorted(x for r in self.runs for x in r.latencies)
        if not values:
            return float("nan")
        if q == 0.5:
            return statistics.median(values)
        return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]

    def summary(self) -> str:
        """One line: labels, wall time, rate, p50/p95 submit latency."""
        return (
            f"{len(self.runs)} annotators, {self.labels} labels in {self.seconds:.1f} s: "
            f"{self.labels_per_second:.2f} labels/s; submit key -> next item "
            f"p50 {self.latency(0.5) * 1000:.0f} ms, p95 {self.latency(0.95) * 1000:.0f} ms"
        )


# Waiting without polling. Playwright's wait_for_function polls on every animation frame, which
# costs a page ~8 % of a core while it waits; twenty waiting pages then starve the two cores the
# server and the pages share. Instead the predicate is re-checked whenever the DOM changes (a
# MutationObserver), plus every 500 ms in case a change is not a DOM mutation.
_WAIT = """
async ([source, arg, timeoutMs]) => {
  const test = eval(source);
  if (test(arg)) return true;
  return await new Promise((resolve, reject) => {
    const check = () => {
      if (!test(arg)) return;
      done(); resolve(true);
    };
    const observer = new MutationObserver(check);
    const every = setInterval(check, 500);
    const timer = setTimeout(() => { done(); reject(new Error('timed out')); }, timeoutMs);
    const done = () => { observer.disconnect(); clearInterval(every); clearTimeout(timer); };
    const what = {subtree: true, childList: true, attributes: true, characterData: true};
    observer.observe(document, what);
    // The label form draws inside a shadow root, which the document's observer does not see.
    for (const host of document.querySelectorAll('[data-testid=stBidiComponentIsolated]')) {
      if (host.shadowRoot) observer.observe(host.shadowRoot, what);
    }
  });
}
"""


async def wait_until(page: Any, predicate: str, arg: Any = None, timeout_s: float = 60.0) -> None:
    """Wait until the JavaScript function `predicate`(arg) is true in `page`, driven by DOM
    changes instead of per-frame polling; TimeoutError after `timeout_s`."""
    try:
        await page.evaluate(_WAIT, [predicate, arg, timeout_s * 1000])
    except Exception as exc:
        if "timed out" in str(exc):
            raise TimeoutError(f"waited {timeout_s:.0f} s for {predicate[:80]}") from None
        raise


# Twenty Streamlit pages repainting their fades and spinners on two cores cost more than the
# server they load: with CSS animations and transitions off, Chromium's share of a run drops by
# about a third (131 -> 80 CPU-seconds for 100 labels) and the server's work is unchanged.
CALM = """
document.addEventListener('DOMContentLoaded', () => {
  const s = document.createElement('style');
  s.textContent = '*, *::before, *::after '
    + '{ animation: none !important; transition: none !important; }';
  document.head.appendChild(s);
});
"""


async def _on_form(page: Any) -> tuple[str, str]:
    """The item the form is for: its handle and its assignment number."""
    form = page.locator(".lf")
    return str(await form.get_attribute("data-item")), str(
        await form.get_attribute("data-assignment")
    )


async def _annotate(
    browser: Any, run: AnnotatorRun, items: int, stagger_s: float, page_timeout_s: float
) -> None:
    await asyncio.sleep(stagger_s)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await context.add_init_script(CALM)

    async def gate(route: Any) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            await route.continue_()
        else:
            run.blocked.append(route.request.url)
            await route.abort()

    page: Any = None
    try:
        await context.route("**/*", gate)
        page = await context.new_page()
        page.set_default_timeout(page_timeout_s * 1000)
        # Websocket traffic since the last submit key, so that a stall says which side stopped.
        traffic: list[str] = []
        page.on(
            "websocket",
            lambda ws: (
                ws.on("framesent", lambda _: traffic.append("sent")),
                ws.on("framereceived", lambda _: traffic.append("received")),
            ),
        )
        await page.goto(run.base_url + "/")
        await page.wait_for_url("**/signin**")
        await page.wait_for_function(
            "() => document.activeElement && document.activeElement.id === 'name'"
        )
        await page.keyboard.type(run.name)
        await page.keyboard.press("Tab")
        await page.keyboard.type(PASSWORD)
        await page.keyboard.press("Enter")
        await page.wait_for_selector(".lf[data-state=ready]")
        for n in range(items):
            current, assignment = await _on_form(page)
            run.seen.append(current)
            labels = LABEL_SETS[n % len(LABEL_SETS)]
            keys = keys_for(labels)
            run.step = f"item {n + 1} ({current}): keys {' '.join(keys)}"
            for key in keys:
                await page.keyboard.press(key)
            for name, value in labels.items():
                run.step = f"item {n + 1} ({current}): waiting for {name}={value} to show"
                await wait_until(page, SHOWN, [name, value], page_timeout_s)
            run.step = f"item {n + 1} ({current}): submit, waiting for the next item"
            started = time.perf_counter()
            traffic.clear()
            await page.keyboard.press("Control+Enter")
            await wait_until(page, CHANGED, assignment, page_timeout_s)
            run.latencies.append(time.perf_counter() - started)
            run.submitted[current] = expected_labels(labels)
            # Keys typed from here on belong to the next item (the form queues them while the
            # item is on its way), so there is nothing else to wait for.
            if not await page.locator(".lf").count():
                break  # nothing left for this annotator
        if await page.locator(".lf").count():
            run.seen.append((await _on_form(page))[0])
    except Exception as exc:  # reported per annotator; the test fails on any
        run.error = f"{type(exc).__name__} at {run.step}: {exc}".splitlines()[0]
        if page is not None:
            counts = Counter(traffic)
            run.error += (
                f"; since the last submit key the page sent {counts['sent']} and received "
                f"{counts['received']} websocket frames"
            )
            shown = await page.evaluate(
                "() => { const m = document.querySelector('[data-testid=stMain]') || document.body;"
                " return m ? m.innerText : ''; }"
            )
            run.error += f" at {page.url}; the page showed: {' '.join(shown.split())[:700]!r}"
    finally:
        await context.close()


async def _drive(
    runs: list[AnnotatorRun], items: int, timeout_s: float, page_timeout_s: float
) -> float:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            started = time.perf_counter()
            # Arrivals spread over a few seconds, as people's do; then everyone works at once.
            jobs = [
                _annotate(browser, run, items, 0.15 * i, page_timeout_s)
                for i, run in enumerate(runs)
            ]
            await asyncio.wait_for(asyncio.gather(*jobs), timeout=timeout_s)
            return time.perf_counter() - started
        finally:
            await browser.close()


def drive(
    base_urls: list[str],
    names: list[str],
    *,
    items: int,
    timeout_s: float = 600.0,
    page_timeout_s: float = 60.0,
) -> LoadResult:
    """Sign `names` in (round robin over `base_urls`) and have each label `items` items at once.

    Raises TimeoutError when the whole load takes longer than `timeout_s`; a page that waits
    longer than `page_timeout_s` for one step records the error in its run.
    """
    runs = [
        AnnotatorRun(name=n, base_url=base_urls[i % len(base_urls)]) for i, n in enumerate(names)
    ]
    seconds = asyncio.run(_drive(runs, items, timeout_s, page_timeout_s))
    return LoadResult(runs=runs, seconds=seconds)


def check_invariants(database_url: str, result: LoadResult, *, items: int, overlap: int) -> None:
    """Assert the guarantees: every acknowledged label stored as typed, nothing else stored,
    no item over `overlap` human labels, nobody shown an item twice, nothing left the machine."""
    problems = [f"{r.name}: {r.error}" for r in result.runs if r.error]
    assert not problems, problems
    for run in result.runs:
        assert len(run.submitted) == items, (run.name, len(run.submitted))
        repeated = [i for i, n in Counter(run.seen).items() if n > 1]
        assert not repeated, (run.name, repeated)
        assert run.blocked == [], (run.name, run.blocked)
    engine = db.make_engine(database_url)
    try:
        with Session(engine) as s:
            rows = s.exec(
                select(User.name, Item.external_id, Annotation.labels)
                .join(User, col(User.id) == Annotation.user_id)
                .join(Item, col(Item.id) == Annotation.item_id)
            ).all()
            # Annotators saw handles, not item ids (storage.visibility): key the rows alike.
            handles = {v: k for k, v in item_ids(database_url).items()}
            stored: dict[str, dict[str, Any]] = {}
            for name, external_id, labels in rows:
                stored.setdefault(name, {})[handles[external_id]] = labels
            for run in result.runs:
                assert stored.get(run.name, {}) == run.submitted, run.name
            assert sum(len(v) for v in stored.values()) == result.labels
            busiest = s.exec(
                select(Annotation.item_id, func.count())
                .group_by(col(Annotation.item_id))
                .order_by(func.count().desc())
                .limit(1)
            ).first()
            assert busiest is not None and busiest[1] <= overlap, busiest
            done = s.exec(
                select(func.count()).select_from(Assignment).where(Assignment.status == "done")
            ).one()
            assert done == result.labels
    finally:
        engine.dispose()
