"""Generated bad and awkward CSV files: a small clean table, then every way real uploads go wrong.

Shared by the in-process corpus tests and the integration tests (which upload the clean table).
"""

from __future__ import annotations

import gzip
import io
import pickle
import random
import zipfile

N_ROWS = 60
HEADER = ["name", "age", "city", "income", "label"]
CITIES = ["Leeds", "Porto", "Lyon"]


def table_rows(n: int = N_ROWS) -> list[list[str]]:
    """A tiny learnable table: ``label`` is yes when age is over 40, with a little noise."""
    rng = random.Random(7)
    rows = []
    for i in range(n):
        age = rng.randint(18, 70)
        label = "yes" if (age > 40) != (i % 13 == 0) else "no"
        rows.append([f"person_{i}", str(age), CITIES[i % 3], f"{rng.uniform(1000, 9000):.2f}", label])
    return rows


def csv_text(header: list[str] | None = None, rows: list[list[str]] | None = None, *, sep: str = ",",
             newline: str = "\n") -> str:
    header = HEADER if header is None else header
    rows = table_rows() if rows is None else rows
    return newline.join(sep.join(line) for line in [header, *rows]) + newline


def clean_csv() -> bytes:
    return csv_text().encode()


def with_column(name: str, values: list[str]) -> bytes:
    """The clean table plus one column (values repeat to fill the rows); cells must not need quoting."""
    rows = table_rows()
    return csv_text([*HEADER, name], [[*row, values[i % len(values)]] for i, row in enumerate(rows)]).encode()


def png() -> bytes:
    return b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


def zip_of_csv() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.csv", clean_csv())
    return buffer.getvalue()


def zip_of_text() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes/readme.md", b"no images here")
    return buffer.getvalue()


def random_binary() -> bytes:
    return b"\x00\x01\x02" + random.Random(3).randbytes(4096)


class Detonator:
    """Unpickling this would create ``path``: the test checks it never appears."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def pickle_bomb(path: str) -> bytes:
    return pickle.dumps(Detonator(path), protocol=4)


def gzip_of_csv() -> bytes:
    return gzip.compress(clean_csv())


def ragged() -> bytes:
    lines = csv_text().splitlines()
    lines[3] += ",extra,fields"
    return ("\n".join(lines) + "\n").encode()


def wide(n_columns: int) -> bytes:
    header = [f"c{i}" for i in range(n_columns)]
    return (",".join(header) + "\n" + ",".join("1" for _ in header) + "\n").encode()


def quoted_newlines() -> bytes:
    rows = table_rows()
    rows[5][2] = '"Leeds\nWest Yorkshire"'
    rows[9][2] = '"Porto, ""Norte""\r\nPortugal"'
    return csv_text(rows=rows).encode()


def labelled(values: list[str]) -> bytes:
    """The clean table with its label column replaced by ``values`` (repeated to fill the rows)."""
    rows = table_rows()
    return csv_text(rows=[[*row[:4], values[i % len(values)]] for i, row in enumerate(rows)]).encode()
