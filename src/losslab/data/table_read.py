"""Reading the user's table file, with one clear error for each way it cannot be read."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from losslab.data.dataset import DataError

KINDS = "a CSV (also .csv.gz, .csv.zip), Parquet (.parquet) or Feather (.feather) file"


def _printable(err: BaseException, limit: int = 200) -> str:
    """An error about a binary file quotes its bytes; keep them off the terminal."""
    text = str(err)[:limit]
    return text.encode("ascii", "backslashreplace").decode().replace("\n", " ")


def read_table(given: str, root: Path, encoding: str, key: str = "data.path") -> pd.DataFrame:
    """The file ``given`` (relative to ``root``) as pandas reads it. CSVs go through pandas'
    C parser, which refuses bytes that are not ``encoding`` (its pyarrow engine replaces them
    silently). Errors name the path as given."""
    path = Path(given) if Path(given).is_absolute() else root / given
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        where = "" if str(path) == given else f" (looked in {path.parent})"
        raise DataError(f"{key}={given!r} {what}{where}; give {KINDS}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        elif suffix in (".feather", ".arrow"):
            df = pd.read_feather(path)
        else:
            df = pd.read_csv(path, encoding=encoding)
    except UnicodeDecodeError as err:
        raise DataError(
            f"{key}={given!r}: not {encoding} text (byte {err.object[err.start]:#04x} at "
            f"offset {err.start}); give the file's encoding, e.g. data.encoding=latin-1"
        ) from None
    except (LookupError, OSError, ValueError, ImportError) as err:
        why = _printable(err)
        raise DataError(f"{key}={given!r}: not readable as {KINDS} ({why})") from None
    if df.empty:
        raise DataError(f"{key}={given!r} holds no rows")
    df.columns = [str(c) for c in df.columns]
    columns = set(df.columns)
    mangled = {c.rsplit(".", 1)[0] for c in columns if re.fullmatch(r".+\.\d+", c)}
    duplicated = sorted(mangled & columns)  # pandas reads a second "x" as "x.1"
    if duplicated:
        raise DataError(f"{key}={given!r} names columns {duplicated} more than once")
    return df
