"""Figure 13: workers against batches at scale, on a one-node Slurm cluster with PostgreSQL.

The cluster the tests start (``tests/slurm.py``), its node declaring ``--slots`` CPU job
slots, the study in a real PostgreSQL server and the runs in a real ``mlflow server``, all
on 127.0.0.1. A study of ``--trials`` short trials drawn at random (a real ``train.py`` job
on digits 9 vs 4 for ``--epochs`` epochs; lr log-uniform in [1e-9, 0.03], so the median
pruner stops about half of them after an epoch or two): batch mode
(``hydra.sweeper.n_jobs=N``, a job array per batch) against worker mode
(``hydra.sweeper.workers=N``), then worker mode with one worker preempted mid-trial as
Slurm's ``PreemptMode=REQUEUE`` does (``scontrol requeue``: SIGTERM, the worker queues its
trial again, and its job waits in the queue to start over). Idle fraction, trials per
hour, PostgreSQL connections at their peak and what was left RUNNING, as figure 12 counts
them. One run each.

    python benchmarks/workers_cluster.py [--workers 8] [--slots 32] [--trials 96] [--no-write]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import command, machine, parser, publish, use_device  # noqa: E402
from benchmarks.workers import PRUNED_JOBS, Place, row, sweep  # noqa: E402
from losslab.tracking import tag_keys  # noqa: E402

SEARCH = [
    *PRUNED_JOBS,
    "hydra/sweeper/sampler=random",
    "optimizer.lr=tag(log, interval(1e-9, 0.03))",
    "model.dropout=interval(0.0, 0.3)",
]


class OnCluster(Place):
    """A sweep on the test cluster: a worker is preempted as Slurm's ``PreemptMode=REQUEUE``
    does it, ``scontrol requeue`` on its job (SIGTERM to it, then the job queued again)."""

    def preempted(self, tags: dict[str, str]) -> None:
        job = tags[tag_keys.SLURM_JOB_ID]
        env = {**os.environ, **self.env}
        subprocess.run(["scontrol", "requeue", job], env=env, check=True, timeout=60)


def slurm_launcher(slots: int) -> list[str]:
    """README's GPU launcher as a CPU job: one core and 600 MB each, so ``slots`` jobs fit."""
    return [
        "hydra/launcher=slurm_gpu",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=null",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=null",
        "+hydra.launcher.mem_per_cpu=600M",
        "hydra.launcher.timeout_min=120",
        f"hydra.launcher.array_parallelism={slots}",
    ]


class PeakConnections:
    """The most connections PostgreSQL held at once, sampled every half second."""

    def __init__(self, url: str) -> None:
        import sqlalchemy

        self.engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        import sqlalchemy

        query = sqlalchemy.text(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
        )
        while not self._stop.wait(0.5):
            with self.engine.connect() as conn:
                self.peak = max(self.peak, int(conn.execute(query).scalar()) - 1)  # not ours

    def take(self) -> int:
        """The peak since the last take."""
        peak, self.peak = self.peak, 0
        return peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    from tests import slurm
    from tests.helpers import MlflowServer, postgres_server

    p = parser(__doc__.splitlines()[0], repeats=1)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--slots", type=int, default=32)
    p.add_argument("--trials", type=int, default=96)
    p.add_argument("--epochs", type=int, default=5)
    args = p.parse_args()
    args.search = SEARCH
    use_device(args.device)
    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    n, results, peaks = args.workers, {}, {}
    connections = 8 * max(n, args.slots) + 20  # README: 8 N + 4, and reserved ones
    modes = {
        f"batch, n_jobs={n}": ([f"hydra.sweeper.n_jobs={n}"], False),
        f"workers={n}": ([f"hydra.sweeper.workers={n}"], False),
        f"workers={n}, one preempted mid-trial": ([f"hydra.sweeper.workers={n}"], True),
    }
    (folder / "mlflow").mkdir()
    server = MlflowServer(folder / "mlflow")
    with (
        slurm.cluster(folder / "slurm", cpus=args.slots) as cluster,
        postgres_server(max_connections=connections) as storage,
    ):
        server.start()
        try:
            place = OnCluster(slurm_launcher(args.slots), server.url, storage, cluster.env)
            watch = PeakConnections(storage)
            for i, (name, (mode, preempt)) in enumerate(modes.items()):
                results[name] = sweep(folder / f"sweep{i}", mode, args, place, preempt)
                peaks[name] = watch.take()
                cluster.wait_idle(timeout=600)  # a requeued worker may start over
            watch.stop()
        finally:
            server.stop()
    errors = server_errors(folder / "mlflow")
    publish("workers-cluster", lines(args, results, peaks, errors), args)


def server_errors(folder: Path) -> int:
    """Requests the MLflow server answered with a server error, from its log."""
    logs = list(folder.glob("*.log"))
    found = subprocess.run(
        ["grep", "-c", '" 5[0-9][0-9] ', *map(str, logs)], capture_output=True, text=True
    )
    return sum(int(line.rsplit(":", 1)[-1]) for line in found.stdout.split() if line)


def lines(args, results: dict, peaks: dict, errors: int) -> list[str]:
    n = args.workers
    batch, pulled = results[f"batch, n_jobs={n}"], results[f"workers={n}"]
    return [
        "## 13. Workers against batches on a Slurm cluster with PostgreSQL",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. The test suite's one-node "
        f"Slurm cluster with its node declaring {args.slots} CPU job slots (the machine has "
        f"fewer cores: every job runs, slower), each job one slot and 600 MB; the study in "
        "PostgreSQL, the runs in an `mlflow server`, both on 127.0.0.1. "
        f"{args.trials} trials drawn at random (digits 9 vs 4, lr log-uniform in [1e-9, 0.03], "
        f"dropout in [0, 0.3], {args.epochs} epochs, the median pruner stopping hopeless lr), "
        f"{n} job slots used: batch mode `hydra.sweeper.n_jobs={n}` against worker mode "
        f"`hydra.sweeper.workers={n}`. Idle = 1 - seconds in trials / ({n} x wall). One run "
        "each. Goal of worker mode: idle at most 5%, no point lost, nothing left RUNNING.",
        "",
        "| sweep | wall | in trials | idle | trials/hour | complete / pruned | epochs | "
        "queued again | RUNNING trials / runs left | parent | killed run's points "
        "| PostgreSQL connections at peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(f"{row(name, n, r)} {peaks[name]} |" for name, r in results.items()),
        "",
        f"Worker mode ran the study in {pulled['wall'] / batch['wall']:.2f}x batch mode's wall "
        f"time. MLflow server errors (HTTP 5xx) over the three sweeps: {errors}. Not reached: "
        "5% idle. With more jobs than cores every trial's work is stretched alike, and what "
        "stays idle is each worker's start, the seconds between one trial's run and the next "
        "(its config, data and model, outside the run) and the tail: against trials of "
        "seconds. The preempted worker's job waits in Slurm's queue before it starts over.",
    ]


if __name__ == "__main__":
    main()
