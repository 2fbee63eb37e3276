"""The fault matrix of RELIABILITY.md, measured: each fault caused for real against
``python train.py`` with MLflow's default client settings (its retries take minutes).

For each fault: seconds until the run went offline (from the fault) or exited (from the
start or the first Ctrl-C), and the batch points the store holds after replay against the
points the run logged. Run: ``python benchmarks/faults.py [--offline-after 10]``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RELIABILITY_MD, command, machine, parser, write_section  # noqa: E402
from tests.helpers import REPO, FlakyProxy, MlflowServer, free_port  # noqa: E402

OFFLINE_LINE = re.compile(r"^\[([\d-]+ [\d:,]+)\]\[losslab\.tracking\.run\]\[WARNING\] .*recording")
DEFAULT_ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith("MLFLOW_HTTP") and k not in ("MLFLOW_ENABLE_TELEMETRY", "DO_NOT_TRACK")
}


def start_train(folder: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *overrides],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=DEFAULT_ENV,
    )


def wait_for_epoch(store: Path, proc: subprocess.Popen) -> None:
    import sqlite3

    query = "SELECT count(*) FROM metrics WHERE key = 'val_loss'"
    while proc.poll() is None:
        try:
            with sqlite3.connect(store, timeout=30) as con:
                if con.execute(query).fetchone()[0]:
                    return
        except sqlite3.OperationalError:
            pass
        time.sleep(0.2)
    raise RuntimeError(proc.communicate())


def replayed_points(server: MlflowServer, folder: Path) -> str:
    """Replay the run's spill; stored batch points / points logged (steps 0..n-1, no gap)."""
    from mlflow import MlflowClient

    (spill,) = folder.glob("outputs/runs/*/mlflow_spill")
    replay = [sys.executable, "-m", "losslab.tracking.replay", str(spill)]
    subprocess.run(replay, check=True, capture_output=True, env=DEFAULT_ENV, timeout=600)
    return points_of(MlflowClient(server.url))


def points_of(client) -> str:
    """The run's batch points stored / logged (steps 0..n-1, no gap), and its status."""
    (run,) = client.search_runs([client.get_experiment_by_name("losslab").experiment_id])
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "batch/loss"))
    logged = steps[-1] + 1 if steps else 0
    return f"{len(steps)}/{logged} ({run.info.status})"


def mid_run_fault(kind: str, offline_after: float) -> list[str]:
    """The store breaks after the first stored epoch; the run trains on for a while."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = MlflowServer(folder / "server", free_port())
        server.folder.mkdir()
        url = server.start()
        proxy = FlakyProxy(url) if kind == "proxy answers 503" else None
        overrides = [
            "tracking=server",
            f"tracking.uri={proxy.url if proxy else url}",
            f"tracking.offline_after_s={offline_after:g}",
            f"trainer.epochs={int(12 * offline_after)}",
        ]
        proc = start_train(folder, *overrides)
        wait_for_epoch(server.folder / "mlflow.db", proc)
        faulted = time.time()
        {"server killed": server.stop, "server SIGSTOPped": server.pause}.get(
            kind, lambda: setattr(proxy, "failing", True)
        )()
        stdout, stderr = proc.communicate(timeout=900)
        lines = (stdout + stderr).splitlines()
        offline = next(OFFLINE_LINE.match(x) for x in lines if OFFLINE_LINE.match(x))
        went = datetime.strptime(offline.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() - faulted
        if kind == "server killed":
            server.start()
        elif kind == "server SIGSTOPped":
            server.pause(resume=True)
        else:
            proxy.failing = False
        points = replayed_points(server, folder)
        if proxy:
            proxy.close()
        server.stop()
    return [kind, f"offline {went:.1f} s after the fault", points]


def ctrl_c_with_store_away(presses: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = MlflowServer(folder / "server", free_port())
        server.folder.mkdir()
        url = server.start()
        proc = start_train(folder, "tracking=server", f"tracking.uri={url}", "trainer.epochs=5000")
        wait_for_epoch(server.folder / "mlflow.db", proc)
        server.stop()
        time.sleep(1)
        pressed = time.time()
        for i in range(presses):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            if i + 1 < presses:
                time.sleep(0.5)
        proc.communicate(timeout=900)
        exited = time.time() - pressed
        server.start()
        points = replayed_points(server, folder)
        server.stop()
    return [f"Ctrl-C x{presses}, server gone", f"exit {exited:.1f} s after the first", points]


def not_running_at_start() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        began = time.time()
        uri = f"http://127.0.0.1:{free_port()}"
        proc = start_train(Path(tmp), "tracking=server", f"tracking.uri={uri}")
        _, stderr = proc.communicate(timeout=900)
        took = time.time() - began
    lines = len(stderr.splitlines())
    return [
        "server not running at start",
        f"exit {proc.returncode} after {took:.1f} s",
        f"{lines} line",
    ]


def full_disk(offline_after: float) -> list[str]:
    """Store and outputs on a 4 MB tmpfs, filled once the first epoch is stored; the spill
    goes to $TMPDIR. Root may mount one; elsewhere the row says why it was not measured."""
    fault = "disk full (store and outputs on a 4 MB tmpfs)"
    with tempfile.TemporaryDirectory() as tmp:
        small, elsewhere = Path(tmp) / "small", Path(tmp) / "tmp"
        small.mkdir(), elsewhere.mkdir()
        mount = ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(small)]
        made = subprocess.run(mount, capture_output=True, text=True)
        if made.returncode != 0:
            return [fault, f"not measured: {made.stderr.strip() or 'mount refused'}", "-"]
        try:
            return _fill_during_a_run(fault, small, elsewhere, offline_after)
        finally:
            subprocess.run(["umount", "-l", str(small)], check=False)


def _fill_during_a_run(fault: str, small: Path, elsewhere: Path, offline_after: float):
    overrides = [f"tracking.offline_after_s={offline_after:g}", "trainer.epochs=8"]
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *overrides],
        cwd=small,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**DEFAULT_ENV, "TMPDIR": str(elsewhere)},
    )
    store = small / "mlflow.db"
    wait_for_epoch(store, proc)
    filler, filled = small / "filler", time.time()
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    stdout, stderr = proc.communicate(timeout=900)
    offline = next(m for x in stdout.splitlines() if (m := OFFLINE_LINE.match(x)))
    went = datetime.strptime(offline.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() - filled
    filler.unlink()
    (spill,) = (elsewhere / "losslab-spill").iterdir()
    replay = [sys.executable, "-m", "losslab.tracking.replay", str(spill)]
    subprocess.run(replay, check=True, capture_output=True, env=DEFAULT_ENV, timeout=600)
    told = len([x for x in stderr.splitlines() if "disk full" in x])
    measured = (
        f"exit {proc.returncode}, {len(stderr.splitlines())} stderr lines ({told} naming the "
        f"disk), spilled elsewhere {went:.1f} s after it filled"
    )
    from mlflow import MlflowClient

    return [fault, measured, points_of(MlflowClient(f"sqlite:///{store}"))]


def second_sweep_command() -> list[str]:
    """The same sweep command started again while the first runs in its folder."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sweep = ["-m", "hparams_search=optuna", "hydra.sweeper.study_name=twice"]
        first = start_train(folder, *sweep, "trainer.epochs=5000")
        parent = folder / "outputs" / "sweeps" / "twice" / "mlflow_parent_run_id"
        while not parent.is_file():
            if first.poll() is not None:
                raise RuntimeError(first.communicate())
            time.sleep(0.2)
        began = time.time()
        second = start_train(folder, *sweep, "trainer.epochs=5000")
        _, stderr = second.communicate(timeout=300)
        took = time.time() - began
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=300)
    lines = len(stderr.splitlines())
    refused = f"exit {second.returncode} after {took:.1f} s"
    return ["same sweep command twice in one folder", refused, f"{lines} line"]


def main() -> None:
    p = parser("Fault matrix figures for RELIABILITY.md", repeats=1)
    p.add_argument("--offline-after", type=float, default=10.0, help="tracking.offline_after_s")
    args = p.parse_args()
    rows = [not_running_at_start()]
    for kind in ("server killed", "server SIGSTOPped", "proxy answers 503"):
        rows.append(mid_run_fault(kind, args.offline_after))
    rows += [ctrl_c_with_store_away(1), ctrl_c_with_store_away(4)]
    rows += [full_disk(args.offline_after), second_sweep_command()]
    lines = [
        "## Measured",
        "",
        f"Machine: {machine('cpu')}. Command: `{command()}`. MLflow's default client settings "
        f"(7 retries with backoff, 120 s timeout per request); `tracking.offline_after_s="
        f"{args.offline_after:g}`; default data. Points: batch points in the store after "
        "replay / points the run logged (steps 0..n-1), and the run's final status.",
        "",
        "| fault | measured | points stored / logged |",
        "|---|---|---|",
        *[f"| {' | '.join(row)} |" for row in rows],
    ]
    print("\n".join(lines))
    if not args.no_write:
        write_section("fault-figures", "\n".join(lines), RELIABILITY_MD, "Reliability")


if __name__ == "__main__":
    main()
