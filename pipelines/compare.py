"""Compare the runs of a study: a table, overlaid curves and an HTML page.

    python pipelines/compare.py --experiment mnist_9v4        # its newest multirun
    python pipelines/compare.py --parent-run RUN_ID           # one multirun or sweep
        [--out outputs/compare/NAME] [--tracking-uri URI] [--no-log]

The same as ``losslab compare`` (:mod:`losslab.compare_cli`), for ``mlflow run . -e compare``
and a checkout without the command installed.
"""

from __future__ import annotations

import sys

from losslab.compare_cli import main

if __name__ == "__main__":
    sys.exit(main())
