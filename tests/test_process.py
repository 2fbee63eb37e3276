"""A command's process ends without Python's last garbage collections, and nothing else
changes: its exit code, returned or raised, and the atexit work that flushes logs."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import atexit, gc, sys
from losslab.process import then_exit

def at_exit():
    with open(sys.argv[1], "w") as out:
        out.write(f"frozen={gc.get_freeze_count() > 0}")

atexit.register(at_exit)
cycle = []
cycle.append(cycle)
code = int(sys.argv[3])

def work():
    if sys.argv[2] == "raise":
        raise SystemExit(code)
    return code

sys.exit(then_exit(work))
"""


@pytest.mark.parametrize("how", ["return", "raise"])
@pytest.mark.parametrize("code", [0, 2])
def test_the_exit_code_and_atexit_work_survive_the_frozen_exit(tmp_path, how, code):
    marker = tmp_path / "atexit.txt"
    args = [sys.executable, "-c", SCRIPT, str(marker), how, str(code)]
    assert subprocess.run(args, check=False).returncode == code
    assert marker.read_text() == "frozen=True"  # it ran, after the freeze
