"""Runs left RUNNING by processes that died without closing them (SIGKILL, OOM, power loss).

Every run records the process that owns it (``losslab.process`` = host:pid:start-time) and a
``losslab.heartbeat`` tag its metric writer refreshes. When a run or sweep starts, runs of the
same experiment still RUNNING are checked: on this host, a process that no longer exists (or
whose pid was reused) owned a dead run; on another host, a heartbeat older than
``stale_after_s`` marks it dead. Dead runs are ended KILLED with the reason as a tag.

A run whose process spilled it (the store was away; ``losslab.spill_dir`` holds a spill file
on this host) is not dead but waiting for ``losslab-replay``, and is left alone. A spilled run
of another host cannot be seen as such: it is ended, tagged ``losslab.ended_as_dead``, and its
replay restores the true status and removes the verdict.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from losslab.tracking import tag_keys

log = logging.getLogger(__name__)

MAX_RUNS_CHECKED = 1000


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), to tell reused pids apart."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            # the command name may hold spaces: fields are counted after its closing paren
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def process_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def is_alive(token: str) -> bool | None:
    """Whether the process named by ``token`` still runs; None when it ran on another host."""
    try:
        host, pid_text, ticks = token.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    return ticks == "?" or _start_ticks(pid) == ticks


def _spilled(run) -> bool:
    """Whether the run's own spill folder on this host holds records not yet replayed (an
    empty or cut-off spill holds none: its run is ended as any dead run is)."""
    from losslab.tracking.spill import has_records

    folder = run.data.tags.get(tag_keys.SPILL_DIR)
    return folder is not None and has_records(folder)


def end_dead_runs(client, experiment_id: str, stale_after_s: float) -> list[str]:
    """Mark KILLED every RUNNING run of the experiment whose process is gone; their ids."""
    runs = client.search_runs(
        [experiment_id],
        filter_string="attributes.status = 'RUNNING'",
        max_results=MAX_RUNS_CHECKED,
    )
    now = time.time()
    ended = []
    for run in runs:
        token = run.data.tags.get(tag_keys.PROCESS)
        if token is None:  # not a losslab run: not ours to judge
            continue
        alive = is_alive(token)
        reason = f"process {token} ended without closing the run"
        if alive is None:
            beat = run.data.tags.get(tag_keys.HEARTBEAT)
            if beat is None or now - float(beat) <= stale_after_s:
                continue
            reason = f"no heartbeat from {token} for {now - float(beat):.0f}s"
        elif alive or _spilled(run):
            continue
        if tag_keys.ERROR not in run.data.tags:
            client.set_tag(run.info.run_id, tag_keys.ERROR, reason)
        client.set_tag(run.info.run_id, tag_keys.ENDED_AS_DEAD, reason)
        client.set_terminated(run.info.run_id, "KILLED")
        ended.append(run.info.run_id)
        log.warning("MLflow run %s marked KILLED: %s", run.info.run_id, reason)
    return ended
