"""The studies behind RESULTS.md, run with losslab's own commands on the real data.

Each study runs ``python train.py -m ...`` in its own folder under ``outputs/results/``, reads
the runs back from that folder's MLflow store (the comparison table of ``losslab.compare``)
and writes its section of RESULTS.md with the machine and the exact commands:

    python benchmarks/results.py source sound fraud fashion headline
    python benchmarks/results.py headline --seeds 0 1 2

Studies: ``default`` (the embedded default data, untreated against remedies), ``source``
(the 9-vs-4 study as its source ran it), ``sound`` (the same on a sound protocol, every
remedy), ``headline`` (an unattended Optuna sweep per seed, judged on test), ``fraud`` (the
credit-card data beside TensorFlow's tutorial), ``fraud_time`` (the same on a time split
beside the random split) and ``fashion`` (shirt 6 against T-shirt 0).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS_MD, machine, parser, use_device, write_section  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
MNIST = DATA / "mnist"
CREDITCARD = DATA / "creditcard" / "creditcard.csv.gz"
FASHION = Path("/usr/share/datasets/fashion-mnist")
QUIET = ["trainer.verbose=0"]

# the source's test confusion matrices ([[9 as 9, 9 as 4], [4 as 9, 4 as 4]])
SOURCE = {
    "source_equal_weights": [[1009, 0], [982, 0]],
    "source_class_weights_100": [[1007, 2], [420, 562]],
}
# TensorFlow's imbalanced-data tutorial, test split at threshold 0.5 (99 frauds, 56,863
# legitimate), as rendered on tensorflow.org for TF 2.3; figures vary from run to run there.
TUTORIAL = {
    "baseline": {"recall": 68 / 99, "fp": 3, "roc_auc": 0.949},
    "class_weights": {"recall": 90 / 99, "fp": 998, "roc_auc": 0.977},
    "oversampling": {"recall": 91 / 99, "fp": 1892, "roc_auc": 0.978},
}
# what `losslab sweep` runs on the reference data, nothing else given (losslab.unattended
# picks the CNN and 3 folds; hparams_search=unattended holds epochs, batch size and trials)
FROM_STORE = False  # --from-store: sections from the runs already stored
HEADLINE = ["data=mnist_9v4", f"data.source_dir={MNIST}", "tracking.log_model=false"]


def run(folder: Path, *overrides: str) -> float:
    """``python train.py -m OVERRIDES`` in ``folder``; its wall time in seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(REPO / "train.py"), "-m", *overrides]
    started = time.perf_counter()
    with open(folder / "log.txt", "a") as log:
        subprocess.run(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - started


def sweep_command(folder: Path, *overrides: str) -> float:
    """``losslab sweep OVERRIDES`` in ``folder``; its wall time in seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "losslab", "sweep", *overrides]
    started = time.perf_counter()
    with open(folder / "log.txt", "a") as log:
        subprocess.run(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - started


def shown(overrides: list[str]) -> str:
    """The command as a user in the repository types it."""
    words = [w.replace(str(DATA), "../shared/data") for w in overrides]
    return "python train.py -m " + " ".join(words)


def newest_table(folder: Path, experiment: str) -> pd.DataFrame:
    """The comparison table of the experiment's newest multirun, read back from MLflow."""
    import tempfile

    from mlflow import MlflowClient

    from losslab.compare import build_table, find_runs

    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    _, runs = find_runs(client, experiment)
    with tempfile.TemporaryDirectory() as tmp:
        table = build_table(client, runs, Path(tmp))
    overrides = runs["tags.losslab.overrides"].fillna("").str.split()
    names = runs["tags.mlflow.runName"]
    table["variant"] = [
        next((w.split("=", 1)[1] for w in words if w.startswith("+variant=")), name)
        for words, name in zip(overrides, names, strict=True)
    ]
    return table


def multirun(folder: Path, experiment: str, overrides: list[str]) -> pd.DataFrame:
    """Run the multirun in ``folder`` and read its comparison table back."""
    run(folder, *overrides)
    return newest_table(folder, experiment)


def _f(value, digits: int = 3) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.{digits}f}"


def _int(value) -> str:
    return "" if value is None or pd.isna(value) else str(int(value))


def header(title: str, commands: list[str], note: str) -> list[str]:
    lines = [f"## {title}", "", f"Machine: {machine('cpu')}.", "", "Commands:", "", "```bash"]
    return [*lines, *commands, "```", "", note, ""]


def study_source(folder: Path, args) -> list[str]:
    overrides = ["+experiment=mnist_9v4_source", f"data.source_dir={MNIST}", *QUIET]
    table = multirun(folder, "mnist_9v4_source", overrides)
    lines = header(
        "The 9-vs-4 study as its source ran it",
        [shown(overrides)],
        "All MNIST 9s and 100 4s, MLP 512-512-128-128 (Dropout 0.75), batch 512, the last 1% of "
        "the unshuffled arrays as validation (4s only), early stopping on val_loss without "
        "restoring, decisions at 0.5. Test: 1009 9s, 982 4s. Rows: [9 as 9, 9 as 4], "
        "[4 as 9, 4 as 4].",
    )
    lines += [
        "| variant | losslab | source | minority recall (losslab / source) |",
        "|---|---|---|---|",
    ]
    for _, row in table.iterrows():
        ours, theirs = row["confusion_at_0.5"], SOURCE.get(row["variant"])
        source_recall = theirs[1][1] / sum(theirs[1]) if theirs else None
        lines.append(
            f"| {row['variant']} | {ours} | {theirs} | "
            f"{_f(row.get('test_at_0.5_recall'))} / {_f(source_recall)} |"
        )
    return lines


def remedy_rows(table: pd.DataFrame) -> list[str]:
    """One row per run: the minority scores the comparison report shows."""
    lines = [
        "| variant | minority recall | majority recall | recall at 1% FPR | precision | PR-AUC "
        "| ROC-AUC | confusion at threshold | confusion at 0.5 | epochs run | restored epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['variant']} | {_f(r.get('test_recall'))} | {_f(r.get('test_majority_recall'))} "
            f"| {_f(r.get('test_recall_at_fpr'))} | {_f(r.get('test_precision'))} "
            f"| {_f(r.get('test_pr_auc'))} | {_f(r.get('test_roc_auc'))} | {r['confusion']} "
            f"| {r['confusion_at_0.5']} | {_int(r.get('epochs_run'))} "
            f"| {_int(r.get('best_epoch'))} |"
        )
    return lines


def study_sound(folder: Path, args) -> list[str]:
    overrides = ["+experiment=mnist_9v4", f"data.source_dir={MNIST}", *QUIET]
    table = multirun(folder, "mnist_9v4", overrides)
    lines = header(
        "The 9-vs-4 study on a sound protocol",
        [shown(overrides)],
        "Same data and model; validation a stratified 20% (20 4s, 1190 9s); early stopping "
        "restores the epoch of the best validation PR-AUC; the threshold is the one with the "
        "most minority recall at a 1% false-positive rate on validation. Test: 1009 9s, 982 4s.",
    )
    return lines + remedy_rows(table)


# shirts (6) against T-shirts (0) on the sound 9-vs-4 protocol
FASHION_PAIR = [
    "+experiment=mnist_9v4",
    "data.dataset=fashion_mnist",
    f"data.source_dir={FASHION}",
    "data.majority=0",
    "data.minority=6",
    "task_name=fashion_0v6",
]


def study_fashion(folder: Path, args) -> list[str]:
    overrides = [*FASHION_PAIR, *QUIET]
    table = multirun(folder, "fashion_0v6", overrides)
    lines = header(
        "Fashion-MNIST: shirts (6) as the minority against T-shirts (0)",
        [shown(overrides).replace(str(FASHION), "/usr/share/datasets/fashion-mnist")],
        "The sound 9-vs-4 protocol on another pair: all 6000 training T-shirts and 100 shirts; "
        "test: 1000 of each.",
    )
    return lines + remedy_rows(table)


def study_fraud(folder: Path, args) -> list[str]:
    overrides = ["+experiment=fraud_tutorial", f"data.path={CREDITCARD}", *QUIET]
    table = multirun(folder, "fraud_tutorial", overrides)
    lines = header(
        "Credit-card fraud (0.17%) beside TensorFlow's tutorial",
        [shown(overrides)],
        "The real Kaggle file (284,807 rows, 492 frauds); 20% test, 20% of the rest validation; "
        "MLP 16 (Dropout 0.5), batch 2048, early stopping restoring the best validation PR-AUC. "
        "The tutorial's figures are at threshold 0.5 on its own split (99 test frauds), as "
        "rendered on tensorflow.org for TF 2.3; it reports no PR-AUC.",
    )
    lines += [
        "| variant | PR-AUC | ROC-AUC | recall at 1% FPR | recall at 0.5 | false positives at 0.5 "
        "| tutorial: recall at 0.5 | tutorial: false positives | tutorial: ROC-AUC |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        tut = TUTORIAL.get(r["variant"], {})
        at_half = json.loads(r["confusion_at_0.5"])
        lines.append(
            f"| {r['variant']} | {_f(r.get('test_pr_auc'))} | {_f(r.get('test_roc_auc'))} "
            f"| {_f(r.get('test_recall_at_fpr'))} | {_f(r.get('test_at_0.5_recall'))} "
            f"| {at_half[0][1]} | {_f(tut.get('recall'))} | {tut.get('fp', '')} "
            f"| {_f(tut.get('roc_auc'))} |"
        )
    return lines


FRAUD_SEEDS = "42,1,2"  # 42: the seed of the tutorial comparison above
FRAUD_ROWS = 100_000  # 24 jobs of 100 epochs at most: about 25 minutes on 2 busy cores


def study_fraud_time(folder: Path, args) -> list[str]:
    """The fraud tutorial's remedies on a time split beside the random split, same seeds:
    trained on the oldest rows, validated on the next, tested on the newest."""
    overrides = [
        "+experiment=fraud_tutorial",
        f"data.path={CREDITCARD}",
        "data.split=random,time",
        "data.time_column=Time",
        f"data.max_rows={FRAUD_ROWS}",
        f"seed={FRAUD_SEEDS}",
        "tracking.log_model=false",
        *QUIET,
    ]
    return fraud_time_lines(multirun(folder, "fraud_tutorial", overrides), overrides)


def fraud_time_lines(table: pd.DataFrame, overrides: list[str]) -> list[str]:
    """The section from the multirun's comparison table."""
    table["fp_at_half"] = [json.loads(c)[0][1] for c in table["confusion_at_0.5"]]
    table["frauds"] = [sum(json.loads(c)[1]) for c in table["confusion_at_0.5"]]
    lines = header(
        "Credit-card fraud: a time split beside the random split",
        [shown(overrides)],
        "The section above's model and remedies through `data=table` (the `data=creditcard` "
        f"preset) on a stratified subsample of {FRAUD_ROWS:,} of the file's rows (drawn per "
        "seed, to keep the 24 jobs to about 25 minutes of two cores), each on two splits: "
        "`random` (stratified 20% test, 20% of the rest validation) and `time` (the newest "
        "20% of the rows by `Time` test, the next-newest 20% of the rest validation, the "
        "oldest train: no validation or test row is older than a training row). Test scores, "
        f"mean over seeds {FRAUD_SEEDS.replace(',', ', ')}, and each seed's PR-AUC.",
    )
    lines += [
        "| variant | split | test frauds | PR-AUC | ROC-AUC | recall at 1% FPR | recall at 0.5 "
        f"| false positives at 0.5 | PR-AUC per seed ({FRAUD_SEEDS.replace(',', ', ')}) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (variant, split), g in table.groupby(["variant", "data.split"], sort=False):
        g = g.sort_values("seed", key=lambda s: s.map(FRAUD_SEEDS.split(",").index))
        lines.append(
            f"| {variant} | {split} | {_int(g['frauds'].median())} | {_f(g['test_pr_auc'].mean())} "
            f"| {_f(g['test_roc_auc'].mean())} | {_f(g['test_recall_at_fpr'].mean())} "
            f"| {_f(g['test_at_0.5_recall'].mean())} | {g['fp_at_half'].mean():.0f} "
            f"| {' '.join(_f(v, 2) for v in g['test_pr_auc'])} |"
        )
    lines.append("")
    for split, g in table.groupby("data.split", sort=False):
        pr_auc = g["test_pr_auc"]
        lines.append(
            f"- `{split}`: test PR-AUC {_f(pr_auc.mean())} over its {len(g)} runs (each from "
            f"{_f(pr_auc.min())} to {_f(pr_auc.max())}); recall at 1% FPR "
            f"{_f(g['test_recall_at_fpr'].mean())}."
        )
    return lines


def best_of_sweep(folder: Path) -> dict:
    """The study's best trial and what its run scored on test."""
    import optuna
    from mlflow import MlflowClient

    from losslab.search.ties import choose

    (db,) = folder.glob("outputs/sweeps/*/optuna.db")
    storage = f"sqlite:///{db}"
    study = optuna.load_study(study_name=db.parent.name, storage=storage)
    choice = choose(study)
    best = choice.trial
    run = MlflowClient(f"sqlite:///{folder}/mlflow.db").get_run(best.user_attrs["mlflow_run_id"])
    states = [t.state.name for t in study.trials]
    remedy = ", ".join(f"{k}={v}" for k, v in best.params.items() if k in ("loss", "imbalance"))
    return {
        "trial": best.number,
        "tied": len(choice.tied),
        "objective": best.value,
        "remedy": remedy,
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        **{
            k: run.data.metrics.get(k)
            for k in ("test_recall", "test_majority_recall", "test_recall_at_fpr", "test_pr_auc")
        },
    }


def study_headline(folder: Path, args) -> list[str]:
    rows = []
    for seed in args.seeds:
        overrides = [*HEADLINE, f"seed={seed}", f"hydra.sweeper.sampler.seed={seed}", *QUIET]
        wall_file = folder / f"seed-{seed}" / "wall_s.txt"  # kept for --from-store
        if not FROM_STORE:
            wall_file.write_text(f"{sweep_command(wall_file.parent, *overrides):.1f}\n")
        wall_min = float(wall_file.read_text()) / 60
        rows.append({"seed": seed, "wall_min": wall_min, **best_of_sweep(wall_file.parent)})
    median = {
        k: statistics.median(r[k] for r in rows)
        for k in ("test_recall", "test_majority_recall", "test_recall_at_fpr", "wall_min")
    }
    recall_low, recall_high, coverage = median_interval([r["test_recall"] for r in rows])
    majority_low, majority_high, _ = median_interval([r["test_majority_recall"] for r in rows])
    met = median["test_recall"] >= 0.95 and median["test_majority_recall"] >= 0.99
    lines = header(
        "Headline: an unattended sweep rescues the minority class",
        [
            shown([*HEADLINE, "seed=S", "hydra.sweeper.sampler.seed=S"]).replace(
                "python train.py -m", "losslab sweep"
            )
            + "   # S = "
            + ", ".join(map(str, args.seeds))
        ],
        "The reference protocol (all MNIST 9s + 100 4s; test 1009 9s, 982 4s), run as "
        "`losslab sweep` runs it: the remedies search (12 trials, 15 epochs, batch 64), the CNN "
        "and 3 stratified folds picked from the data. Each trial delivers one rule: its fold "
        "models' scores mapped to their validation majority's scale and averaged, one threshold "
        "at 1% FPR on the pooled out-of-fold scores; its objective is that rule's out-of-fold "
        "minority recall, ties broken by the partial ROC AUC up to 1% FPR. The chosen trial's "
        "test figures are its delivered model's at that threshold. Goal: test minority recall "
        ">= 0.95 at majority recall >= 0.99, median of the seeds.",
    )
    lines += [
        "| seed | wall time | trials complete / pruned | best trial | chosen remedy | objective "
        "| test minority recall | test majority recall | test recall at 1% FPR | test PR-AUC |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['seed']} | {r['wall_min']:.1f} min | {r['complete']} / {r['pruned']} "
            f"| {r['trial']} | {r['remedy']} | {_f(r['objective'])} | {_f(r['test_recall'])} "
            f"| {_f(r['test_majority_recall'])} | {_f(r['test_recall_at_fpr'])} "
            f"| {_f(r['test_pr_auc'])} |"
        )
    lines += [
        f"| **median** | {median['wall_min']:.1f} min | | | | | **{_f(median['test_recall'])}** "
        f"| **{_f(median['test_majority_recall'])}** | {_f(median['test_recall_at_fpr'])} | |",
        "",
        f"Goal {'met' if met else 'not met'}: median test minority recall "
        f"{_f(median['test_recall'])} [{_f(recall_low)}, {_f(recall_high)}] at majority recall "
        f"{_f(median['test_majority_recall'])} [{_f(majority_low)}, {_f(majority_high)}] over "
        f"{len(rows)} sweep seeds (in brackets: the median's {coverage:.1%} distribution-free "
        "interval, between order statistics of the seeds' figures).",
    ]
    return lines


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """The narrowest interval between order statistics that holds the median with at least
    ``confidence`` (the binomial count of values below the median), or the whole range and
    its coverage where too few values allow it (5 values: 93.8%). A bootstrap of the median
    over 5 values can only return values already drawn and covers less than it says."""
    from scipy.stats import binom

    ordered, n = sorted(values), len(values)
    best = (ordered[0], ordered[-1], float(1 - 2 * binom.cdf(0, n, 0.5)))
    for k in range(1, n // 2):  # between the k-th smallest and the k-th largest (0-based)
        coverage = 1 - 2 * binom.cdf(k, n, 0.5)
        if coverage < confidence:
            break
        best = (ordered[k], ordered[-1 - k], float(coverage))
    return best


def repeated(folder: Path, experiment: str, command: list[str]):
    """Run ``command`` (a ``losslab`` command line) in ``folder`` and compare its newest
    multirun as ``losslab compare`` does: groups of repeats, intervals, findings. With
    ``--from-store`` the runs already in ``folder`` are compared again, nothing is run."""
    folder.mkdir(parents=True, exist_ok=True)
    if not FROM_STORE:
        with open(folder / "log.txt", "a") as log:
            cmd = [sys.executable, "-m", "losslab", *command]
            subprocess.run(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, check=True)
    from losslab.compare import compare

    uri = f"sqlite:///{folder}/mlflow.db"
    return compare(uri, folder / "compare", experiment=experiment, log_to_parent=False)


INTERVAL_COLUMNS = {
    "test_recall_at_fpr": "recall at 1% FPR",
    "test_pr_auc": "PR-AUC",
    "test_precision": "precision",
    "test_recall": "recall at threshold",
    "test_majority_recall": "majority recall at threshold",
}


def interval_rows(comparison) -> list[str]:
    """Each group's mean and 95% interval over its repeats, the median over its runs of the
    test-set interval of PR-AUC (the noise of one test split), then the findings."""
    summary, groups = comparison.groups.summary, comparison.groups
    columns = [c for c in INTERVAL_COLUMNS if c in summary]
    lines = [
        "| remedy | repeats | "
        + " | ".join(INTERVAL_COLUMNS[c] for c in columns)
        + " | one run's PR-AUC test-set interval (median) |",
        "|---|---|" + "---|" * (len(columns) + 1),
    ]
    table = comparison.table
    for _, row in summary.iterrows():
        cells = [f"{row[c]:.3f} [{row[c + '_low']:.2f}, {row[c + '_high']:.2f}]" for c in columns]
        runs = table[groups.label == row["group"]]
        if "test_pr_auc_ci_low" in runs:
            low, high = runs["test_pr_auc_ci_low"].median(), runs["test_pr_auc_ci_high"].median()
            cells.append(f"[{low:.2f}, {high:.2f}]")
        name = row["group"].replace("+variant=", "")
        lines.append(f"| {name} | {row['runs']} | " + " | ".join(cells) + " |")
    lines += ["", "Findings (`losslab compare`, paired over the same seeds):", ""]
    return lines + [f"- {line}" for line in comparison.findings]


def study_default(folder: Path, args) -> list[str]:
    """The embedded default data: every remedy, ten repeats each, compared with intervals."""
    command = ["study", "repeats=10", *QUIET]
    comparison = repeated(folder, "losslab", command)
    lines = header(
        "The default data: which remedy rescues the 3s",
        ["losslab " + " ".join(command)],
        "`python train.py` as it ships: scikit-learn's 8x8 digits, 90 9s and 10 3s to train on, "
        "30 and 10 to validate on, 60 of each to test on; 20 epochs, the threshold chosen on "
        "validation at a 1% false-positive rate. Each remedy on seeds 42-51 (each seed its own "
        "splits and initial weights); test figures as mean and 95% bootstrap interval over the "
        "ten repeats.",
    )
    return lines + interval_rows(comparison)


def study_repeats(folder: Path, args) -> list[str]:
    """The reference studies again, each variant on five seeds, compared with intervals:
    the sound 9-vs-4 protocol, Fashion-MNIST shirts against T-shirts, and credit-card fraud."""
    lines: list[str] = []
    for name, experiment, overrides, note in REPEATED:
        command = ["train", *overrides, "repeats=5", "tracking.log_model=false", *QUIET]
        comparison = repeated(folder / name, experiment, command)
        shown_command = "losslab " + " ".join(command).replace(str(DATA), "../shared/data")
        shown_command = shown_command.replace(str(FASHION), "/usr/share/datasets/fashion-mnist")
        lines += [f"### {note[0]}", "", "```bash", shown_command, "```", "", note[1], ""]
        lines += interval_rows(comparison) + [""]
    title = "## The reference studies over five seeds, with intervals"
    note = (
        "Each variant on seeds 42-46 (each seed its own splits and initial weights); test "
        "figures as mean and 95% bootstrap interval over the five repeats, and the median "
        "test-set bootstrap interval of one run's PR-AUC."
    )
    return [title, "", f"Machine: {machine('cpu')}.", "", note, "", *lines]


REPEATED = [
    (
        "sound",
        "mnist_9v4",
        ["+experiment=mnist_9v4", f"data.source_dir={MNIST}"],
        ("MNIST 9 vs 4, the sound protocol", "All 9s and 100 4s; test 1009 9s and 982 4s."),
    ),
    (
        "fashion",
        "fashion_0v6",
        FASHION_PAIR,
        ("Fashion-MNIST: shirts (6) against T-shirts (0)", "6000 T-shirts and 100 shirts."),
    ),
    (
        "fraud",
        "fraud_tutorial",
        ["+experiment=fraud_tutorial", f"data.path={CREDITCARD}", f"data.max_rows={FRAUD_ROWS}"],
        (
            "Credit-card fraud",
            f"A stratified subsample of {FRAUD_ROWS:,} rows per seed (about 35 test frauds).",
        ),
    ),
]


def _runs(folder: Path, experiment: str) -> pd.DataFrame:
    """Every finished job of the experiment in ``folder``'s store, params and metrics."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=[experiment])
    return runs[runs["tags.losslab.run_type"] == "job"]


def study_flattery(folder: Path, args) -> list[str]:
    """How much choosing the epoch on the validation data that judges it flatters the
    estimate: the delivered rule's out-of-fold validation recall against its test recall,
    with the epoch chosen on validation (restored best) and without (the last epoch)."""
    seeds = ",".join(map(str, args.seeds))
    overrides = [
        "objective=val_recall_at_fpr",
        "data.folds=2",
        "imbalance=balanced",
        "trainer.early_stopping.enabled=true,false",
        "trainer.early_stopping.patience=20",
        f"seed={seeds}",
        "tracking.log_model=false",
        *QUIET,
    ]
    run(folder, *overrides)
    runs = _runs(folder, "losslab")
    chosen = runs["params.trainer.early_stopping.enabled"].str.lower() == "true"
    runs["gap"] = runs["metrics.objective"] - runs["metrics.test_recall"]
    lines = header(
        "How much choosing the epoch on validation flatters the estimate",
        [shown(overrides)],
        "The default data (digits, 9s against 3s; 20 3s in 2 stratified folds, 60 3s and 60 9s "
        "in test), 20 epochs. The estimate is the objective: the delivered rule's out-of-fold "
        "minority recall at its threshold (chosen on the same out-of-fold scores at 1% FPR); "
        "its test figure is the test minority recall at that threshold. With the epoch chosen "
        "on validation the best epoch of each fold is restored; without, the last epoch is "
        f"kept. Seeds {seeds}.",
    )
    lines += [
        "| epoch | seeds | mean objective | mean test minority recall | mean gap | gap per seed "
        "| mean test majority recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, group in (("chosen on validation", runs[chosen]), ("last", runs[~chosen])):
        group = group.sort_values("params.seed")
        lines.append(
            f"| {label} | {len(group)} | {_f(group['metrics.objective'].mean())} "
            f"| {_f(group['metrics.test_recall'].mean())} | {_f(group['gap'].mean())} "
            f"| {' '.join(_f(v, 2) for v in group['gap'])} "
            f"| {_f(group['metrics.test_majority_recall'].mean())} |"
        )
    return lines


# data the sweep was not tuned on: (label, overrides); digits pairs run in minutes on 2 cores
UNATTENDED = [
    ("digits 9 vs 4 (20 4s)", ["data=digits_9v4"]),
    ("digits 9 vs 3 (20 3s)", ["data=digits_9v3"]),
    (
        "digits 1 vs 7 (30 7s)",
        ["data=digits_9v4", "data.majority=1", "data.minority=7", "data.n_minority=30"],
    ),
    (
        "MNIST 3 vs 5 (100 5s)",
        ["data=mnist_9v4", f"data.source_dir={MNIST}", "data.majority=3", "data.minority=5"],
    ),
]
# the shipped search (TPE, start-up a quarter of the trials) against pure random search,
# on the data sets whose sweeps take minutes here (the first three)
SAMPLERS = {"tpe": [], "random": ["hydra/sweeper/sampler=random"]}
RANDOM_ON = 3


def study_unattended(folder: Path, args) -> list[str]:
    """``losslab sweep data=...`` as it ships, per data set and sweep seed, beside the same
    sweep with random search: the chosen trial's validation estimate against its test
    figures. With ``--from-store`` the sweeps already in ``folder`` are read, nothing is run,
    and a sweep that is not there is left out of the table."""
    rows = []
    for sampler, choice in SAMPLERS.items():  # every shipped sweep first
        for index, (label, data) in enumerate(UNATTENDED):
            if sampler == "random" and index >= RANDOM_ON:
                continue
            for seed in args.seeds:
                where = folder / f"{index}-{sampler}-{seed}"
                wall_file = where / "wall_s.txt"
                extra = [f"seed={seed}", *choice, f"hydra.sweeper.sampler.seed={seed}", *QUIET]
                if not FROM_STORE:
                    wall = sweep_command(where, *data, "tracking.log_model=false", *extra)
                    wall_file.write_text(f"{wall:.1f}\n")
                if not wall_file.exists():
                    continue
                best = best_of_sweep(where)
                rows.append(
                    {
                        "data": label,
                        "sampler": sampler,
                        "seed": seed,
                        **best,
                        "wall_min": float(wall_file.read_text()) / 60,
                    }
                )
    lines = header(
        "One unattended command on data it was not tuned on",
        [
            f"losslab sweep {' '.join(d)} tracking.log_model=false seed=S "
            "hydra.sweeper.sampler.seed=S trainer.verbose=0".replace(str(DATA), "../shared/data")
            for _, d in UNATTENDED
        ]
        + ["# the first three again with hydra/sweeper/sampler=random"],
        "What `losslab sweep data=...` runs without other overrides (hparams_search="
        "unattended: the remedies search, 12 trials, 15 epochs, batch 64, TPE with 3 random "
        "start-up trials; the CNN for these image data; folds from the minority count), and "
        "the same budget drawn by pure random search. The estimate is the chosen trial's "
        "objective: the delivered rule's out-of-fold minority recall at its threshold (1% FPR "
        "on validation); gap = estimate - test minority recall at that threshold. Sweep seeds "
        f"{', '.join(map(str, args.seeds))}; medians over them. Digits test splits are 60 per "
        "class: one test sample moves a recall by 0.017. Goal: test minority recall >= 0.95 "
        "at majority recall >= 0.99.",
    )
    lines += unattended_medians(rows) + ["", "Each sweep:", ""] + unattended_rows(rows)
    return lines


def unattended_medians(rows: list[dict]) -> list[str]:
    """Per data set and search: the medians over the sweep seeds."""
    lines = [
        "| data | search | sweeps | best objective | test minority recall | test majority "
        "recall | test recall at 1% FPR | gap | goal | what limits it |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, _ in UNATTENDED:
        for sampler in SAMPLERS:
            mine = [r for r in rows if r["data"] == label and r["sampler"] == sampler]
            if not mine:
                continue
            med = {
                k: statistics.median(r[k] for r in mine)
                for k in ("objective", "test_recall", "test_majority_recall", "test_recall_at_fpr")
            }
            gap = statistics.median(r["objective"] - r["test_recall"] for r in mine)
            met = med["test_recall"] >= 0.95 and med["test_majority_recall"] >= 0.99
            lines.append(
                f"| {label} | {sampler} | {len(mine)} | {_f(med['objective'])} "
                f"| **{_f(med['test_recall'])}** | **{_f(med['test_majority_recall'])}** "
                f"| {_f(med['test_recall_at_fpr'])} | {_f(gap)} | {'met' if met else 'not met'} "
                f"| {'' if met else limit(med)} |"
            )
    return lines


def limit(med: dict) -> str:
    """Why a goal was missed: the models' ranking (the chosen model cannot reach recall 0.95
    on test even at the test split's own 1% FPR threshold) or the threshold's transfer (it
    could, but the threshold chosen on validation lands elsewhere on test)."""
    if med["test_recall_at_fpr"] < 0.95:
        return "the ranking (recall at 1% FPR on test < 0.95)"
    if med["test_majority_recall"] < 0.99:
        return "the threshold's transfer (too low on test)"
    return "the threshold's transfer (too high on test)"


def unattended_rows(rows: list[dict]) -> list[str]:
    """One line per sweep: what it chose and how that did on test."""
    lines = [
        "| data | search | seed | wall time | trials complete / pruned | chosen trial | tied "
        "| remedy | estimate | test minority recall | test majority recall "
        "| test recall at 1% FPR | gap |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['sampler']} | {r['seed']} | {r['wall_min']:.1f} min "
            f"| {r['complete']} / {r['pruned']} | {r['trial']} | {r['tied']} | {r['remedy']} "
            f"| {_f(r['objective'])} | {_f(r['test_recall'])} | {_f(r['test_majority_recall'])} "
            f"| {_f(r['test_recall_at_fpr'])} | {_f(r['objective'] - r['test_recall'])} |"
        )
    return lines


def _override(label: str, key: str) -> str:
    return next((w.split("=", 1)[1] for w in label.split() if w.startswith(f"{key}=")), "?")


STUDIES = {
    "default": study_default,
    "source": study_source,
    "sound": study_sound,
    "headline": study_headline,
    "fraud": study_fraud,
    "fraud_time": study_fraud_time,
    "fashion": study_fashion,
    "flattery": study_flattery,
    "unattended": study_unattended,
    "repeats": study_repeats,
}


def main() -> None:
    p = parser("The studies behind RESULTS.md", repeats=1)
    p.add_argument("studies", nargs="+", choices=[*STUDIES, "all"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="headline sweeps")
    p.add_argument(
        "--from-store",
        action="store_true",
        help="default, repeats: write the section from the runs already stored, run nothing",
    )
    args = p.parse_args()
    global FROM_STORE
    FROM_STORE = args.from_store
    use_device(args.device)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    names = list(STUDIES) if "all" in args.studies else args.studies
    for name in names:
        folder = REPO / "outputs" / "results" / name
        if folder.exists() and not args.from_store:
            import shutil

            shutil.rmtree(folder)
        body = "\n".join(STUDIES[name](folder, args))
        print(body)
        if not args.no_write:
            write_section(name, body, RESULTS_MD, "Results")


if __name__ == "__main__":
    main()
