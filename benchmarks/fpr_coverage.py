"""Coverage of the threshold rules: how often a threshold chosen on validation keeps the
false-positive budget on test, and what keeping it costs in minority recall.

Per data set and seed, one model is trained (``losslab.train.train``, in-process, nothing
tracked); each rule chooses its threshold on that model's validation scores and is judged on
the same test scores: is its test false-positive rate at most ``evaluation.max_fpr``, and how
much of the test minority does it find. ``recall_at_fpr`` sets the threshold at the budget on
validation; ``fpr_bound`` keeps the exact 95% upper bound of the validation rate within it.
The seed draws the split, the weights and the batches.

    python benchmarks/fpr_coverage.py [--seeds 20] [--no-write]
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    RESULTS_MD,
    command,
    machine,
    parser,
    use_device,
    write_section,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CSV = SHARED / "creditcard" / "creditcard.csv.gz"
QUIET = ["tracking=none", "trainer.verbose=0"]
DATA = {
    "synthetic_fraud": [
        "data=synthetic_fraud",
        "data.n_samples=100000",
        "data.positive_fraction=0.02",
        "data.test_fraction=0.5",
        "trainer.epochs=5",
        "trainer.batch_size=256",
    ],
    "creditcard": [
        "data=creditcard",
        f"data.path={CSV}",
        "model=mlp_fraud",
        "trainer.epochs=10",
        "trainer.batch_size=2048",
    ],
    "mnist_9v4": [
        "data=mnist_9v4",
        f"data.source_dir={SHARED / 'mnist'}",
        "trainer.epochs=5",
        "trainer.batch_size=128",
    ],
}
RULES = ("recall_at_fpr", "fpr_bound")


def one_seed(overrides: list[str], seed: int) -> dict:
    """Train once; each rule's threshold on validation, judged on test."""
    from losslab.composition import compose
    from losslab.config import EvaluationConfig
    from losslab.evaluate import choose_threshold
    from losslab.train import train

    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        result = train(compose([*QUIET, *overrides, f"seed={seed}"], root=tmp))
    ds = result.dataset
    y_val, p_val = ds.y_val.ravel(), result.model.predict(ds.x_val, verbose=0).ravel()
    y_test, p_test = result.evaluation.y_test, result.evaluation.p_test
    row = {"val_majority": int(np.sum(y_val == 0)), "test_majority": int(np.sum(y_test == 0))}
    row["test_minority"] = int(np.sum(y_test == 1))
    for rule in RULES:
        t = choose_threshold(y_val, p_val, EvaluationConfig(threshold=rule), min_positives=10)
        row[f"{rule}_fpr"] = float(np.mean(p_test[y_test == 0] >= t))
        row[f"{rule}_recall"] = float(np.mean(p_test[y_test == 1] >= t))
    return row


def over_budget(fpr: np.ndarray, max_fpr: float) -> np.ndarray:
    """Which runs' test false-positive rate lies above the budget (a rate of exactly the
    budget, computed in floating point, keeps it)."""
    return fpr > max_fpr + 1e-12


def table(rows: dict[str, list[dict]], max_fpr: float) -> list[str]:
    """Per data set and rule: the share of runs that kept the budget on test with its exact
    (Clopper-Pearson) interval; 20 runs cannot tell 90% from 95%."""
    from scipy.stats import binomtest

    lines = [
        "| data | runs | validation / test majority | test minority | rule | test FPR <= 1% "
        "| its 95% interval | mean test FPR | worst test FPR | mean test minority recall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        counts = f"{np.mean([r['val_majority'] for r in runs]):.0f} / "
        counts += f"{np.mean([r['test_majority'] for r in runs]):.0f}"
        minority = f"{np.mean([r['test_minority'] for r in runs]):.0f}"
        for rule in RULES:
            fpr = np.array([r[f"{rule}_fpr"] for r in runs])
            recall = np.mean([r[f"{rule}_recall"] for r in runs])
            kept = int(np.sum(~over_budget(fpr, max_fpr)))
            low, high = binomtest(kept, len(runs)).proportion_ci(method="exact")
            lines.append(
                f"| {name} | {len(runs)} | {counts} | {minority} | `{rule}` "
                f"| {kept / len(runs):.0%} | [{low:.0%}, {high:.0%}] "
                f"| {fpr.mean():.4f} | {fpr.max():.4f} | {recall:.3f} |"
            )
    return lines


def notes(rows: dict[str, list[dict]], max_fpr: float) -> list[str]:
    """Per data set: the false positives ``fpr_bound`` allows on validation, how often it kept
    the budget on test, and how far its misses lie from the budget in the test split's own
    standard error (the test rate is an estimate of the true rate too)."""
    from losslab.operating_point import allowed_false_positives

    lines = []
    for name, runs in rows.items():
        n, m = runs[0]["val_majority"], runs[0]["test_majority"]
        allowed = allowed_false_positives(n, max_fpr, 0.95)
        fpr = np.array([r["fpr_bound_fpr"] for r in runs])
        se = np.sqrt(max_fpr * (1 - max_fpr) / m)
        misses = fpr[over_budget(fpr, max_fpr)]
        line = (
            f"- `{name}`: `fpr_bound` allows {allowed} false positive{'' if allowed == 1 else 's'}"
            f" among {n} validation "
            f"majority samples ({allowed / n:.2%}) and kept the budget on test in "
            f"{len(runs) - len(misses)} of {len(runs)} runs (goal: 95%)."
        )
        if len(misses):
            listed = ", ".join(f"{v:.4f}" for v in misses)
            line += (
                f" A test split of {m} majority samples measures a rate of {max_fpr:.0%} with "
                f"a standard error of {se:.4f}; its misses ({listed}) lie within "
                f"{(misses.max() - max_fpr) / se:.1f} standard errors of the budget."
            )
        lines.append(line)
    return lines


def section(rows: dict[str, list[dict]], seeds: int, device: str) -> str:
    shown = {n: " ".join(o.replace(str(SHARED), "../shared/data") for o in DATA[n]) for n in DATA}
    body = [
        "## Coverage of the threshold rules: does the false-positive budget hold on test?",
        "",
        f"Machine: {machine(device)}.",
        "",
        "Commands:",
        "",
        "```bash",
        command(),
        "```",
        "",
        f"Per data set, seeds 0..{seeds - 1}: one model trained per seed "
        "(`losslab.train.train`, the seed drawing split, weights and batches); both rules "
        "choose a threshold on that model's validation scores at `evaluation.max_fpr=0.01` "
        "(`fpr_bound` at `evaluation.confidence=0.95`) and are judged on the same test "
        "scores. " + "; ".join(f"`{n}`: `{o}`" for n, o in shown.items() if n in rows) + ".",
        "",
        *table(rows, 0.01),
        "",
        *notes(rows, 0.01),
        "",
        "`recall_at_fpr` takes the highest threshold that reaches its best validation recall "
        "within the budget: where validation holds few of the minority (the credit-card "
        "data, MNIST's 20 4s) that recall saturates before the budget is spent and the test "
        "rate stays well below it; where it holds many (the synthetic data's 400) the "
        "threshold spends the whole budget on validation and lands above it on test in a "
        "share of the runs. `fpr_bound` takes the lowest threshold its bound allows, spending "
        "the certified part of the budget: it costs minority recall where validation holds "
        "few of the majority (MNIST: one false positive allowed among 595) and finds more "
        "where `recall_at_fpr` stops early. The guarantee is on the rate in the population "
        "the validation split was drawn from; a test split estimates that rate with an "
        "error of its own.",
    ]
    return "\n".join(body)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=20, help="seeds per data set (0, 1, ...)")
    p.add_argument("--data", nargs="*", default=list(DATA), choices=list(DATA))
    args = p.parse_args()
    use_device(args.device)
    rows: dict[str, list[dict]] = {}
    for name in args.data:
        rows[name] = []
        for seed in range(args.seeds):
            rows[name].append(one_seed(DATA[name], seed))
            print(name, seed, rows[name][-1], flush=True)
    text = section(rows, args.seeds, args.device)
    print(text)
    if not args.no_write:
        write_section("fpr_coverage", text, RESULTS_MD, "Results")


if __name__ == "__main__":
    main()
