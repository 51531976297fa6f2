"""Server CPU per label at the protocol level: one annotator labels N items over the websocket.

Seeds 100,000 items and 20 annotators (as bench_label_rerun), starts `annotate serve` on a free
loopback port, signs one annotator in over HTTP and labels `--labels` items the way the
browser form does: one `message` trigger of the label form per item, answered by a fragment
rerun with the next item. Reported: the server process's CPU time (user + system, from /proc)
per label, p50 of each submit's own CPU and the total, submit -> next item p50/p95 as the
client sees it, and the ForwardMsgs per answer. `--code DIR` runs the server from another
checkout (the baseline); `--against DIR` serves a second checkout beside it, each on its own
copy of the database, and the two take turns labeling (ten rounds), so that both meet the same
load on a busy machine; `--profile FILE` samples the measured labels of the first with py-spy
(the thread holding the GIL; collapsed stacks in FILE). Measuring starts once each server is
idle after its warm-up labels, so the lead figures `annotate serve` warms at start (a one-time
cost, not a label's) stay out of the figures.

    python bench/bench_label_cpu.py [--items 100000] [--labels 100] [--code DIR] [--against DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_label_rerun import LABELS, seed_big  # noqa: E402
from bench_submit_latency import free_port, percentile, proc_cpu, settle  # noqa: E402

from tests.stclient import StreamlitClient, sign_in  # noqa: E402

WARM_UP = 5


def serve(url: str, workdir: Path, code: Path) -> tuple[subprocess.Popen[bytes], str, int]:
    """`annotate serve` from `code`; the process, its base URL and its pid."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTATE_")}
    env.update(ANNOTATE_DATABASE_URL=url, PYTHONPATH=str(code))
    command = [sys.executable, "-c", "from annotate.cli import main; main()", "serve"]
    command += ["--port", str(port)]
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, ended as a whole
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2):
                break
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    else:
        os.killpg(process.pid, signal.SIGTERM)
        stop(process)
        raise SystemExit("the server did not start")
    return process, base, process.pid


def stop(process: subprocess.Popen[bytes]) -> None:
    """End the server's process group: politely, then for good after 30 s."""
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def label(app: StreamlitClient, pid: int, count: int) -> tuple[list[float], list[float], list[int]]:
    """Submit `count` items; per item the wall time, the server's CPU and the messages."""
    walls, cpus, sizes = [], [], []
    for _ in range(count):
        form = app.component_data(key="labelform")
        assignment = form["item"]["assignment"]
        c0 = proc_cpu(pid)
        run = app.trigger(
            key="labelform",
            event="message",
            value={"kind": "submit", "assignment": assignment, "labels": LABELS, "duration_s": 3.0},
        )
        cpus.append(proc_cpu(pid) - c0)
        walls.append(run.seconds)
        sizes.append(len(run.messages))
        after = app.component_data(key="labelform")
        assert not run.exceptions, run.exceptions[0].text
        if after["item"]["assignment"] == assignment:
            kinds = [m.WhichOneof("type") for m in run.messages]
            raise AssertionError(f"{after} {run.status} {kinds} {run.texts()}")
    return walls, cpus, sizes


ROUNDS = 10  # `--against`: turns taken by the two servers, each labeling labels/ROUNDS items


def spy_on(pid: int, out: str) -> subprocess.Popen[bytes]:
    """py-spy sampling the thread of `pid` that holds the GIL, collapsed stacks into `out`."""
    spy = subprocess.Popen(
        [shutil.which("py-spy") or "/tmp/pyspy/bin/py-spy", "record", "--pid", str(pid),
         "--gil", "--nonblocking", "-r", "200", "-f", "raw", "-o", out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)
    return spy


def report(code: Path, items: int, walls: list[float], cpus: list[float], sizes: list[int],
           total_cpu: float, total_wall: float) -> None:  # fmt: skip
    n = len(walls)
    print(f"code {code}; {items:,} items; {n} labels by one annotator")
    print(
        f"server CPU per label: {total_cpu / n * 1000:.1f} ms over the run "
        f"({total_cpu:.2f} s / {n}), p50 of each submit {statistics.median(cpus) * 1000:.0f} ms "
        f"(target <= 15 ms; /proc ticks are 10 ms)"
    )
    print(
        f"submit -> next item: p50 {statistics.median(walls) * 1000:.1f} ms, "
        f"p95 {percentile(walls, 0.95) * 1000:.1f} ms; {n / total_wall:.1f} labels/s; "
        f"{statistics.median(sizes):.0f} messages per answer"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout the server runs")
    parser.add_argument(
        "--against",
        type=Path,
        help="a second checkout (the baseline), served at the same time on its own copy of the "
        "database; the two take turns, so that both meet the same load on a busy machine",
    )
    parser.add_argument("--seeded", type=Path, help="a seeded SQLite file to copy (or create)")
    parser.add_argument("--profile", help="write py-spy's collapsed stacks of the server here")
    args = parser.parse_args()
    codes = [args.code] + ([args.against] if args.against is not None else [])

    with tempfile.TemporaryDirectory() as tmp:
        seeded = Path(tmp) / "seeded.db"
        if args.seeded is not None and args.seeded.exists():
            shutil.copy(args.seeded, seeded)
        else:
            seed_big(f"sqlite:///{seeded}", items=args.items, annotators=args.annotators,
                     labels_each=1000)  # fmt: skip
            if args.seeded is not None:
                shutil.copy(seeded, args.seeded)
        servers = []
        spy = None
        try:
            for n, code in enumerate(codes):
                workdir = Path(tmp) / f"server{n}"
                workdir.mkdir()
                shutil.copy(seeded, workdir / "bench.db")
                servers.append(serve(f"sqlite:///{workdir / 'bench.db'}", workdir, code))
            clients = contextlib.ExitStack()
            apps = []
            for _, base, pid in servers:
                app = StreamlitClient(base, cookie=sign_in(base, "ann00", "bench password"))
                apps.append(clients.enter_context(app))
                app.rerun(page="label")
                label(app, pid, WARM_UP)
            for _, _, pid in servers:
                print(f"server {pid} idle after {settle(pid):.0f} s (start-up warming done)")
            if args.profile:  # the measured labels only, the first server's
                spy = spy_on(servers[0][2], args.profile)
            rounds = ROUNDS if len(codes) > 1 else 1
            results = [([], [], [], 0.0, 0.0) for _ in codes]
            for r in range(rounds):
                count = args.labels // rounds + (r < args.labels % rounds)
                # Alternate who goes first, so that neither always follows the other.
                order = range(len(codes)) if r % 2 == 0 else reversed(range(len(codes)))
                for n in order:
                    pid = servers[n][2]
                    c0, t0 = proc_cpu(pid), time.perf_counter()
                    walls, cpus, sizes = label(apps[n], pid, count)
                    w, c, z, cpu, wall = results[n]
                    results[n] = (w + walls, c + cpus, z + sizes, cpu + proc_cpu(pid) - c0,
                                  wall + time.perf_counter() - t0)  # fmt: skip
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file and ends
                spy.wait(timeout=60)
            clients.close()
        finally:
            for process, _, _ in servers:
                process.terminate()
            for process, _, _ in servers:
                stop(process)
    for code, (walls, cpus, sizes, total_cpu, total_wall) in zip(codes, results, strict=True):
        report(code, args.items, walls, cpus, sizes, total_cpu, total_wall)
    print(f"load average: {' '.join(os.getloadavg().__repr__().strip('()').split(', '))}")


if __name__ == "__main__":
    main()
