"""Data of one's own for the tests: files written as a user would write them (class folders of
PNGs, a review table, an .npz) and loaders for ``data=custom``."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.datasets import load_digits

POSITIVE_WORDS = ["great", "superb", "moving", "wonderful", "loved", "brilliant"]
NEGATIVE_WORDS = ["dull", "awful", "boring", "waste", "clumsy", "tedious"]
FILLER = ["the", "film", "plot", "actors", "story", "music", "scenes", "ending", "was", "and", "a"]


def digit_images(digit: int, n: int | None = None) -> np.ndarray:
    """scikit-learn's 8x8 images of ``digit`` as uint8 pixels (0..255)."""
    digits = load_digits()
    images = digits.images[digits.target == digit][:n]
    return (images * 16).clip(0, 255).astype(np.uint8)


def digits_folder(root: Path, counts: dict[int, int], mode: str = "L") -> Path:
    """One sub-folder of PNGs per digit (named by the digit's word), ``counts[d]`` images of d."""
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    folder = root / "digits"
    for digit, n in counts.items():
        (folder / names[digit]).mkdir(parents=True, exist_ok=True)
        for i, pixels in enumerate(digit_images(digit, n)):
            Image.fromarray(pixels).convert(mode).save(folder / names[digit] / f"{i}.png")
    return folder


def review_table(path: Path, n: int = 600, negative_every: int = 10) -> Path:
    """A review table (``review``, ``sentiment``): one review in ``negative_every`` negative,
    each told apart by two words of its sentiment among filler and a word of either."""
    rng = random.Random(0)
    rows = []
    for i in range(n):
        label = "negative" if i % negative_every == 0 else "positive"
        own = NEGATIVE_WORDS if label == "negative" else POSITIVE_WORDS
        words = rng.choices(FILLER, k=12) + rng.choices(own, k=2)
        words += rng.choices(POSITIVE_WORDS + NEGATIVE_WORDS, k=1)
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    frame = pd.DataFrame(rows, columns=["review", "sentiment"])
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def nines_and_threes(n_threes: int = 60):
    """A loader: (x, y), the 8x8 images of every 9 and of ``n_threes`` 3s, y = 1 for a 3."""
    nines, threes = digit_images(9), digit_images(3, n_threes)
    x = np.concatenate([nines, threes])
    return x, np.r_[np.zeros(len(nines)), np.ones(len(threes))]


def digits_frame():
    """A loader: a DataFrame of 64 pixel columns and the label column ``digit`` (9 or 3)."""
    x, y = nines_and_threes()
    frame = pd.DataFrame(x.reshape(len(x), -1), columns=[f"p{i}" for i in range(64)])
    frame["digit"] = np.where(y == 1, 3, 9)
    return frame


def a_dict():
    """A loader returning what no source takes."""
    return {"x": [1, 2, 3]}


NOT_A_FUNCTION = 3
