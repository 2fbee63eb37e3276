"""``python -m losslab COMMAND ...``: the ``losslab`` command (:mod:`losslab.command`)."""

import sys

from losslab.command import entry

sys.exit(entry())
