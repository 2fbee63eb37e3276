"""``python -m losslab COMMAND ...``: the ``losslab`` command (:mod:`losslab.command`)."""

import sys

from losslab.command import main
from losslab.process import then_exit

sys.exit(then_exit(main))
