"""After training: pick the decision threshold on validation, judge the test split with it.

Accuracy hides a minority class the model ignores, so the report leads with precision,
recall, F1, ROC-AUC, PR-AUC and the confusion matrix, at the chosen threshold and at 0.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn import metrics as skm

from losslab import operating_point, prevalence
from losslab.config import EvaluationConfig
from losslab.data import Dataset


@dataclass
class Evaluation:
    """Test (and validation) figures with what the plots need."""

    task: str
    threshold: float | None
    metrics: dict[str, float]
    confusion: np.ndarray
    confusion_at_half: np.ndarray | None
    class_names: list[str]
    y_test: np.ndarray  # the labels and predictions of the split judged (``split``)
    p_test: np.ndarray
    extra: dict[str, object] = field(default_factory=dict)
    split: str = "test"


# a threshold no sigmoid output reaches: nothing is called positive
NEVER = float(np.nextafter(np.float32(1.0), np.float32(2.0)))


# validation predictions that vary less than this across samples are taken as constant
CONSTANT_SPREAD = 1e-6
SPREAD = "val_prediction_spread"  # the metric: the fold models' largest range of an output


def prediction_spread(p: np.ndarray) -> float:
    """The largest range of any output across samples: 0 for a model that answers every
    input alike (a diverged or dead model), NaN for one that answers NaN."""
    p = np.asarray(p, dtype=float).reshape(len(p), -1)
    return float(np.max(np.ptp(p, axis=0))) if len(p) else 0.0


def degenerate(metrics: dict[str, float]) -> str | None:
    """Why a model with these figures is no model: its validation predictions are constant.
    Its objective is then the validation prevalence (PR AUC) or chance, a value that can still
    beat a sweep's real trials; a sweep never chooses it."""
    spread = metrics.get(SPREAD)
    if spread is None or spread > CONSTANT_SPREAD:
        return None
    return f"validation predictions constant (spread {spread:.2g})"


class EvaluationError(ValueError):
    """Validation that cannot judge: too few samples of a class for the rule asked for."""


def check_judgeable(y: np.ndarray, what: str, min_positives: int) -> None:
    """Refuse a threshold or score computed on fewer than ``min_positives`` minority samples,
    or on validation without a majority sample: it would be noise, not a judgement."""
    positives = int(np.sum(y == 1))
    negatives = len(y) - positives
    if negatives == 0 or positives < max(1, min_positives):
        raise EvaluationError(
            f"{what} needs validation with both classes and at least {max(1, min_positives)} "
            f"minority samples (data.min_val_minority); validation holds {positives} minority "
            f"and {negatives} majority samples: use a stratified split (data.val_split="
            "stratified), more minority samples, or evaluation.threshold=fixed"
        )


def check_certifiable(y_val: Sequence[np.ndarray], cfg: EvaluationConfig) -> None:
    """Refuse ``evaluation.threshold=fpr_bound`` on validation (every fold's labels
    ``y_val`` together: the threshold is chosen on them all) whose majority samples cannot
    bound the false-positive rate at ``max_fpr`` even with no false positive."""
    if cfg.threshold != "fpr_bound":
        return
    majority = sum(int(np.sum(np.asarray(y).ravel() == 0)) for y in y_val)
    needed = operating_point.majority_needed(cfg.max_fpr, cfg.confidence)
    if majority < needed:
        raise EvaluationError(
            f"evaluation.threshold=fpr_bound: validation holds {majority} majority samples; "
            f"bounding the false-positive rate at evaluation.max_fpr={cfg.max_fpr:g} with "
            f"evaluation.confidence={cfg.confidence:g} needs at least {needed}: raise "
            "data.val_fraction (or data.folds), raise evaluation.max_fpr, lower "
            "evaluation.confidence, or use evaluation.threshold=recall_at_fpr"
        )


def recall_at_fpr(y: np.ndarray, p: np.ndarray, max_fpr: float) -> tuple[float, float]:
    """The highest minority recall whose false-positive rate on the majority is at most
    ``max_fpr``, and the threshold that gives it (exact, from every distinct score).

    A model that ranks nothing above the majority scores 0; its threshold calls nothing
    positive.
    """
    fpr, tpr, thresholds = skm.roc_curve(y, p, drop_intermediate=False)
    ok = np.flatnonzero(fpr <= max_fpr + 1e-12)  # the first point (nothing positive) always
    best = ok[np.argmax(tpr[ok])]
    return float(tpr[best]), float(min(thresholds[best], NEVER))


def choose_threshold(
    y: np.ndarray, p: np.ndarray, cfg: EvaluationConfig, min_positives: int = 1
) -> float:
    """The decision threshold for positive scores ``p`` against 0/1 labels ``y``."""
    if cfg.threshold == "fixed":
        return float(cfg.fixed_threshold)
    check_judgeable(y, f"evaluation.threshold={cfg.threshold}", min_positives)
    if cfg.threshold == "recall_at_fpr":
        return recall_at_fpr(y, p, cfg.max_fpr)[1]
    if cfg.threshold == "fpr_bound":
        check_certifiable([y], cfg)
        t = operating_point.bounded_threshold(y, p, cfg.max_fpr, cfg.confidence)
        return NEVER if t is None else t
    precision, recall, thresholds = skm.precision_recall_curve(y, p)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    if cfg.threshold == "f1":
        f1 = np.divide(
            2 * precision * recall,
            precision + recall,
            out=np.zeros_like(precision),
            where=(precision + recall) > 0,
        )
        return float(thresholds[int(np.argmax(f1))])
    ok = precision >= cfg.min_precision
    if not ok.any():  # no threshold is precise enough: call nothing positive (recall 0)
        return NEVER
    best = np.flatnonzero(ok)[np.argmax(recall[ok])]
    return float(thresholds[best])


def _binary_scores(y: np.ndarray, p: np.ndarray, t: float, prefix: str) -> dict[str, float]:
    pred = (p >= t).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        f"{prefix}precision": float(skm.precision_score(y, pred, zero_division=0)),
        f"{prefix}recall": float(skm.recall_score(y, pred, zero_division=0)),
        f"{prefix}majority_recall": float(tn / max(tn + fp, 1)),
        f"{prefix}f1": float(skm.f1_score(y, pred, zero_division=0)),
        f"{prefix}accuracy": float(skm.accuracy_score(y, pred)),
        f"{prefix}tp": float(tp),
        f"{prefix}fp": float(fp),
        f"{prefix}tn": float(tn),
        f"{prefix}fn": float(fn),
    }


def _ranking_scores(y: np.ndarray, p: np.ndarray, prefix: str, average: str = "macro"):
    if len(np.unique(y)) < 2 and y.ndim == 1:
        return {}
    return {
        f"{prefix}roc_auc": float(skm.roc_auc_score(y, p, average=average)),
        f"{prefix}pr_auc": float(skm.average_precision_score(y, p, average=average)),
    }


def _bound_and_counts(ds: Dataset, scores: dict[str, float], cfg: EvaluationConfig):
    """The validation false-positive rate's upper bound at the threshold (at
    ``cfg.confidence``, whatever the rule), each test class's count, the training share."""
    fp, tn = scores["val_at_threshold_fp"], scores["val_at_threshold_tn"]
    y_test = ds.y_test.ravel()
    return {
        "val_at_threshold_fpr_bound": float(
            operating_point.fpr_upper_bound(int(fp), int(fp + tn), cfg.confidence)
        ),
        "test_minority_count": float(np.sum(y_test == 1)),
        "test_majority_count": float(np.sum(y_test == 0)),
        "train_minority_share": float(np.mean(ds.y_train.ravel() == 1)),
    }


def partial_roc_auc(y: np.ndarray, p: np.ndarray, max_fpr: float) -> float:
    """The standardised partial ROC AUC up to ``max_fpr`` (McClish; 0.5 = chance, 1 = every
    minority sample above the majority's top ``max_fpr``): how well the scores rank where the
    operating point lies. Unlike recall at that rate it moves with every minority sample's
    rank, so it tells apart models whose recall at the rate saturates or ties."""
    return float(skm.roc_auc_score(y, p, max_fpr=max_fpr))


def evaluate_binary(
    ds: Dataset, p_val: np.ndarray, p_test: np.ndarray, cfg: EvaluationConfig, min_positives=1
) -> Evaluation:
    """Threshold from validation; test scores at it, at 0.5 and at ``cfg.max_fpr``."""
    y_val, y_test = ds.y_val.ravel(), ds.y_test.ravel()
    p_val, p_test = p_val.ravel(), p_test.ravel()
    t = choose_threshold(y_val, p_val, cfg, min_positives)
    scores = {"threshold": t}
    scores.update(_binary_scores(y_test, p_test, t, "test_"))
    scores.update(_binary_scores(y_test, p_test, 0.5, "test_at_0.5_"))
    scores.update(_ranking_scores(y_test, p_test, "test_"))
    scores.update(_binary_scores(y_val, p_val, t, "val_at_threshold_"))
    scores.update(_ranking_scores(y_val, p_val, "val_final_"))
    scores.update(_bound_and_counts(ds, scores, cfg))
    scores.update(prevalence.scores_at(y_test, p_test, t, scores["train_minority_share"], "test_"))
    for split, y, p in (("test_", y_test, p_test), ("val_final_", y_val, p_val)):
        if len(np.unique(y)) == 2:
            scores[f"{split}recall_at_fpr"] = recall_at_fpr(y, p, cfg.max_fpr)[0]
            scores[f"{split}partial_roc_auc"] = partial_roc_auc(y, p, cfg.max_fpr)
    labels = [0, 1]
    return Evaluation(
        task="binary",
        threshold=t,
        metrics=scores,
        confusion=skm.confusion_matrix(y_test, (p_test >= t).astype(int), labels=labels),
        confusion_at_half=skm.confusion_matrix(y_test, (p_test >= 0.5).astype(int), labels=labels),
        class_names=ds.class_names,
        y_test=y_test,
        p_test=p_test,
    )


def _multiclass(
    y: np.ndarray, p: np.ndarray, names: list[str], prefix: str, split: str
) -> Evaluation:
    pred = p.argmax(axis=1)
    n = len(names)
    recall = skm.recall_score(y, pred, labels=range(n), average=None, zero_division=0)
    scores = {
        f"{prefix}accuracy": float(skm.accuracy_score(y, pred)),
        f"{prefix}macro_f1": float(skm.f1_score(y, pred, average="macro", zero_division=0)),
        f"{prefix}min_recall": float(recall.min()),
        **{f"{prefix}recall_{k}": float(r) for k, r in enumerate(recall)},
    }
    scores.update(_ranking_scores(np.eye(n)[y], p, prefix))
    confusion = skm.confusion_matrix(y, pred, labels=range(n))
    return Evaluation("multiclass", None, scores, confusion, None, names, y, p, split=split)


def evaluate_multiclass(ds: Dataset, p_val: np.ndarray, p_test: np.ndarray) -> Evaluation:
    ev = _multiclass(ds.y_test.astype(int), p_test, ds.class_names, "test_", "test")
    ev.metrics["val_final_accuracy"] = float(skm.accuracy_score(ds.y_val, p_val.argmax(axis=1)))
    return ev


def evaluate_multilabel(
    ds: Dataset, p_val: np.ndarray, p_test: np.ndarray, cfg: EvaluationConfig
) -> Evaluation:
    """One threshold for every output, picked on validation by micro-F1 (or fixed)."""
    if cfg.threshold == "fixed":
        t = cfg.fixed_threshold
    else:
        grid = np.linspace(0.05, 0.95, 19)
        f1 = [skm.f1_score(ds.y_val, p_val >= g, average="micro", zero_division=0) for g in grid]
        t = float(grid[int(np.argmax(f1))])
    pred = (p_test >= t).astype(int)
    y = ds.y_test.astype(int)
    recall = skm.recall_score(y, pred, average=None, zero_division=0)
    scores = {
        "threshold": t,
        "test_macro_f1": float(skm.f1_score(y, pred, average="macro", zero_division=0)),
        "test_micro_f1": float(skm.f1_score(y, pred, average="micro", zero_division=0)),
        "test_precision": float(skm.precision_score(y, pred, average="micro", zero_division=0)),
        "test_recall": float(skm.recall_score(y, pred, average="micro", zero_division=0)),
        **{f"test_recall_{k}": float(r) for k, r in enumerate(recall)},
    }
    scores.update(_ranking_scores(y, p_test, "test_"))
    per_label = skm.multilabel_confusion_matrix(y, pred)
    return Evaluation(
        "multilabel",
        t,
        scores,
        per_label.sum(axis=0),
        None,
        ["0", "1"],
        y,
        p_test,
        extra={"per_label_confusion": per_label},
    )


def evaluate(
    ds: Dataset, p_val: np.ndarray, p_test: np.ndarray, cfg: EvaluationConfig, min_positives=1
) -> Evaluation:
    """Scores for the task of ``ds`` from predicted probabilities on validation and test.

    ``min_positives``: the fewest minority samples a validation threshold may be chosen on.
    """
    if ds.task == "binary":
        return evaluate_binary(ds, p_val, p_test, cfg, min_positives)
    if ds.task == "multiclass":
        return evaluate_multiclass(ds, p_val, p_test)
    return evaluate_multilabel(ds, p_val, p_test, cfg)


def evaluate_validation(
    y: np.ndarray, p: np.ndarray, class_names: list[str], cfg: EvaluationConfig
) -> Evaluation:
    """Validation judged on its own, for a fit without a test split (the Keras callback):
    the threshold chosen on it, and its scores and confusion matrix at that threshold."""
    if p.ndim == 2 and p.shape[1] > 1:  # softmax over classes; labels may be one-hot
        labels = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.ravel()
        n = p.shape[1]
        names = class_names if len(class_names) == n else [str(k) for k in range(n)]
        return _multiclass(labels.astype(int), p, names, "val_final_", "validation")
    y, p = y.ravel(), p.ravel()
    t = choose_threshold(y, p, cfg)
    scores = {"threshold": t, **_binary_scores(y, p, t, "val_at_threshold_")}
    scores.update(_ranking_scores(y, p, "val_final_"))
    scores["val_final_recall_at_fpr"] = recall_at_fpr(y, p, cfg.max_fpr)[0]
    return Evaluation(
        task="binary",
        threshold=t,
        metrics=scores,
        confusion=skm.confusion_matrix(y, (p >= t).astype(int), labels=[0, 1]),
        confusion_at_half=skm.confusion_matrix(y, (p >= 0.5).astype(int), labels=[0, 1]),
        class_names=class_names,
        y_test=y,
        p_test=p,
        split="validation",
    )


def format_confusion(ev: Evaluation) -> str:
    """The confusion matrix as text, rows = true class, columns = predicted class."""
    names = (
        ev.class_names
        if len(ev.class_names) == len(ev.confusion)
        else list(map(str, range(len(ev.confusion))))
    )
    corner = "true \\ pred"
    first = max(len(corner), *(len(n) for n in names)) + 2
    width = max(6, *(len(n) + 2 for n in names), len(str(int(ev.confusion.max()))) + 2)
    head = corner.ljust(first) + "".join(n.rjust(width) for n in names)
    rows = [
        names[i].ljust(first) + "".join(str(int(v)).rjust(width) for v in row)
        for i, row in enumerate(ev.confusion)
    ]
    return "\n".join([head, *rows])


def curve_points(ev: Evaluation, max_points: int = 200) -> dict[str, dict[str, list[float]]]:
    """Test ROC and PR points, thinned to ``max_points``, so runs can be overlaid later.

    Binary: the positive class; multi-class and multi-label: micro-averaged over outputs.
    """
    y, p = ev.y_test, ev.p_test
    if ev.task == "multiclass":
        y = np.eye(p.shape[1])[y.astype(int)]
    y, p = np.asarray(y).ravel(), np.asarray(p).ravel()
    fpr, tpr, _ = skm.roc_curve(y, p)
    precision, recall, _ = skm.precision_recall_curve(y, p)

    def thin(*arrays: np.ndarray) -> list[list[float]]:
        keep = np.unique(np.linspace(0, len(arrays[0]) - 1, max_points).round().astype(int))
        return [np.round(a[keep], 5).tolist() for a in arrays]

    fpr, tpr = thin(fpr, tpr)
    recall, precision = thin(recall, precision)
    return {
        "roc": {"fpr": fpr, "tpr": tpr},
        "pr": {"recall": recall, "precision": precision},
    }
