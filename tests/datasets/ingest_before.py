"""The CSV ingest as it was before pyarrow (main 31e3d94), frozen as the oracle: the fast path must give the same
frame, kinds, notes and sentences. Only the reading and typing are copied; the checks before them are shared."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from datasets.ingest import (
    DELIMITERS,
    ENCODING_NOTES,
    FALLBACK_ENCODING,
    MISSING_MARKERS,
    SAMPLE_BYTES,
    TEXT_MIN_MEAN_LENGTH,
    THOUSANDS,
    TRAILING_FIELD,
    WIDE_ENCODINGS,
    IngestedTable,
    binary_check,
    column_names_clean,
    delimiter_detect,
    encoding_detect,
    header_read,
    nul_byte_check,
    surplus_fields_text,
)
from explainer_site.exceptions import ApplicationError


def numbers_parse(values: pd.Series) -> pd.Series:
    """Numbers from text cells, understanding thousands separators (``1,234.5``); anything else becomes NaN."""
    present = values.dropna()
    if len(present) and present.str.match(THOUSANDS).mean() > 0.2:
        values = values.str.replace(",", "", regex=False)
    return pd.to_numeric(values, errors="coerce")


def column_kind(values: pd.Series) -> str:
    """numeric when (almost) every present cell is a number; text for long free-form strings; else categorical."""
    present = values.dropna()
    if present.empty:
        return "categorical"
    if numbers_parse(present).notna().mean() >= 0.95:
        return "numeric"
    unique_ratio = present.nunique() / len(present)
    if present.str.len().mean() >= TEXT_MIN_MEAN_LENGTH and unique_ratio > 0.5:
        return "text"
    return "categorical"


def csv_ingest_before(path: Path, *, filename: str, max_rows: int, max_columns: int) -> IngestedTable:
    """Read, clean and type the CSV at ``path``; raise ``ApplicationError`` with a fix-it sentence when it cannot."""
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
    if encoding in ENCODING_NOTES:
        notes.insert(0, ENCODING_NOTES[encoding])
    if len(raw) > max_rows:
        raise ApplicationError(f"“{filename}” has more than {max_rows:,} rows, the limit of this server. Upload a sample of your data.")
    if raw.shape[1] > max_columns:
        raise ApplicationError(
            f"“{filename}” has {raw.shape[1]:,} columns; this server accepts at most {max_columns:,}. Remove columns you do not need."
        )
    if raw.shape[1] < 2:
        raise ApplicationError(
            f"“{filename}” has only one column. A dataset needs at least one feature column and one column to predict "
            "(if your file uses another separator, it was not recognised: use commas)."
        )
    if raw.empty:
        raise ApplicationError(f"“{filename}” has a header but no data rows.")

    stripped, missing_cols, coerced = [], {}, {}
    kinds: dict[str, str] = {}
    clean: dict[str, pd.Series] = {}
    for name in raw.columns:
        column = raw[name]
        trimmed = column.str.strip()
        if not trimmed.equals(column):
            stripped.append(name)
        is_missing = trimmed.str.lower().isin(MISSING_MARKERS)
        markers = set(trimmed[is_missing & (trimmed != "")].unique())
        if markers:
            missing_cols[name] = sorted(markers)
        values = trimmed.mask(is_missing)
        kind = column_kind(values)
        kinds[name] = kind
        if kind == "numeric":
            numbers = numbers_parse(values)
            bad = int(numbers.isna().sum() - values.isna().sum())
            if bad:
                coerced[name] = bad
            infinite = np.isinf(numbers.to_numpy(dtype=float, na_value=np.nan))
            if infinite.any():
                numbers = numbers.mask(infinite)
                coerced[name] = coerced.get(name, 0) + int(infinite.sum())
            clean[name] = numbers.astype("float64")
        else:
            clean[name] = values.astype("object")
    frame = pd.DataFrame(clean)
    if stripped:
        notes.append(f"Stripped leading/trailing spaces in {len(stripped)} column{'s' if len(stripped) != 1 else ''}: {', '.join(stripped[:10])}{' …' if len(stripped) > 10 else '.'}")
    if missing_cols:
        parts = [f"{name} ({', '.join(repr(m) for m in markers)})" for name, markers in list(missing_cols.items())[:10]]
        notes.append(f"Treated placeholder values as missing in {len(missing_cols)} column{'s' if len(missing_cols) != 1 else ''}: {'; '.join(parts)}.")
    if coerced:
        parts = [f"{name} ({count} cell{'s' if count != 1 else ''})" for name, count in coerced.items()]
        notes.append("Cells that were not numbers (or were infinite) in numeric columns were treated as missing: " + ", ".join(parts) + ".")
    empty = [name for name in frame.columns if frame[name].isna().all()]
    if empty:
        notes.append(f"Column{'s' if len(empty) != 1 else ''} with no values at all: {', '.join(empty)} (not useful as features).")
    return IngestedTable(frame=frame, kinds=kinds, notes=notes, encoding=encoding, delimiter=delimiter)

