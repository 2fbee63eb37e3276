"""Figure 5: what oversampling through tf.data costs per step against class weights.

The real credit-card data at full size (../shared/data/creditcard/creditcard.csv.gz, 284,807 x
30), ``model=mlp_fraud``, batch 2048. Each variant trains 2 epochs through ``losslab.train``;
the step time is taken from the second epoch's batches (the first one traces the graph).
Loading and preparing the file (read, drop Time, log Amount, standardise, clip, split) is
timed on its own. Goals: oversampling at most 1.10 x the class-weight step time; loading under
5 s.

    python benchmarks/oversampling.py [--device cpu|gpu] [--repeats 3]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import command, machine, median, parser, publish, use_device  # noqa: E402

CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "creditcard" / "creditcard.csv.gz"
COMMON = [
    "data=creditcard",
    f"data.path={CSV}",
    "model=mlp_fraud",
    "trainer.batch_size=2048",
    "trainer.epochs=2",
    "trainer.verbose=0",
    "tracking=none",
]
VARIANTS = {
    "class weights (balanced)": "imbalance=balanced",
    "oversampling (tf.data, 50% positives)": "imbalance=oversample",
}


def step_timer():
    import keras

    class StepTimer(keras.callbacks.Callback):
        """Seconds per step over the last epoch, from batch end to batch end."""

        def on_epoch_begin(self, epoch, logs=None):
            self.ends: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())

        def seconds_per_step(self) -> float:
            return (self.ends[-1] - self.ends[0]) / (len(self.ends) - 1)

    return StepTimer()


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    use_device(args.device)
    from losslab import data
    from losslab.composition import compose
    from losslab.config import to_objects
    from losslab.train import train

    root = Path(tempfile.mkdtemp(prefix="bench-oversampling-"))
    load_times: list[float] = []
    step: dict[str, list[float]] = {name: [] for name in VARIANTS}
    n_rows = 0
    for rep in range(args.repeats):
        conf = to_objects(compose(COMMON, root))
        t0 = time.perf_counter()
        ds = data.load(conf.data, conf.seed, root)
        load_times.append(time.perf_counter() - t0)
        n_rows = len(ds.x_train) + len(ds.x_val) + len(ds.x_test)
        names = list(VARIANTS) if rep % 2 == 0 else list(reversed(VARIANTS))
        for name in names:
            timer = step_timer()
            train(compose([*COMMON, VARIANTS[name]], root), extra_callbacks=[timer])
            step[name].append(timer.seconds_per_step())
        print(rep, {k: round(v[-1] * 1000, 2) for k, v in step.items()}, flush=True)
    base = median(step["class weights (balanced)"])
    lines = [
        "## 5. Oversampling vs class weights (real credit-card data, full size)",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. {n_rows:,} rows x "
        f"{ds.x_train.shape[1]} features, `model=mlp_fraud`, batch 2048, second-epoch step "
        f"time; median of {args.repeats} repetitions (order alternated). Goals: oversampling "
        "at most 1.10 x class weights per step; loading and preparing the file under 5 s.",
        "",
        "| variant | ms per step | ratio |",
        "|---|---|---|",
    ]
    for name, values in step.items():
        lines.append(f"| {name} | {median(values) * 1000:.2f} | {median(values) / base:.3f} |")
    lines += [
        "",
        f"Loading and preparing `creditcard.csv.gz`: {median(load_times):.2f} s "
        f"(median of {args.repeats}).",
    ]
    publish("oversampling", lines, args)


if __name__ == "__main__":
    main()
