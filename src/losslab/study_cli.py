"""``losslab study``: which remedy rescues the minority class, on your data, with intervals.

    losslab study data=table data.path=churn.csv data.label=churned [remedies=none,focal]
        [repeats=5] [other overrides]

Every remedy (:data:`REMEDIES`, each a ``conf/variant/`` option; augmentation only for
images) runs ``repeats`` times on seeds seed .. seed+repeats-1 under one MLflow parent run,
then ``losslab compare`` groups the repeats: each remedy's figures with their interval, each
pair compared on the same seeds, the findings in sentences, the forest plot. The threshold
chosen on validation is judged as a remedy of its own, against 0.5, on the runs without one.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# remedy -> its conf/variant option; "none" first: the others are read against it
REMEDIES = (
    "none",
    "class_weight",
    "balanced",
    "weighted_bce",
    "focal",
    "oversample",
    "oversample_augment",
    "initial_bias",
)
IMAGES_ONLY = ("oversample_augment",)
DEFAULT_REPEATS = 5


class StudyError(ValueError):
    """A study the command line cannot run: one line, exit 2."""


def remedies_for(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """The remedies asked (``remedies=a,b``; all that apply by default) and the rest."""
    from losslab.composition import compose
    from losslab.config import IMAGE_SOURCES
    from losslab.repeats import key_of

    asked = [a.split("=", 1)[1] for a in args if key_of(a) == "remedies"]
    rest = [a for a in args if key_of(a) != "remedies"]
    images = (
        compose(
            [a for a in rest if "=" in a and "repeats=" not in a and not a.startswith("hydra")]
        ).data.source
        in IMAGE_SOURCES
    )
    names = (
        asked[-1].split(",") if asked else [r for r in REMEDIES if images or r not in IMAGES_ONLY]
    )
    unknown = [n for n in names if n not in REMEDIES]
    if unknown or not names:
        raise StudyError(f"remedies={','.join(names)}: use some of {','.join(REMEDIES)}")
    if not images and (mixed := [n for n in names if n in IMAGES_ONLY]):
        raise StudyError(f"remedies={','.join(mixed)}: augmentation needs image data")
    return names, rest


def main(args: Sequence[str]) -> int:
    """Run the study, then compare it; 2 for a command line it cannot run."""
    from losslab.repeats import HYDRA_MODES, key_of

    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return 0
    try:
        names, rest = remedies_for(args)
    except StudyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not any(key_of(a) == "repeats" for a in rest):
        rest.append(f"repeats={DEFAULT_REPEATS}")
    rest = [a for a in rest if a.split("=")[0] not in HYDRA_MODES]
    print(f"losslab study: +variant={','.join(names)} {' '.join(rest)}")
    from losslab import parent_run
    from losslab.app import run

    before = len(parent_run.ENDED)
    run(["-m", f"+variant={','.join(names)}", *rest])
    if len(parent_run.ENDED) == before:
        print("losslab study: no parent run was recorded (tracking off?): nothing to compare")
        return 1
    return _compare(*parent_run.ENDED[-1])


def _compare(uri: str, parent_id: str) -> int:
    import os
    from pathlib import Path

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar a file
    from losslab.compare import compare
    from losslab.compare_report import terminal

    out = Path("outputs") / "study" / parent_id
    result = compare(uri, out, parent_run_id=parent_id)
    print("\n" + terminal(result))
    print(f"\nwritten to {out.resolve()} (comparison.html); logged to run {parent_id}")
    return 0
