"""Sweep, retrain the best configuration, and promote it if it beats the current champion.

    python pipelines/sweep_and_promote.py [--model-name losslab] [--alias champion]
        [--study-name NAME] [train.py overrides ...]

1. ``python train.py -m hparams_search=optuna OVERRIDES`` (any launcher or storage set in the
   overrides applies), in ``outputs/sweeps/<study>``; a re-run continues the same study.
2. The best trial's params, read back from the sweep's MLflow parent run, are trained again
   with the model logged, as a child run of the sweep tagged ``losslab.run_type=retrain``.
3. Its objective is compared with the run behind ``models:/<name>@<alias>``: the model is
   registered and the alias moved only if it is better (or there is no champion yet).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from losslab.mlproject import words

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-name", default="losslab", help="registered model name")
    p.add_argument("--alias", default="champion", help="alias of the promoted version")
    p.add_argument("--study-name", default="losslab-promote", help="Optuna study (and folder)")
    p.add_argument("overrides", nargs="*", help="train.py overrides for sweep and retrain")
    args = p.parse_args(argv)
    args.overrides = words(args.overrides)  # `mlflow run -e promote` passes them as one word
    return args


def check_one_objective(overrides: list[str]) -> None:
    """A champion is better or not on one objective: several are refused before the sweep."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in OverridesParser.create().parse_overrides(overrides):
        if override.key_or_group == "objective" and isinstance(override.value(), list):
            print(
                f"error: objective={override.get_value_element_as_str()}: a champion is "
                "promoted on one objective; give one",
                file=sys.stderr,
            )
            raise SystemExit(2)


def run_sweep(args: argparse.Namespace, sweep_dir: Path, env: dict[str, str]) -> None:
    command = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        "hparams_search=optuna",
        f"hydra.sweeper.study_name={args.study_name}",
        f"hydra.sweep.dir={sweep_dir}",
        *args.overrides,
    ]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, env=env)


def best_trial(client, sweep_dir: Path) -> tuple[str, dict]:
    from losslab.tracking.sweep import read_parent_id

    parent = read_parent_id(sweep_dir)
    if parent is None:
        raise SystemExit(f"no MLflow parent run recorded in {sweep_dir}: was tracking on?")
    path = client.download_artifacts(parent, "optuna/best_trial.json")
    best = json.loads(Path(path).read_text())
    return parent, best


def retrain(args: argparse.Namespace, root: Path, sweep_dir: Path, params: dict):
    """The best configuration trained again in this process, its model logged."""
    from hydra_plugins.losslab_optuna_sweeper.search_space import as_override
    from losslab.composition import compose
    from losslab.train import JobInfo, train

    kept = [o for o in args.overrides if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    best = [as_override(k, v) for k, v in params.items()]
    overrides = [
        "hparams_search=optuna",
        *kept,
        *best,
        f"paths.root_dir={root}",
        f"paths.log_dir={root / 'outputs'}",
        f"paths.output_dir={sweep_dir / 'retrain'}",
        "tracking.log_model=true",
    ]
    cfg = compose(overrides)
    job = JobInfo(
        name="retrain",
        overrides=[*kept, *best],
        sweep_dir=str(sweep_dir),
        tags={"losslab.run_type": "retrain"},
    )
    return cfg, train(cfg, job)


def better(value: float, than: float, direction: str) -> bool:
    return value > than if direction == "maximize" else value < than


def promote(client, args: argparse.Namespace, cfg, result) -> bool:
    """Register and alias the retrained model if it beats the champion on the objective."""
    from mlflow.exceptions import MlflowException

    objective, direction = str(cfg.objective), str(cfg.direction)
    try:
        champion = client.get_model_version_by_alias(args.model_name, args.alias)
    except MlflowException:
        champion = None
    if champion is not None:
        run = client.get_run(champion.run_id)
        if run.data.tags.get("losslab.objective") != objective:
            raise SystemExit(
                f"{args.model_name}@{args.alias} (version {champion.version}) was chosen on "
                f"{run.data.tags.get('losslab.objective')!r}, not {objective!r}: not comparable"
            )
        current = run.data.metrics["objective"]
        print(f"champion version {champion.version}: {objective} = {current:.4f}")
        if not better(result.objective, current, direction):
            print(f"candidate {objective} = {result.objective:.4f} does not beat it: kept")
            client.set_tag(result.run_id, "losslab.promotion", "rejected")
            return False
    import mlflow

    version = mlflow.register_model(result.model_uri, args.model_name)
    client.set_registered_model_alias(args.model_name, args.alias, version.version)
    client.set_tag(result.run_id, "losslab.promotion", f"{args.model_name}@{args.alias}")
    print(
        f"promoted {args.model_name} version {version.version} as @{args.alias}: "
        f"{objective} = {result.objective:.4f}"
    )
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_one_objective(args.overrides)
    from losslab.tracking.redact import environment_snapshot
    from losslab.tracking.store import default_uri

    root = Path.cwd()
    uri = default_uri(root)
    env = {**environment_snapshot(), "MLFLOW_TRACKING_URI": uri}
    env.pop("MLFLOW_RUN_ID", None)  # a run made by `mlflow run` is not the sweep's parent
    os.environ.update({"MLFLOW_TRACKING_URI": uri})
    os.environ.pop("MLFLOW_RUN_ID", None)
    sweep_dir = root / "outputs" / "sweeps" / args.study_name
    run_sweep(args, sweep_dir, env)

    from mlflow import MlflowClient

    client = MlflowClient(uri)
    parent, best = best_trial(client, sweep_dir)
    print(f"best trial {best['number']} of sweep run {parent}: {best['values']} {best['params']}")
    cfg, result = retrain(args, root, sweep_dir, best["params"])
    promote(client, args, cfg, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
