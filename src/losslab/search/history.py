"""The optimization history of a study, pruned and failed trials included.

Optuna's ``plot_optimization_history`` draws complete trials only, so a sweep that pruned most
of its trials looks as if it ran a few; here every trial is a point: complete ones at their
objective, pruned ones at the last value they reported (hollow, labelled pruned), failed ones
as ticks along the bottom, with the best complete value so far as a step line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pruned_value(trial: FrozenTrial) -> float | None:
    """The last intermediate value a pruned trial reported (its best so far), if any."""
    steps = trial.intermediate_values
    return steps[max(steps)] if steps else None


def best_so_far(trials: list[FrozenTrial], maximize: bool) -> tuple[list[int], list[float]]:
    """Trial numbers and the best complete first objective up to each of them."""
    numbers, values, best = [], [], None
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.values:
            value = trial.values[0]
            better = best is None or (value > best if maximize else value < best)
            best = value if better else best
        if best is not None:
            numbers.append(trial.number)
            values.append(best)
    return numbers, values


def _points(trials: list[FrozenTrial], state: TrialState) -> tuple[list[int], list[float]]:
    chosen = [t for t in trials if t.state == state]
    if state == TrialState.PRUNED:
        pairs = [(t.number, pruned_value(t)) for t in chosen]
    else:
        pairs = [(t.number, t.values[0]) for t in chosen if t.values]
    kept = [(n, v) for n, v in pairs if v is not None]
    return [n for n, _ in kept], [v for _, v in kept]


def draw_history(study: optuna.Study, objective: str = "objective") -> Figure | None:
    """The history of every finished trial; None when none finished."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = [t for t in study.trials if t.state.is_finished()]
    if not trials:
        return None
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    done = _points(trials, TrialState.COMPLETE)
    pruned = _points(trials, TrialState.PRUNED)
    if done[0]:
        ax.scatter(*done, color="tab:blue", zorder=3, label=f"complete ({len(done[0])})")
    if pruned[0]:
        label = f"pruned ({len(pruned[0])}, last reported value)"
        ax.scatter(*pruned, facecolors="none", edgecolors="tab:orange", zorder=3, label=label)
    if done[0]:
        ax.step(*best_so_far(trials, maximize), where="post", color="tab:red", label="best so far")
    failed = [t.number for t in trials if t.state == TrialState.FAIL]
    if failed:
        ax.plot(
            failed,
            [0.0] * len(failed),
            "|",
            color="black",
            markersize=14,
            transform=ax.get_xaxis_transform(),
            label=f"failed ({len(failed)})",
        )
    ax.set(xlabel="trial", ylabel=objective, title=f"Optimization history: {study.study_name}")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def plot_history(study: optuna.Study, path: Path, objective: str = "objective") -> Path | None:
    """Save :func:`draw_history` to ``path``; None when no trial finished."""
    import matplotlib.pyplot as plt

    fig = draw_history(study, objective)
    if fig is None:
        return None
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
