"""A ZIP of images, one folder per class, read into the same table an image CSV gives: label, file, pixels.

The archive is read in memory and never extracted, and it is bounded before anything is decoded: the
number of members and of images, their total and single unpacked sizes, each member's flags (no encryption,
only compression methods zipfile reads), each image's width and height and the pixels of all images together
(read from their headers, before any image is decoded). A member whose CRC does not match is refused. Entries whose path would leave the archive (absolute, ``..``, drive letters) refuse the whole
upload. Every image is brought to one size (the most common one, shrunk when its pixels would exceed the
column limit) and to grey or colour, so each row is one image of the same shape.
"""

from __future__ import annotations

import io
import warnings
import zipfile
import zlib
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from explainer_site.exceptions import ApplicationError

from .ingest import ColumnValues, IngestedTable

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
MAX_IMAGES = 20_000
MAX_MEMBERS = 2 * MAX_IMAGES  # every entry of the central directory, folders and skipped files included
SYNC_MAX_IMAGES = 2_000  # more than this many images is read by a worker, without reading headers in the web
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
MAX_IMAGE_BYTES = 16 * 1024 * 1024
MAX_IMAGE_SIDE = 2048
MAX_CLASSES = 100
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F", "P;L"}
COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate", zipfile.ZIP_BZIP2: "bzip2",
                zipfile.ZIP_LZMA: "LZMA"}
MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError)


def images_zip_is(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def entry_path_check(name: str, filename: str) -> PurePosixPath:
    """Paths stay inside the archive: no absolute paths, no ``..``, no drive letters or backslashes."""
    path = PurePosixPath(name)
    if name.startswith(("/", "\\")) or "\\" in name or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ApplicationError(f"“{filename}” contains a path that points outside the archive ({name[:100]}). "
                               "Zip a folder with one sub-folder of images per class and upload that.", {"field": "file"})
    return path


def image_entries(archive: zipfile.ZipFile, filename: str) -> tuple[list[tuple[zipfile.ZipInfo, str]], int]:
    """(entry, class) for every image, and how many other files were skipped."""
    entries, skipped, tables = [], 0, []
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise ApplicationError(f"“{filename}” holds {len(members):,} files and folders; this server reads at most "
                               f"{MAX_MEMBERS:,}. Upload a sample.", {"field": "file"})
    for info in members:
        path = entry_path_check(info.filename, filename)
        if info.is_dir():
            continue
        member_check(info, filename)
        if any(part.startswith(".") or part == "__MACOSX" for part in path.parts):
            continue  # macOS resource forks, .DS_Store and other hidden files
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            skipped += 1
            if path.suffix.lower() in {".csv", ".tsv", ".txt"}:
                tables.append(path.name)
            continue
        if len(path.parts) < 2:
            raise ApplicationError(f"“{path.name}” is not in a folder. Put each class's images in a folder named after "
                                   "the class (e.g. cats/1.png, dogs/2.png).", {"field": "file"})
        entries.append((info, path.parts[-2]))
    if len(entries) > MAX_IMAGES:
        raise ApplicationError(f"“{filename}” holds {len(entries):,} images; this server reads at most {MAX_IMAGES:,}. "
                               "Upload a sample.", {"field": "file"})
    if sum(info.file_size for info, _ in entries) > MAX_UNPACKED_BYTES:
        raise ApplicationError(f"The images in “{filename}” unpack to more than {MAX_UNPACKED_BYTES // 1024 // 1024} MB. "
                               "Upload fewer or smaller images.", {"field": "file"})
    classes = {label for _, label in entries}
    if not entries and tables:
        raise ApplicationError(f"“{filename}” is a ZIP holding {tables[0]}"
                               f"{f' and {len(tables) - 1} more table(s)' if len(tables) > 1 else ''}, not images. "
                               "Unzip it and upload the CSV file itself; ZIP files are read as folders of images.",
                               {"field": "file"})
    if len(classes) < 2:
        raise ApplicationError(f"“{filename}” needs at least two class folders with images in them; it has "
                               f"{len(classes)}.", {"field": "file"})
    if len(classes) > MAX_CLASSES:
        raise ApplicationError(f"“{filename}” has {len(classes)} class folders; at most {MAX_CLASSES} are supported.",
                               {"field": "file"})
    return entries, skipped


def member_check(info: zipfile.ZipInfo, filename: str) -> None:
    """From the central directory alone: members zipfile cannot read are refused before any is unpacked."""
    if info.flag_bits & 0x1:
        raise ApplicationError(f"“{info.filename[:100]}” in “{filename}” is encrypted; this server reads only ZIPs "
                               "without a password. Zip the folders again without encryption.", {"field": "file"})
    if info.compress_type not in COMPRESSIONS:
        raise ApplicationError(f"“{info.filename[:100]}” in “{filename}” is packed with compression method "
                               f"{info.compress_type}, which this server cannot unpack; use one of "
                               f"{', '.join(COMPRESSIONS.values())} (any ordinary zip tool's default).", {"field": "file"})


def member_error(info: zipfile.ZipInfo, exc: Exception) -> ApplicationError:
    reason = "its checksum (CRC) does not match: the archive is damaged" if "CRC" in str(exc) else "it is damaged"
    return ApplicationError(f"“{info.filename[:100]}” cannot be unpacked: {reason}. Zip the folders again and "
                            "upload the new archive.", {"field": "file"})


def image_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """At most ``MAX_IMAGE_BYTES``, whatever the entry's header claims (zip bombs lie about sizes); the CRC is
    checked as the whole member is read."""
    try:
        with archive.open(info) as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except MEMBER_ERRORS as exc:
        raise member_error(info, exc) from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ApplicationError(f"“{info.filename}” unpacks to more than {MAX_IMAGE_BYTES // 1024 // 1024} MB; "
                               "images must be smaller.", {"field": "file"})
    return data


def image_open(data, name: str) -> Image.Image:
    """The image's header only (``Image.open`` decodes nothing): its size is checked before any pixel is read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the side limit below is stricter
            image = Image.open(data if hasattr(data, "read") else io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ApplicationError(f"“{name}” claims to be more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels; images may be "
                               f"at most {MAX_IMAGE_SIDE} pixels wide and high.", {"field": "file"}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise ApplicationError(f"“{name}” is not an image this server can read (PNG, JPEG, BMP, GIF, WebP, TIFF).",
                               {"field": "file"}) from None
    if max(image.size) > MAX_IMAGE_SIDE:
        raise ApplicationError(f"“{name}” is {image.size[0]} × {image.size[1]} pixels; images may be at most "
                               f"{MAX_IMAGE_SIDE} pixels wide and high.", {"field": "file"})
    return image


def image_headers(archive: zipfile.ZipFile, entries: list[tuple[zipfile.ZipInfo, str]], *, filename: str,
                  max_pixels: int) -> list[tuple[str, tuple[int, int]]]:
    """(mode, size) of every image from its header, stopping as soon as their pixels together pass ``max_pixels``:
    nothing is decoded here, so a ZIP of huge blank images costs a header read per member, not its pixels."""
    headers, pixels = [], 0
    for info, _ in entries:
        try:
            with archive.open(info) as handle:
                image = image_open(handle, info.filename)
                headers.append((image.mode, image.size))
        except MEMBER_ERRORS as exc:
            raise member_error(info, exc) from None
        pixels += image.size[0] * image.size[1]
        if pixels > max_pixels:
            raise ApplicationError(
                f"The images in “{filename}” hold more than {max_pixels:,} pixels together (this server's "
                f"EXPLAINER_IMAGE_MAX_PIXELS, the limit of what it decodes for one upload). Upload fewer or smaller "
                "images.", {"field": "file"})
    return headers


def images_zip_open(path: Path, filename: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise ApplicationError(f"“{filename}” is not a readable ZIP archive.", {"field": "file"}) from None


def images_zip_quick_check(path: Path, *, filename: str, max_pixels: int, sync_pixels: int, sync_bytes: int) -> bool:
    """The web request's bounded look at an image ZIP: True when it is small enough to read there, False when a
    worker should read it. Refuses what the central directory (and, for at most ``SYNC_MAX_IMAGES`` images that
    unpack to at most ``sync_bytes``, their headers) already shows to be unreadable."""
    with images_zip_open(path, filename) as archive:
        if len(archive.infolist()) > SYNC_MAX_IMAGES:
            return False  # the worker checks every member; the web only counts them
        entries, _ = image_entries(archive, filename)
        if sum(info.file_size for info, _ in entries) > sync_bytes:
            return False  # reading even their headers could unpack a lot
        headers = image_headers(archive, entries, filename=filename, max_pixels=max_pixels)
    return sum(w * h for _, (w, h) in headers) <= sync_pixels


def target_shape(sizes: Counter, channels: int, max_pixels: int) -> tuple[int, int]:
    """The most common (width, height), shrunk keeping its proportions until width*height*channels fits."""
    width, height = sizes.most_common(1)[0][0]
    scale = min(1.0, (max_pixels / (width * height * channels)) ** 0.5)
    return max(1, int(width * scale)), max(1, int(height * scale))


PROFILE_ROWS_PER_CHUNK = 2_000  # rows of pixels counted at once (the index array is rows x columns int64)


def pixel_values_count(pixels: np.ndarray) -> list[ColumnValues]:
    """Each pixel column's distinct values (in the order rows first hold them) and counts, for all columns at once:
    the profile and the label counting would otherwise hash 12,288 columns of a colour image one by one."""
    n, width = pixels.shape
    offsets = (np.arange(width, dtype=np.int64) * 256)[None, :]
    counts = np.zeros(width * 256, dtype=np.int64)
    first = np.full(width * 256, n, dtype=np.int64)
    for start in range(0, n, PROFILE_ROWS_PER_CHUNK):
        index = pixels[start:start + PROFILE_ROWS_PER_CHUNK].astype(np.int64) + offsets
        counts += np.bincount(index.ravel(), minlength=width * 256)
        rows = np.repeat(np.arange(start, start + len(index))[:, None], width, axis=1)
        # Assigned from the last row up: where a value repeats, the earliest row's assignment is the one that stays.
        chunk_first = np.full(width * 256, n, dtype=np.int64)
        chunk_first[index[::-1].ravel()] = rows[::-1].ravel()
        np.minimum(first, chunk_first, out=first)
    counts, first = counts.reshape(width, 256), first.reshape(width, 256)
    out = []
    for column in range(width):
        present = np.flatnonzero(counts[column])
        order = present[np.argsort(first[column, present], kind="stable")]
        out.append(ColumnValues(values=[float(v) for v in order], counts=counts[column, order], n_missing=0))
    return out


def labels_count(values: list[str]) -> ColumnValues:
    codes, uniques = pd.factorize(pd.Series(values, dtype=object))  # in the order rows first hold them
    return ColumnValues(values=[str(v) for v in uniques], counts=np.bincount(codes, minlength=len(uniques)), n_missing=0)


def images_zip_ingest(path: Path, *, filename: str, max_rows: int, max_columns: int,
                      max_pixels: int) -> tuple[IngestedTable, list[int]]:
    """The archive as a table (label, file, pixel0…) and the image shape ``[height, width(, 3)]``."""
    with images_zip_open(path, filename) as archive:
        entries, skipped = image_entries(archive, filename)
        if len(entries) > max_rows:
            raise ApplicationError(f"“{filename}” holds {len(entries):,} images; the limit is {max_rows:,} rows.",
                                   {"field": "file"})
        headers = image_headers(archive, entries, filename=filename, max_pixels=max_pixels)
        channels = 1 if all(mode in GREY_MODES for mode, _ in headers) else 3
        width, height = target_shape(Counter(size for _, size in headers), channels, max_columns - 2)
        if min(width, height) < 4:
            raise ApplicationError(f"The images in “{filename}” are too small or too elongated to learn from "
                                   f"({width} × {height} after fitting the {max_columns:,}-column limit).", {"field": "file"})
        pixels = np.empty((len(entries), height * width * channels), dtype=np.uint8)
        resized = 0
        for i, (info, _) in enumerate(entries):
            image = image_open(image_bytes(archive, info), info.filename)
            try:
                image = image.convert("L" if channels == 1 else "RGB")
            except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
                raise ApplicationError(f"“{info.filename[:100]}” is damaged: its pixels cannot be decoded.",
                                       {"field": "file"}) from None
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
                resized += 1
            pixels[i] = np.asarray(image, dtype=np.uint8).reshape(-1)
    names = [f"pixel{j}" for j in range(pixels.shape[1])]
    frame = pd.concat([
        pd.DataFrame({"label": pd.Series([label for _, label in entries], dtype=object),
                      "file": pd.Series([info.filename for info, _ in entries], dtype=object)}),
        pd.DataFrame(pixels.astype(np.float64), columns=names),
    ], axis=1)
    kinds = {"label": "categorical", "file": "categorical", **dict.fromkeys(names, "numeric")}
    distinct = {"label": labels_count([label for _, label in entries]),
                "file": labels_count([info.filename for info, _ in entries]),
                **dict(zip(names, pixel_values_count(pixels)))}
    counts = Counter(label for _, label in entries)
    notes = [f"Read {len(entries):,} images in {len(counts)} classes "
             f"({', '.join(f'{label}: {n}' for label, n in sorted(counts.items()))}) as "
             f"{height} × {width} {'grey' if channels == 1 else 'colour'} pixels, row by row (pixel0 is the top left)."]
    if resized:
        notes.append(f"Resized {resized:,} image{'s' if resized != 1 else ''} to {width} × {height}.")
    if skipped:
        notes.append(f"Skipped {skipped:,} file{'s' if skipped != 1 else ''} that {'are' if skipped != 1 else 'is'} not images.")
    shape = [height, width] if channels == 1 else [height, width, 3]
    return IngestedTable(frame=frame, kinds=kinds, notes=notes, encoding="binary", delimiter="", distinct=distinct), shape

