"""A one-node Slurm cluster on this machine, started and stopped by a test: munged,
slurmctld and slurmd from Debian's packages, every file of the cluster in one folder.

The node declares two GPUs. Slurm schedules a GPU request against them and sets
``CUDA_VISIBLE_DEVICES`` as on a GPU node; Slurm's gres/gpu plugin drops a GPU without a
device file, so each is a character device node in the folder with /dev/null's numbers,
which nothing opens (``task/none`` constrains no device). No accounting database runs, so
``sacct`` here is a script in the folder's ``bin`` that answers submitit's one question (a
job's state) from ``scontrol``, which keeps finished jobs for ``MinJobAge`` (300 s).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PORTS = range(6810, 6830)
GPUS = 2
PARTITION = "gpu"
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN = Path("/run/munge")
DAEMONS = ("slurmctld", "slurmd", "munged")

AVAILABLE = all(shutil.which(d) for d in DAEMONS)
MISSING = "Slurm is missing: apt-get install slurm-wlm munge"
needs_slurm = pytest.mark.skipif(not AVAILABLE, reason=MISSING)

SACCT = '''#!{python}
"""sacct -o JobID,State,NodeList --parsable2 -j ID...: the states slurmctld still holds."""
import subprocess, sys

ids = [sys.argv[i + 1] for i, arg in enumerate(sys.argv) if arg == "-j"]
print("JobID|State|NodeList")
for job in ids:
    shown = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True)
    for line in shown.stdout.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        task = f.get("ArrayTaskId")
        name = f["JobId"] if task is None else f"{{f['ArrayJobId']}}_{{task}}"
        if task is not None and not task.isdigit():
            name = f"{{f['ArrayJobId']}}_[{{task.split('%')[0]}}]"
        print(f"{{name}}|{{f['JobState']}}|{{f.get('NodeList', '')}}")
'''


@dataclass(frozen=True)
class Cluster:
    """A running cluster: its config file and what a process needs to submit to it."""

    folder: Path
    conf: Path
    host: str

    @property
    def env(self) -> dict[str, str]:
        """``SLURM_CONF``, and the folder's ``bin`` (``sacct``) first on ``PATH``."""
        path = f"{self.folder / 'bin'}:{os.environ.get('PATH', '')}"
        return {"SLURM_CONF": str(self.conf), "PATH": path}

    def command(self, *args: str, check: bool = True) -> str:
        """A Slurm client command against this cluster; its stdout."""
        proc = subprocess.run(
            args, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=60
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job``'s fields for one job (an array task as ``123_4``)."""
        line = self.command("scontrol", "-o", "show", "job", job_id).splitlines()[0]
        return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)

    def queued(self) -> list[str]:
        """Jobs pending or running (array tasks as ``123_4``)."""
        return self.command("squeue", "-h", "-r", "-o", "%i").split()

    def wait_idle(self, timeout: float = 60) -> None:
        """Until no job is pending or running: a job whose result submitit has collected may
        still be ending its process."""
        deadline = time.time() + timeout
        while self.queued():
            if time.time() > deadline:
                raise AssertionError(f"jobs still queued after {timeout} s: {self.queued()}")
            time.sleep(0.2)

    def node_state(self) -> str:
        return self.command("sinfo", "-h", "-N", "-n", self.host, "-o", "%T").strip()


def free_ports(n: int = 2) -> list[int]:
    """``n`` ports of :data:`PORTS` that nothing listens on."""
    found = []
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
        found.append(port)
        if len(found) == n:
            return found
    raise RuntimeError(f"fewer than {n} free ports in {PORTS.start}-{PORTS.stop - 1}")


def memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


def slurm_conf(folder: Path, host: str, ports: list[int], cpus: int | None = None) -> str:
    """The cluster's slurm.conf: one node with this machine's memory and GPUs, and its CPUs
    or ``cpus`` job slots (more than it has: slurmd then takes the declared count)."""
    cpus = cpus or os.cpu_count()
    overrides = "SlurmdParameters=config_overrides\n" if cpus > os.cpu_count() else ""
    return f"""\
ClusterName=losslab
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MpiDefault=none
# a cancelled job gets SIGKILL 5 s after SIGTERM (submitit's jobs ignore SIGTERM)
KillWait=5
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd.log
# a job that asks for no memory gets its CPUs' share (not the whole node)
DefMemPerCPU={memory_mb() // cpus}
{overrides}NodeName={host} CPUs={cpus} RealMemory={memory_mb()} Gres=gpu:{GPUS} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def configure(folder: Path, cpus: int | None = None) -> Cluster:
    """Write slurm.conf, gres.conf, the GPU device nodes and ``bin/sacct`` into ``folder``."""
    host = socket.gethostname().split(".")[0]
    for sub in ("state", "spool", "log", "bin"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, host, free_ports(), cpus))
    for i in range(GPUS):
        os.mknod(folder / f"gpu{i}", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    files = f"{folder}/gpu[0-{GPUS - 1}]"
    (folder / "gres.conf").write_text(f"NodeName={host} Name=gpu Count={GPUS} File={files}\n")
    sacct = folder / "bin" / "sacct"
    sacct.write_text(SACCT.format(python=sys.executable))
    sacct.chmod(0o755)
    return Cluster(folder, conf, host)


def _munge_answers() -> bool:
    return subprocess.run(["munge", "-n"], capture_output=True).returncode == 0


def _munge_key() -> None:
    """The key munged signs with, made once as the package would."""
    if MUNGE_KEY.exists():
        return
    make = ["mungekey", "--create"] if shutil.which("mungekey") else ["create-munge-key"]
    subprocess.run(make, check=True, capture_output=True)
    shutil.chown(MUNGE_KEY, "munge", "munge")
    MUNGE_KEY.chmod(0o600)


@contextlib.contextmanager
def munged(log: Path, timeout: float = 30) -> Iterator[None]:
    """munged as the munge user, unless one already answers; stopped if started here."""
    if _munge_answers():
        yield
        return
    _munge_key()
    MUNGE_RUN.mkdir(parents=True, exist_ok=True)
    shutil.chown(MUNGE_RUN, "munge", "munge")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["munged", "--foreground"], user="munge", group="munge", extra_groups=[], stderr=out
        )
    try:
        deadline = time.time() + timeout
        while not _munge_answers():
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"munged did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _daemon(name: str, cluster: Cluster) -> subprocess.Popen:
    """``slurmctld`` or ``slurmd`` in the foreground (this process stops it)."""
    out = open(cluster.folder / "log" / f"{name}.out", "w")  # noqa: SIM115 - the daemon's
    with out:
        return subprocess.Popen(
            [name, "-D", "-f", str(cluster.conf)],
            env={**os.environ, **cluster.env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _node_idle(cluster: Cluster) -> bool:
    """Whether the node is idle (False while slurmctld does not answer yet); an error for a
    node Slurm refused, with its reason."""
    try:
        state = cluster.node_state()
    except RuntimeError:
        return False
    if state.startswith(("drain", "inval", "down")):
        raise RuntimeError(f"node {cluster.host} is {state}:\n{cluster.command('sinfo', '-R')}")
    return state == "idle"


def _wait_idle(cluster: Cluster, daemons: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.time() + timeout
    while not _node_idle(cluster):
        for proc in daemons:
            if proc.poll() is not None:
                log = (cluster.folder / "log" / f"{proc.args[0]}.log").read_text()
                raise RuntimeError(f"{proc.args[0]} exited:\n{log[-3000:]}")
        if time.time() > deadline:
            raise RuntimeError(f"node {cluster.host} not idle after {timeout:.0f}s")
        time.sleep(0.2)


def _cancel_all(cluster: Cluster, timeout: float = 60) -> None:
    """Cancel every job and wait until the queue is empty (the jobs' processes ended)."""
    cluster.command("scancel", "--partition", PARTITION, check=False)
    deadline = time.time() + timeout
    while cluster.queued() and time.time() < deadline:
        time.sleep(0.5)


@contextlib.contextmanager
def cluster(folder: Path, timeout: float = 60, cpus: int | None = None) -> Iterator[Cluster]:
    """A cluster in ``folder`` (its node with ``cpus`` job slots, default this machine's
    CPUs), ready once its node is idle; every job cancelled and every daemon stopped
    afterwards (munged only when started here)."""
    folder.mkdir(parents=True, exist_ok=True)
    with munged(folder / "munged.err"):
        ready = configure(folder, cpus)
        daemons: list[subprocess.Popen] = []
        try:
            daemons = [_daemon("slurmctld", ready), _daemon("slurmd", ready)]
            _wait_idle(ready, daemons, timeout)
            yield ready
        finally:
            if daemons and daemons[0].poll() is None:
                _cancel_all(ready)
            for proc in reversed(daemons):
                _stop(proc)


def running(pattern: str) -> list[str]:
    """``pgrep -a -f pattern``: processes matching it, zombies left out."""
    found = subprocess.run(
        ["pgrep", "-a", "-r", "D,R,S,T,t,I", "-f", pattern], capture_output=True, text=True
    )
    return found.stdout.splitlines()
