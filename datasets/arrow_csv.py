"""pyarrow's CSV parser for uploads, taken only where it reads a file cell for cell as pandas' C parser does.

pandas' reader (``dtype=str``, blank lines skipped) stays the reference and the fallback. pyarrow splits the same
way (fields, quotes, doubled quotes, quoted newlines, CRLF, empty lines), but it refuses what pandas pads or skips
(short rows, whitespace-only lines), which costs nothing here: any refusal hands the file to pandas, which then gives
today's result or today's sentence. The differences that are not refusals are checked for before or after the parse:

* a lone carriage return (old Mac line endings): pandas swallows the character after a CR-only blank line;
* a quote still open at the end of the file: pandas refuses it, pyarrow ends the field there. A row of empty fields
  is read after the file's last byte; if it does not come back as a row of its own, a quote swallowed it;
* encodings other than UTF-8, and files whose header is not one row of two fields or more.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

ARROW_ENCODINGS = ("utf-8", "utf-8-sig")  # what pyarrow reads natively; it skips a UTF-8 byte-order mark
BLOCK_BYTES = 4 << 20  # one parse block; a row longer than this is refused (and pandas reads it)
CELLS_DTYPE = pd.Series([], dtype=str).dtype  # what pandas' reader gives with dtype=str


@dataclass
class ColumnCells:
    """One column as read, before any cleaning: each row's index into ``uniques`` (-1 where a short row had no such
    field: pandas' NaN) and the distinct cells, in pandas' string dtype. Cleaning works on the distinct cells once."""

    codes: np.ndarray
    uniques: pd.Series


class SuffixedFile(io.RawIOBase):
    """A file read as if ``suffix`` followed its last byte (without copying or changing the file)."""

    def __init__(self, handle, suffix: bytes):
        self.handle, self.suffix = handle, suffix

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        read = self.handle.readinto(buffer)
        if read:
            return read
        count = min(len(buffer), len(self.suffix))
        buffer[:count], self.suffix = self.suffix[:count], self.suffix[count:]
        return count


def lone_carriage_return(path: Path) -> bool:
    """Whether a CR that does not start a CRLF occurs anywhere (linear, in chunks)."""
    with open(path, "rb") as handle:
        previous_cr = False
        while chunk := handle.read(1 << 20):
            if previous_cr and not chunk.startswith(b"\n"):
                return True
            previous_cr = chunk.endswith(b"\r")
            if b"\r" in chunk:  # most files have none: one memchr per chunk
                body = chunk[:-1] if previous_cr else chunk
                if body.count(b"\r") != body.count(b"\r\n"):
                    return True
    return previous_cr


def arrow_cells_read(path: Path, *, n_columns: int, delimiter: str, encoding: str) -> list[ColumnCells] | None:
    """The data rows of the CSV at ``path`` (its header row read and dropped) as ``n_columns`` columns of cells, or
    ``None`` where pyarrow would not read the file as pandas does: then pandas reads it."""
    if encoding not in ARROW_ENCODINGS or n_columns < 2 or lone_carriage_return(path):
        return None
    names = [f"c{index}" for index in range(n_columns)]
    cell = pa.dictionary(pa.int32(), pa.string())
    try:
        with open(path, "rb", buffering=0) as raw:
            stream = io.BufferedReader(SuffixedFile(raw, b"\n" + delimiter.encode() * (n_columns - 1) + b"\n"), BLOCK_BYTES)
            table = pacsv.read_csv(
                stream,
                read_options=pacsv.ReadOptions(column_names=names, block_size=BLOCK_BYTES, use_threads=True),
                parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True, escape_char=False,
                                                 newlines_in_values=True, ignore_empty_lines=True),
                convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, cell), null_values=[],
                                                     strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                     check_utf8=True),
            )
    except (pa.ArrowException, UnicodeDecodeError, OSError, MemoryError):  # pandas reads it, or says why it cannot
        return None
    if table.num_rows < 2:
        return None
    table = table.unify_dictionaries()
    columns = []
    for name in names:
        chunks = table.column(name).chunks
        dictionary = chunks[0].dictionary
        codes = np.concatenate([chunk.indices.to_numpy(zero_copy_only=False) for chunk in chunks])
        if dictionary[codes[-1]].as_py() != "":  # the row after the file's end is missing: an open quote took it
            return None
        columns.append(ColumnCells(codes=codes[1:-1], uniques=pd.Series(dictionary, dtype=CELLS_DTYPE)))
    return columns
