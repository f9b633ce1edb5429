"""Turn an uploaded CSV into a clean typed table, a per-column profile and a list of what was cleaned.

Real files are messy (UCI Adult has a space before every value and ``?`` for missing; Zoo has CRLF
endings): we fix what is safe to fix and say so, and reject what we cannot read with a sentence that
names the problem.
"""

from __future__ import annotations

import codecs
import csv
import io
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from explainer_site.exceptions import ApplicationError

from .arrow_csv import CELLS_DTYPE, ColumnCells, arrow_cells_read

MISSING_MARKERS = {"", "?", "na", "n/a", "nan", "null", "none", "-", "--", "missing", "#n/a"}
DELIMITERS = [",", ";", "\t", "|"]
TEXT_MIN_MEAN_LENGTH = 30
SAMPLE_BYTES = 256 * 1024
SNIFF_CHARS = 64 * 1024  # the delimiter is judged on this much text ...
SNIFF_ROWS = 50  # ... and at most this many rows of it
HEADER_MAX_BYTES = 4 * 1024 * 1024  # a header row longer than this is refused, never cut
HEADER_FIELD_MAX = 131_072  # csv's own field limit, said in the refusal
THOUSANDS = r"^-?\d{1,3}(,\d{3})+(\.\d+)?$"


WIDE_ENCODINGS = ("utf-16", "utf-16-le", "utf-16-be", "utf-32")  # where NUL bytes are halves of characters


@dataclass
class ColumnValues:
    """A column's distinct present values (str, or float in a numeric column) in the order rows first hold them, and
    how many rows hold each: what a profile and the label's classes count, without hashing every row again."""

    values: list
    counts: np.ndarray
    n_missing: int


@dataclass
class IngestedTable:
    frame: pd.DataFrame
    kinds: dict[str, str]  # column -> numeric | categorical | text
    notes: list[str] = field(default_factory=list)
    encoding: str = "utf-8"
    delimiter: str = ","
    distinct: dict[str, ColumnValues] | None = None  # known for CSVs; else counted from the frame
    arrow_columns: dict[str, pa.Array] | None = None  # the frame's columns for Parquet, built from the distinct cells


def encoding_detect(head: bytes) -> str:
    """Pick the file's text encoding from its first bytes: BOMs first, UTF-16 without one (every other byte
    zero), then UTF-8, else Windows-1252, else Latin-1 (which reads any byte). UTF-32's marks come before
    UTF-16's: the little-endian one (FF FE 00 00) begins with UTF-16's."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4 and b"\x00" in sample:
        odd, even = sample[1::2].count(0), sample[0::2].count(0)
        if odd > 0.4 * len(sample) / 2 and even == 0:
            return "utf-16-le"
        if even > 0.4 * len(sample) / 2 and odd == 0:
            return "utf-16-be"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start > len(head) - 4:  # a multi-byte character cut by the sample's end
            return "utf-8"
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


ENCODING_NOTES = {
    "cp1252": "The file is not UTF-8; it was read as Windows-1252 (Latin-1).",
    "latin-1": "The file is not UTF-8; it was read as ISO-8859-1 (Latin-1).",
    "utf-16": "The file is UTF-16; it was converted to UTF-8.",
    "utf-32": "The file is UTF-32; it was converted to UTF-8.",
    "utf-16-le": "The file is UTF-16 (little-endian, without a byte-order mark); it was converted to UTF-8.",
    "utf-16-be": "The file is UTF-16 (big-endian, without a byte-order mark); it was converted to UTF-8.",
    "utf-8-sig": "Removed the UTF-8 byte-order mark at the start of the file.",
}
FALLBACK_ENCODING = {"utf-8": "cp1252", "cp1252": "latin-1"}


def binary_check(head: bytes, filename: str) -> None:
    """Refuse files that are clearly not text before trying to parse them."""
    signatures = {
        b"\x89PNG": "a PNG image",
        b"PK\x03\x04": "a ZIP archive (or an Excel .xlsx file)",
        b"\xff\xd8\xff": "a JPEG image",
        b"%PDF": "a PDF document",
        b"\xd0\xcf\x11\xe0": "an old Excel/Word file",
        b"\x1f\x8b": "a gzip archive",
        b"PAR1": "a Parquet file",
        b"\x80\x02": "a Python pickle (never opened here)",
        b"\x80\x03": "a Python pickle (never opened here)",
        b"\x80\x04": "a Python pickle (never opened here)",
        b"\x80\x05": "a Python pickle (never opened here)",
        b"\x7fELF": "a program (ELF executable)",
        b"MZ": "a Windows program",
        b"SQLite format 3": "an SQLite database",
    }
    for magic, what in signatures.items():
        if head.startswith(magic):
            raise ApplicationError(f"“{filename}” looks like {what}, not a CSV. Export your table as CSV and upload that.")
    if not head.strip():
        raise ApplicationError(f"“{filename}” is empty. Upload a CSV with a header row and at least a few data rows.")
    if b"\x00" in head and encoding_detect(head) not in WIDE_ENCODINGS:
        raise ApplicationError(f"“{filename}” contains binary data, not text. Upload a CSV file (comma-separated text).")


def nul_byte_check(path: Path, filename: str) -> None:
    """A NUL byte past the sniffed head (binary data appended to a table) would reach text cells, which PostgreSQL
    refuses at save time (a 500 in the web, a failure on a worker): refused like a binary head. Linear, in chunks."""
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            if b"\x00" in chunk:
                raise ApplicationError(f"“{filename}” contains binary data (a NUL byte), not only text. "
                                       "Upload a CSV file (comma-separated text).")


def delimiter_detect(sample: str) -> str:
    """The candidate that splits the first rows of ``sample`` into the same number (at least two) of fields most often.

    Linear in the sample and bounded by it (``csv.Sniffer`` is quadratic on inputs such as ``,',',``): each
    candidate is parsed once by the C csv reader, with the quoting pandas uses; the last row is left out when
    the sample cuts it. A sample that is one unfinished line (a very long header) is judged by its counts.
    """
    sample = sample[:SNIFF_CHARS]
    scores = {}
    for delimiter in DELIMITERS:
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
        try:
            counts = [len(row) for _, row in zip(range(SNIFF_ROWS + 1), reader) if row]
        except csv.Error:  # a NUL byte or an unclosed quote near the cut: this candidate cannot be judged on rows
            counts = []
        if len(counts) > 1:
            counts = counts[:SNIFF_ROWS]
        if len(counts) > 1 and not sample.endswith(("\n", "\r")):
            counts = counts[:-1]  # the sample's end cuts the last row
        common, times = Counter(counts).most_common(1)[0] if counts else (1, 0)
        scores[delimiter] = (common > 1, times / max(len(counts), 1), common)
    best = max(DELIMITERS, key=lambda d: scores[d])  # max keeps the first of equals: commas win ties
    return best if scores[best][0] else ","


def column_names_clean(names: list[str], notes: list[str]) -> list[str]:
    """Give empty headers a name and make duplicates unique, telling the user."""
    result: list[str] = []
    seen: dict[str, int] = {}
    renamed = []
    for index, raw in enumerate(names):
        name = str(raw).strip().lstrip("\ufeff")
        if not name or name.lower().startswith("unnamed:"):
            name = f"column_{index + 1}"
            renamed.append(f"empty header in column {index + 1} → “{name}”")
        if name in seen:
            seen[name] += 1
            new = f"{name}_{seen[name]}"
            renamed.append(f"duplicate “{name}” → “{new}”")
            name = new
        seen.setdefault(name, 1)
        result.append(name)
    if renamed:
        notes.append("Renamed columns: " + "; ".join(renamed) + ".")
    return result


@dataclass
class CleanColumn:
    values: pd.Series  # float64 for numeric columns, else object (str, NaN where missing)
    kind: str
    stripped: bool  # some cell had leading/trailing spaces
    markers: list[str]  # the placeholders (``?``, ``n/a``...) that were read as missing
    coerced: int  # cells of a numeric column that were not numbers, or were infinite
    empty: bool  # no row has a value
    distinct: ColumnValues
    arrow: pa.Array


def column_clean(cells: ColumnCells) -> CleanColumn:
    """Trim, mark placeholders missing and type one column, each rule applied once per distinct cell and counted
    by how many rows hold it (the rules are the same as cell by cell: numeric when at least 95% of the present cells
    are numbers, thousands separators understood when over 20% look like ``1,234``; text for long, mostly distinct
    strings; else categorical)."""
    counts = np.bincount(cells.codes[cells.codes >= 0], minlength=len(cells.uniques))
    trimmed = cells.uniques.str.strip()
    held = counts > 0
    stripped = bool(((trimmed != cells.uniques).to_numpy() & held).any())
    missing = trimmed.str.lower().isin(MISSING_MARKERS).to_numpy()
    markers = sorted(set(trimmed[missing & held & (trimmed != "").to_numpy()]))
    value_of_unique, values = pd.factorize(trimmed.where(~missing & held))  # trimmed cells that were distinct
    values = pd.Series(values, dtype=cells.uniques.dtype)
    value_of_row = np.append(value_of_unique, -1)[cells.codes]  # -1: missing, or a field the row lacks
    weights = np.bincount(value_of_unique[value_of_unique >= 0], weights=counts[value_of_unique >= 0],
                          minlength=len(values)).astype(np.int64)
    present = int(weights.sum())
    has_missing = present < len(value_of_row)
    if present:
        numbers = numbers_of_values(values, weights, with_nan=has_missing)
        kind = ("numeric" if int(weights[~np.isnan(numbers[:len(values)])].sum()) / present >= 0.95
                else "text" if (int((values.str.len().to_numpy() * weights).sum()) / present >= TEXT_MIN_MEAN_LENGTH
                                and len(values) / present > 0.5)
                else "categorical")
    else:
        kind = "categorical"
    coerced = 0
    appearing = pd.unique(value_of_row)  # values in the order rows first hold them
    appearing = appearing[appearing >= 0]
    if kind == "numeric":
        numbers = numbers[:len(values)]
        infinite = np.isinf(numbers)
        coerced = int(weights[np.isnan(numbers)].sum()) + int(weights[infinite].sum())
        numbers[infinite] = np.nan
        present -= coerced
        column = pd.Series(np.append(numbers, np.nan)[value_of_row], dtype="float64", copy=False)
        number_of_value, distinct_numbers = pd.factorize(numbers)  # "1" and "1.0" are one number
        counted = number_of_value >= 0
        counts = np.bincount(number_of_value[counted], weights=weights[counted], minlength=len(distinct_numbers))
        order = pd.unique(number_of_value[appearing])
        order = order[order >= 0]
        distinct = ColumnValues(values=list(np.asarray(distinct_numbers, dtype=float)[order]),
                                counts=counts[order].astype(np.int64), n_missing=len(value_of_row) - present)
        arrow = pa.array(column.to_numpy(), from_pandas=True)  # NaN is null, as in to_parquet
    else:
        cells_shown = np.empty(len(values) + 1, dtype=object)
        cells_shown[:-1], cells_shown[-1] = values.to_numpy(dtype=object), np.nan
        column = pd.Series(cells_shown[value_of_row], dtype="object", copy=False)
        distinct = ColumnValues(values=list(cells_shown[appearing]), counts=weights[appearing],
                                n_missing=len(value_of_row) - present)
        arrow = pa.array(cells_shown[:-1], type=pa.string()).take(pa.array(value_of_row, mask=value_of_row < 0))
    return CleanColumn(values=column, kind=kind, stripped=stripped, markers=markers, coerced=coerced, empty=not present,
                       distinct=distinct, arrow=arrow)


def numbers_of_values(values: pd.Series, weights: np.ndarray, *, with_nan: bool) -> np.ndarray:
    """Each distinct cell as a number (NaN where it is none), understanding thousands separators (``1,234.5``) when
    over 20% of the present cells are written so. ``with_nan`` parses them beside a missing cell, as the whole
    column would be (pandas reads integers another way when the column holds no NaN)."""
    if int(weights[values.str.match(THOUSANDS).to_numpy(dtype=bool)].sum()) / int(weights.sum()) > 0.2:
        values = values.str.replace(",", "", regex=False)
    if with_nan:
        values = pd.concat([values, pd.Series([np.nan], dtype=values.dtype)], ignore_index=True)
    return np.array(pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan))  # a copy: written


def header_read(path: Path, *, encoding: str, delimiter: str, filename: str) -> list[str]:
    """The whole header row, however long, read from the file rather than from the sniffing sample (which may cut
    it, and a cut header would shift every column after it). Bounded: past ``HEADER_MAX_BYTES`` it is refused."""
    with open(path, "rb") as handle:
        head = handle.read(HEADER_MAX_BYTES + 1)
    text = head.decode(encoding if encoding != "utf-8-sig" else "utf-8", errors="ignore").lstrip("\ufeff")
    stream = io.StringIO(text, newline="")
    try:
        header = next(csv.reader(stream, delimiter=delimiter), [])
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise ApplicationError(
                f"“{filename}” has a column name longer than {HEADER_FIELD_MAX:,} characters (or a quote that is never "
                "closed in its first line). Shorten the header row's names and upload again.") from None
        raise ApplicationError(f"“{filename}” has a header row that cannot be read ({exc}). "
                               "The first line must name each column.") from None
    if len(head) > HEADER_MAX_BYTES and not text[:stream.tell()].endswith(("\n", "\r")):
        raise ApplicationError(f"“{filename}”'s header row is longer than {HEADER_MAX_BYTES // 1024 // 1024} MB. "
                               "Shorten the column names and upload again.")
    return header


TRAILING_FIELD = "\x00trailing"  # a name no real header holds (NUL is refused in the first 256 KiB)


def surplus_fields_text(filename: str, names: list[str] | None) -> str:
    return (f"“{filename}” could not be read as a table: its rows have more fields than the header has names "
            f"({len(names or []):,}). Check that every row has the same number of fields as the header (quote cells "
            "that contain the separator).")


def csv_ingest(path: Path, *, filename: str, max_rows: int, max_columns: int) -> IngestedTable:
    """Read, clean and type the CSV at ``path``; raise ``ApplicationError`` with a fix-it sentence when it cannot.

    pyarrow parses the file where it reads it as pandas does (``arrow_cells_read`` says where), pandas elsewhere."""
    with open(path, "rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    binary_check(head, filename)
    encoding = encoding_detect(head)
    if encoding not in WIDE_ENCODINGS:
        nul_byte_check(path, filename)
    notes: list[str] = []
    sample = head.decode(encoding if encoding != "utf-8-sig" else "utf-8", errors="ignore")
    delimiter = delimiter_detect(sample)
    if delimiter != ",":
        notes.append(f"Columns are separated by {dict(zip(DELIMITERS, ['commas', 'semicolons', 'tabs', 'vertical bars']))[delimiter]}.")
    header_line = header_read(path, encoding=encoding, delimiter=delimiter, filename=filename)
    if len(header_line) > max_columns:
        raise ApplicationError(
            f"“{filename}” has {len(header_line):,} columns; this server accepts at most {max_columns:,}. Remove columns you do not need."
        )
    names = column_names_clean(header_line, notes) if header_line else None
    cells = None
    if names is not None:
        cells = arrow_cells_read(path, n_columns=len(names), delimiter=delimiter, encoding=encoding)
    if cells is None:
        names, cells, encoding = pandas_cells_read(path, names=names, delimiter=delimiter, encoding=encoding,
                                                   filename=filename, max_rows=max_rows, notes=notes)
    n_rows = len(cells[0].codes) if cells else 0
    if encoding in ENCODING_NOTES:
        notes.insert(0, ENCODING_NOTES[encoding])
    if n_rows > max_rows:
        raise ApplicationError(f"“{filename}” has more than {max_rows:,} rows, the limit of this server. Upload a sample of your data.")
    if len(names) > max_columns:
        raise ApplicationError(
            f"“{filename}” has {len(names):,} columns; this server accepts at most {max_columns:,}. Remove columns you do not need."
        )
    if len(names) < 2:
        raise ApplicationError(
            f"“{filename}” has only one column. A dataset needs at least one feature column and one column to predict "
            "(if your file uses another separator, it was not recognised: use commas)."
        )
    if not n_rows:
        raise ApplicationError(f"“{filename}” has a header but no data rows.")

    columns = {name: column_clean(column) for name, column in zip(names, cells)}
    frame = pd.DataFrame({name: column.values for name, column in columns.items()}, copy=False)  # not consolidated
    kinds = {name: column.kind for name, column in columns.items()}
    stripped = [name for name, column in columns.items() if column.stripped]
    missing_cols = {name: column.markers for name, column in columns.items() if column.markers}
    coerced = {name: column.coerced for name, column in columns.items() if column.coerced}
    if stripped:
        notes.append(f"Stripped leading/trailing spaces in {len(stripped)} column{'s' if len(stripped) != 1 else ''}: {', '.join(stripped[:10])}{' …' if len(stripped) > 10 else '.'}")
    if missing_cols:
        parts = [f"{name} ({', '.join(repr(m) for m in markers)})" for name, markers in list(missing_cols.items())[:10]]
        notes.append(f"Treated placeholder values as missing in {len(missing_cols)} column{'s' if len(missing_cols) != 1 else ''}: {'; '.join(parts)}.")
    if coerced:
        parts = [f"{name} ({count} cell{'s' if count != 1 else ''})" for name, count in coerced.items()]
        notes.append("Cells that were not numbers (or were infinite) in numeric columns were treated as missing: " + ", ".join(parts) + ".")
    empty = [name for name, column in columns.items() if column.empty]
    if empty:
        notes.append(f"Column{'s' if len(empty) != 1 else ''} with no values at all: {', '.join(empty)} (not useful as features).")
    return IngestedTable(frame=frame, kinds=kinds, notes=notes, encoding=encoding, delimiter=delimiter,
                         distinct={name: column.distinct for name, column in columns.items()},
                         arrow_columns={name: column.arrow for name, column in columns.items()})


PARQUET_SCHEMA_ROWS = 1000  # the pandas metadata of a Parquet file is taken from this many rows


def frame_parquet(table: IngestedTable) -> bytes:
    """The cleaned table as ``frame.to_parquet(index=False)`` writes it, from the columns the ingest built in Arrow
    where it did (no million Python strings converted again); the schema and its pandas metadata come from the
    frame's first rows and must fit those columns, else pandas writes it."""
    buffer = io.BytesIO()
    if table.arrow_columns is not None:
        schema = pa.Schema.from_pandas(table.frame.iloc[:PARQUET_SCHEMA_ROWS], preserve_index=False)
        arrays = [table.arrow_columns[name] for name in table.frame.columns]
        if schema.types == [array.type for array in arrays]:  # not so for a column empty in its first rows (null)
            pq.write_table(pa.Table.from_arrays(arrays, schema=schema), buffer, compression="snappy")
            return buffer.getvalue()
    table.frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def pandas_cells_read(path: Path, *, names: list[str] | None, delimiter: str, encoding: str, filename: str,
                      max_rows: int, notes: list[str]) -> tuple[list[str], list[ColumnCells], str]:
    """pandas' C parser, the reference: every file pyarrow does not take. Returns the column names, their cells and
    the encoding that read the file (a byte past the sample may need a wider one)."""
    trailing = False  # read once more with one unnamed field at the end: rows that all end with a separator
    while True:
        try:
            with warnings.catch_warnings():  # pandas only warns when the first row is longer than the header
                warnings.simplefilter("error", pd.errors.ParserWarning)
                raw = pd.read_csv(
                    path,
                    sep=delimiter,
                    names=[*names, TRAILING_FIELD] if trailing else names,
                    header=0,
                    encoding=encoding,
                    dtype=str,
                    keep_default_na=False,
                    skip_blank_lines=True,
                    on_bad_lines="error",
                    nrows=max_rows + 1,
                    engine="c",
                    index_col=False,  # surplus fields are an error, never an index that shifts the columns
                )
            break
        except pd.errors.EmptyDataError:
            raise ApplicationError(f"“{filename}” has no columns. The first line must be a header naming each column.") from None
        except pd.errors.ParserWarning:
            if names is not None and not trailing:
                trailing = True
                continue
            raise ApplicationError(surplus_fields_text(filename, names)) from None
        except pd.errors.ParserError as exc:  # "Error tokenizing data. C error: " names pandas' tokenizer, not the file
            message = str(exc).split("\n")[0].removeprefix("Error tokenizing data. ").removeprefix("C error: ")
            raise ApplicationError(
                f"“{filename}” could not be read as a table: {message}. Check that every row has the same number of "
                "fields as the header (quote cells that contain the separator)."
            ) from None
        except UnicodeDecodeError:  # a byte past the sample that the guessed encoding cannot read
            if encoding not in FALLBACK_ENCODING:
                raise ApplicationError(f"“{filename}” is not valid {encoding} text. Save it as UTF-8 CSV and upload again.") from None
            encoding = FALLBACK_ENCODING[encoding]
    if trailing:  # an export that ends every line with the separator: the extra field must be empty everywhere
        extra = raw.pop(TRAILING_FIELD)
        if not (extra.isna() | (extra.str.strip() == "")).all():
            raise ApplicationError(surplus_fields_text(filename, names))
        notes.append("Every row ended with a separator; the empty field after the last column was dropped.")
    if names is not None and list(raw.columns) != names:  # never store a table whose columns moved
        raise ApplicationError(f"“{filename}” has {len(names):,} column names but its rows were read as "
                               f"{raw.shape[1]:,} columns. Check the header row and the separator.")
    read_names = list(raw.columns)  # the header as pandas read it where the first line named nothing
    cells = []
    for name in read_names:
        codes, uniques = pd.factorize(raw.pop(name))
        cells.append(ColumnCells(codes=codes, uniques=pd.Series(uniques, dtype=CELLS_DTYPE)))
    return read_names, cells, encoding


CELL_SHOWN_MAX = 200


def cell_shown(value: object) -> str:
    """A cell for previews and examples: long text cut, so one huge cell cannot bloat every page."""
    text = value_text(value)
    return text if len(text) <= CELL_SHOWN_MAX else text[:CELL_SHOWN_MAX - 1] + "…"


def frame_profile(frame: pd.DataFrame, kinds: dict[str, str], distinct: dict[str, ColumnValues] | None = None) -> list[dict]:
    """Per column: name, inferred type, missing count/percent, distinct count and a few example values (from
    ``distinct`` where the ingest counted them, else from the frame)."""
    profile = []
    n = max(len(frame), 1)
    for name in frame.columns:
        if distinct is not None:
            examples = [cell_shown(v) for v in distinct[name].values[:3]]
            n_missing, n_unique = distinct[name].n_missing, len(distinct[name].values)
        else:
            column = frame[name]
            present = column.dropna()
            examples = [cell_shown(v) for v in present.drop_duplicates().head(3)]
            n_missing, n_unique = int(column.isna().sum()), int(present.nunique())
        profile.append(
            {
                "name": name,
                "dtype": kinds[name],
                "n_missing": n_missing,
                "missing_pct": round(100 * n_missing / n, 1),
                "n_unique": n_unique,
                "examples": examples,
            }
        )
    return profile


def value_text(value: object) -> str:
    """A cell as text, integers without a trailing ``.0``, and never in scientific notation (``1234567.5`` was
    ``1.23457e+06``, ``0.000012`` was ``1.2e-05``): six significant digits, the whole part always kept."""
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return ""
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        if not np.isfinite(value):
            return str(value)
        whole = len(str(int(abs(value)))) if abs(value) >= 1 else 0
        return np.format_float_positional(value, precision=max(6, whole), fractional=False, trim="-")
    return str(value)


def frame_preview(frame: pd.DataFrame, rows: int = 20) -> list[list[str]]:
    return [[cell_shown(v) for v in record] for record in frame.head(rows).itertuples(index=False, name=None)]


def csv_text(frame: pd.DataFrame) -> str:
    """CSV for export, with formula-looking cells escaped so spreadsheets do not execute them."""
    buffer = io.StringIO()
    formula_safe(frame).to_csv(buffer, index=False)
    return buffer.getvalue()


def formula_safe(frame: pd.DataFrame) -> pd.DataFrame:
    def escape(value: object) -> object:
        if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
            try:
                float(value)
                return value
            except ValueError:
                return "'" + value
        return value

    safe = frame.copy()
    for name in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[name]) and not pd.api.types.is_bool_dtype(safe[name]):
            safe[name] = safe[name].map(escape)
    return safe
