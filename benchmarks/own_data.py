"""Figure 9: loading one's own data against the bare Keras and pandas way of reading it.

An image folder of 10,000 PNGs (28x28 grayscale, scikit-learn's digits scaled up, 9s against
a tenth as many 3s) read by ``data=image_folder`` (listed, decoded in parallel, every file
checked, split) against ``keras.utils.image_dataset_from_directory`` drained into one array; a
table of 25,000 reviews read by ``data=text_table`` (read, split, TextVectorization adapted on
training, multi-hot rows) against ``pandas.read_csv`` plus one ``TextVectorization`` adapted
and applied to every row. Both sides are timed in the same repetition; the figure is the
median ratio. Goal: at most 1.5 x the bare way.

    python benchmarks/own_data.py [--repeats 3]
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import command, machine, median, parser, publish, use_device  # noqa: E402

N_IMAGES = 10_000
N_REVIEWS = 25_000
NUM_WORDS = 10_000


def write_images(folder: Path) -> None:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    n = {9: N_IMAGES * 10 // 11, 3: N_IMAGES // 11}
    for digit, count in n.items():
        (folder / str(digit)).mkdir(parents=True)
        pool = digits.images[digits.target == digit]
        for i in range(count):
            pixels = np.kron(pool[i % len(pool)] * 16, np.ones((4, 4)))[2:30, 2:30]
            image = Image.fromarray(pixels.clip(0, 255).astype("uint8"))
            image.save(folder / str(digit) / f"{i}.png")


def write_reviews(path: Path) -> None:
    import pandas as pd

    rng = random.Random(0)
    vocabulary = [f"w{i}" for i in range(30_000)]
    rows = [
        (" ".join(rng.choices(vocabulary, k=rng.randint(50, 300))), int(i % 10 == 0))
        for i in range(N_REVIEWS)
    ]
    pd.DataFrame(rows, columns=["review", "label"]).to_csv(path, index=False)


def keras_images(folder: Path) -> float:
    import keras
    import numpy as np

    start = time.perf_counter()
    stream = keras.utils.image_dataset_from_directory(
        folder, image_size=(28, 28), color_mode="grayscale", batch_size=256, verbose=False
    )
    np.concatenate([x.numpy() for x, _ in stream]) / 255.0
    return time.perf_counter() - start


def pandas_keras_text(path: Path) -> float:
    import keras
    import numpy as np
    import pandas as pd

    start = time.perf_counter()
    texts = pd.read_csv(path)["review"].to_numpy(object)
    layer = keras.layers.TextVectorization(
        max_tokens=NUM_WORDS, output_mode="multi_hot", pad_to_max_tokens=True
    )
    layer.adapt(texts, batch_size=4096)
    np.concatenate([np.asarray(layer(texts[i : i + 4096])) for i in range(0, len(texts), 4096)])
    return time.perf_counter() - start


def losslab_load(source: str, **settings) -> float:
    from losslab.config.data import SCHEMAS, DataSource
    from losslab.data import load

    cfg = SCHEMAS[DataSource(source)](source=DataSource(source), **settings)
    start = time.perf_counter()
    load(cfg, seed=0)
    return time.perf_counter() - start


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    use_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        folder, table = Path(tmp) / "images", Path(tmp) / "reviews.csv"
        write_images(folder)
        write_reviews(table)
        image = {"path": str(folder), "color_mode": "grayscale", "image_size": [28, 28]}
        text = {"path": str(table), "text": "review", "label": "label", "num_words": NUM_WORDS}
        times: dict[str, list[tuple[float, float]]] = {"images": [], "text": []}
        for _ in range(args.repeats):
            times["images"].append((keras_images(folder), losslab_load("image_folder", **image)))
            times["text"].append((pandas_keras_text(table), losslab_load("text_table", **text)))
    rows = {
        "images": f"image folder, {N_IMAGES:,} PNGs 28x28 (`image_dataset_from_directory` drained)",
        "text": f"text table, {N_REVIEWS:,} reviews (`read_csv` + `TextVectorization` on all)",
    }
    lines = [
        "## 9. Your own data: loading against the bare Keras and pandas way",
        "",
        f"Machine: {machine(args.device)}. Command: `{command()}`. Median of {args.repeats} "
        "repetitions, both sides in each. Goal: at most 1.5 x the bare way.",
        "",
        "| data | bare way (s) | losslab (s) | ratio |",
        "|---|---|---|---|",
    ]
    for key, pairs in times.items():
        bare, own = median([b for b, _ in pairs]), median([o for _, o in pairs])
        ratio = median([o / b for b, o in pairs])
        lines.append(f"| {rows[key]} | {bare:.2f} | {own:.2f} | {ratio:.2f} |")
    publish("own-data", lines, args)


if __name__ == "__main__":
    main()
