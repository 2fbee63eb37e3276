"""How the command line answers bad input: one line on stderr, exit code 2, no traceback.

Hydra prints every error inside its own report (a stack trace, or an exception's several
lines and a hint) and exits 1, whatever the error; a typo in an override reads like a crash.
:func:`run_app` lets Hydra raise instead, turns the errors a user can fix (a bad override, a
config value, data that cannot be trained or judged) into ``error: <key>=<value>: <what is
allowed>``, and leaves everything else, a bug included, to Python's usual report.
``HYDRA_FULL_ERROR=1`` keeps the full traceback, as Hydra documents.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

from losslab.process import Terminated, terminations_as_interrupts

USAGE_EXIT = 2
FULL_ERROR = "HYDRA_FULL_ERROR"
# lines of OmegaConf's messages that describe its own types, not the user's value
NOISE = ("reference_type=", "object_type=", "Config search path", "provider=")
_FORCED = "LOSSLAB_FORCED_FULL_ERROR"  # set while run_app, not the user, asks Hydra to raise


def _user_errors() -> tuple[type[BaseException], ...]:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from losslab.config import ConfigError
    from losslab.data.dataset import DataError
    from losslab.evaluate import EvaluationError

    return (ConfigError, DataError, EvaluationError, HydraException, OmegaConfBaseException)


def one_line(err: BaseException) -> str:
    """``err`` and its cause as one line: the override or key first, then what is allowed."""
    lines = [line.strip() for line in str(err).splitlines()]
    cause = err.__cause__
    if cause is not None and str(cause) not in str(err):
        lines += [line.strip() for line in str(cause).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(NOISE) and "full_key:" not in ln]
    prefix = "Error merging override "
    override = next((ln[len(prefix) :] for ln in lines if ln.startswith(prefix)), None)
    if override is not None:  # "key=value: Invalid value 'x', expected one of [...]"
        lines = [f"{override}:"] + [ln for ln in lines if not ln.startswith(prefix)]
    return " ".join(ln if ln.endswith((":", ".", ";")) else f"{ln};" for ln in lines).rstrip(";")


def _full_error_asked() -> bool:
    return os.environ.get(FULL_ERROR) == "1" and not os.environ.get(_FORCED)


def _exit(err: BaseException) -> None:
    print(f"error: {one_line(err)}", file=sys.stderr)
    sys.exit(USAGE_EXIT)


@contextlib.contextmanager
def single_run_errors(single_run: bool) -> Iterator[None]:
    """Inside a single run's job, end a user's error at once with one line and exit code 2:
    passed on, Hydra's job report would print the job's overrides above it. Jobs of a
    multirun raise as usual, so the sweep records the failed job and goes on."""
    try:
        yield
    except Exception as err:
        if not single_run or _full_error_asked():
            raise
        if _disk_full(err):
            sys.exit(1)
        if not isinstance(err, _user_errors()):
            raise
        _exit(err)


@contextlib.contextmanager
def _masked_output() -> Iterator[None]:
    from losslab.tracking.redact import RedactingStream

    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(sys.stdout), RedactingStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def _explained(err: BaseException) -> BaseException:
    """A config Hydra cannot find because an optional extra is not installed, told with the
    pip line that installs it (:mod:`losslab.extras`); a data loader given without its option."""
    from losslab.config.data import loader_without_option
    from losslab.extras import missing_launcher_config

    args = sys.argv[1:]
    return missing_launcher_config(err, args) or loader_without_option(err, args) or err


def _end_open_parents(err: BaseException) -> None:
    """Sweep parents can only be open once the Hydra callback that opens them was loaded."""
    callback = sys.modules.get("losslab.parent_run")
    if callback is not None:
        callback.end_open_parents(err)


def _disk_full(err: BaseException) -> bool:
    """A full disk, told in one line with the path and the room left (the run it broke off
    is ended FAILED with what was recorded)."""
    from losslab.tracking import disk

    if not disk.is_full(err):
        return False
    told = err if isinstance(err, disk.DiskFull) else None
    path = getattr(err, "filename", None) or os.getcwd()
    print(f"error: {told or disk.describe(path)}", file=sys.stderr)
    return True


def run_app(main: Callable[[], object]) -> None:
    """Run a ``@hydra.main`` function; a user's error ends it with one line and exit code 2.

    Whatever ends it early (Ctrl-C, an error) also ends the sweep parent runs it left open;
    secrets are masked in everything printed meanwhile. ``--help`` and ``--cfg`` end with
    ``SystemExit`` and load neither MLflow nor scikit-learn on the way out."""
    asked = _full_error_asked()
    if not asked:
        os.environ[FULL_ERROR] = os.environ[_FORCED] = "1"  # Hydra raises, we report
    try:
        with _masked_output(), terminations_as_interrupts():
            main()
    except BaseException as err:
        _end_open_parents(err)
        if isinstance(err, Terminated):  # the shell's convention: 128 + the signal's number
            print(f"Terminated by {err}: runs ended KILLED", file=sys.stderr)
            sys.exit(128 + err.signum)
        if not asked and not isinstance(err, SystemExit) and _disk_full(err):
            sys.exit(1)
        if not asked and getattr(err, "exit_code", None) == 1:  # a sweep that gave up
            print(f"error: {one_line(err)}", file=sys.stderr)
            sys.exit(err.exit_code)
        if asked or isinstance(err, SystemExit) or not isinstance(err, _user_errors()):
            raise
        _exit(_explained(err))
    finally:
        if not asked:
            os.environ.pop(FULL_ERROR, None)
            os.environ.pop(_FORCED, None)
