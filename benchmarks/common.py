"""What every benchmark shares: device choice, machine description, and BENCHMARKS.md output.

Figures are ratios against a baseline measured in the same process and repetition, so a
shared, noisy machine shifts both sides alike. Each figure is the median of the repetitions.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
RESULTS_MD = Path(__file__).resolve().parents[1] / "RESULTS.md"
RELIABILITY_MD = Path(__file__).resolve().parents[1] / "RELIABILITY.md"


def parser(description: str, repeats: int = 3) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--device",
        choices=["cpu", "gpu"],
        default="cpu",
        help="cpu hides every GPU; gpu uses the first one",
    )
    p.add_argument("--repeats", type=int, default=repeats, help="repetitions (median reported)")
    p.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    return p


def use_device(device: str) -> None:
    """Call before TensorFlow is imported."""
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def machine(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    where = (
        f"GPU {tf.config.experimental.get_device_details(gpus[0]).get('device_name', 'GPU')}"
        if device == "gpu" and gpus
        else "CPU only"
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {where}, Python {platform.python_version()}, "
        f"TensorFlow {tf.__version__}"
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def command() -> str:
    return "python " + " ".join([str(Path(sys.argv[0]).as_posix()), *sys.argv[1:]])


def publish(name: str, lines: list[str], args: argparse.Namespace) -> None:
    """Print a figure's section and, unless ``--no-write``, put it in BENCHMARKS.md."""
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(name, body)


def write_section(name: str, body: str, path: Path = BENCHMARKS_MD, title: str = "Benchmarks"):
    """Replace (or append) the section ``name`` of ``path`` (BENCHMARKS.md)."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else f"# {title}\n"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else f"{text.rstrip()}\n\n{block}\n"
    )
    path.write_text(text)
