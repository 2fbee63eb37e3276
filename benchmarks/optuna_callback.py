"""Figure 11: what recording a plain ``study.optimize`` to MLflow costs per trial.

The same seeded study (a quadratic objective with two params and five reported steps, so the
objective itself costs microseconds and what is measured is the recording) is run with no
callback, with optuna-integration's ``MLflowCallback`` (deprecated there) and with
``losslab.optuna.MlflowCallback`` (as a callback alone, and with its ``track_in_mlflow``
decorator), each into a fresh SQLite MLflow store whose tables and experiment exist before the
clock starts; repetitions are interleaved. The figure is the seconds each adds per trial over
no callback, and its ratio to optuna-integration's, measured in the same run.

    python benchmarks/optuna_callback.py [--repeats 3] [--trials 40]
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import command, machine, median, parser, publish, use_device  # noqa: E402

STUDY = "bench-optuna-callback"


def objective(trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    y = trial.suggest_int("y", 0, 8)
    for step in range(5):
        trial.report((x - 2) ** 2 + y + 5 - step, step)
    return (x - 2) ** 2 + y


def none(uri: str) -> tuple[Callable, list]:
    return objective, []


def optuna_integration(uri: str) -> tuple[Callable, list]:
    from optuna_integration.mlflow import MLflowCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return objective, [MLflowCallback(tracking_uri=uri, metric_name="loss")]


def losslab_callback(uri: str) -> tuple[Callable, list]:
    from losslab.optuna import MlflowCallback

    return objective, [MlflowCallback(tracking_uri=uri, metric_name="loss")]


def losslab_decorated(uri: str) -> tuple[Callable, list]:
    from losslab.optuna import MlflowCallback

    callback = MlflowCallback(tracking_uri=uri, metric_name="loss")
    return callback.track_in_mlflow()(objective), [callback]


ROWS = {
    "no callback": none,
    "optuna-integration MLflowCallback": optuna_integration,
    "losslab.optuna.MlflowCallback": losslab_callback,
    "losslab.optuna.MlflowCallback + track_in_mlflow": losslab_decorated,
}


def seconds(folder: Path, row: Callable, trials: int) -> float:
    """Wall seconds of ``trials`` trials recorded by ``row`` into a new store in ``folder``."""
    import mlflow
    import optuna

    folder.mkdir(parents=True)
    uri = f"sqlite:///{folder}/mlflow.db"
    mlflow.MlflowClient(uri).create_experiment(STUDY, artifact_location=str(folder / "art"))
    func, callbacks = row(uri)
    study = optuna.create_study(study_name=STUDY, sampler=optuna.samplers.TPESampler(seed=0))
    t0 = time.perf_counter()
    study.optimize(func, n_trials=trials, callbacks=callbacks)
    return time.perf_counter() - t0


def main() -> None:
    p = parser(__doc__.splitlines()[0], repeats=3)
    p.add_argument("--trials", type=int, default=40)
    args = p.parse_args()
    use_device(args.device)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(tempfile.mkdtemp(prefix="bench-optuna-cb-"))
    times: dict[str, list[float]] = {name: [] for name in ROWS}
    for i in range(args.repeats):
        for j, (name, row) in enumerate(ROWS.items()):
            times[name].append(seconds(root / f"{i}-{j}", row, args.trials))
        print({k: round(v[-1], 2) for k, v in times.items()}, flush=True)
    base = median(times["no callback"])
    added = {name: (median(t) - base) / args.trials for name, t in times.items()}
    theirs = "optuna-integration MLflowCallback"
    # each repetition's ratio to optuna-integration's added time in the same repetition, so a
    # machine that slows down between repetitions shifts both sides alike
    ratios = {
        name: [
            (t - b) / (o - b)
            for t, o, b in zip(times[name], times[theirs], times["no callback"], strict=True)
        ]
        for name in times
    }
    lines = [
        "## 11. Recording a plain study.optimize to MLflow, per trial",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. {args.trials} trials of one "
        "seeded study (two params, five reported steps, an objective of microseconds), each "
        "row into a fresh SQLite MLflow store, median of "
        f"{args.repeats} interleaved repetitions. optuna-integration's callback records params, "
        "values and tags; losslab's also the intermediate values, the outcome tags and the "
        "parent run. The ratio is each repetition's added time over optuna-integration's in "
        "the same repetition (median, and each repetition's).",
        "",
        "| callback | seconds for the study | added per trial | vs optuna-integration "
        "| per repetition |",
        "|---|---|---|---|---|",
        *[
            f"| {name} | {median(t):.2f} | {added[name] * 1000:.0f} ms "
            f"| {median(ratios[name]):.2f}x | {', '.join(f'{r:.2f}' for r in ratios[name])} |"
            for name, t in times.items()
            if name != "no callback"
        ],
    ]
    publish("optuna-callback", lines, args)


if __name__ == "__main__":
    main()
