"""Which rows a job explains: the row spec as people give it (cleaned before the job is saved), and the rows it
picks once models exist.

A spec is one choice (``{ids}``, ``{names}``, ``{random: N, seed}``, ``{misclassified: N}``, ``{all_test: true}``)
or ``{any_of: [choice, ...]}``, several of them combined (deduplicated, in order, capped at
``EXPLAINER_MAX_JOB_ROWS``). "Misclassified" rows are the same for every classifier of a job: rows some
classifier gets wrong, its most confident mistakes first (``misclassified_rows``, a pure function over arrays).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.conf import settings

from datasets.models import Dataset
from explainer_site.exceptions import ApplicationError
from explanations.ml.explainers.base import number_parse

ROW_SPEC_KEYS = ("ids", "names", "random", "misclassified", "all_test", "any_of")
ROW_CHOICE_KEYS = ROW_SPEC_KEYS[:-1]
ANY_OF_MAX = 10  # choices one spec may combine


# ---------------------------------------------------------------- the spec, before the job is saved


def rows_spec_clean(*, dataset: Dataset, rows: dict | None) -> dict:
    """The cleaned spec; ``ApplicationError`` (field ``rows``) says what was wrong and how to write it."""
    rows = rows or {"random": 3}
    if isinstance(rows, dict) and "any_of" in rows:
        if len([k for k in rows if k in ROW_SPEC_KEYS]) != 1:
            raise ApplicationError("any_of holds every row choice: put the others inside its list.", {"field": "rows"})
        choices = rows["any_of"]
        if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
            raise ApplicationError("any_of takes a list of row choices, such as "
                                   "[{\"random\": 3, \"seed\": 1}, {\"misclassified\": 2}].", {"field": "rows"})
        if len(choices) > ANY_OF_MAX:
            raise ApplicationError(f"any_of combines at most {ANY_OF_MAX} row choices.", {"field": "rows"})
        if any("any_of" in c for c in choices):
            raise ApplicationError("any_of cannot hold another any_of; list every choice in one.", {"field": "rows"})
        return {"any_of": [row_choice_clean(dataset=dataset, rows=c) for c in choices]}
    return row_choice_clean(dataset=dataset, rows=rows)


def row_choice_clean(*, dataset: Dataset, rows: dict) -> dict:
    if not isinstance(rows, dict) or len([k for k in rows if k in ROW_CHOICE_KEYS]) != 1:
        raise ApplicationError("Say which rows to explain with exactly one of: ids, names, random, misclassified, "
                               "all_test (or any_of, a list of them).", {"field": "rows"})
    limit = settings.EXPLAINER_MAX_JOB_ROWS
    if "ids" in rows:
        try:
            if not isinstance(rows["ids"], list):
                raise ValueError(rows["ids"])
            ids = [number_parse(i, whole=True) for i in rows["ids"]]
        except ValueError:
            raise ApplicationError("Row ids must be whole numbers such as 0, 12, 244.", {"field": "rows"}) from None
        if not ids:
            raise ApplicationError("Type at least one row id.", {"field": "rows"})
        bad = [i for i in ids if not 0 <= i < dataset.n_rows]
        if bad:
            raise ApplicationError(
                f"Row{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad[:5]))} do{'' if len(bad) > 1 else 'es'} not exist; "
                f"rows are numbered 0 to {dataset.n_rows - 1}.", {"field": "rows"})
        return {"ids": list(dict.fromkeys(ids))[:limit]}
    if "names" in rows:
        ids, names = row_names_find(dataset=dataset, names=rows["names"])
        return {"ids": ids[:limit], "names": names}
    if "all_test" in rows:
        if not rows["all_test"]:
            raise ApplicationError("all_test takes true: explain every row of the test split.", {"field": "rows"})
        return {"all_test": True}
    key = "random" if "random" in rows else "misclassified"
    try:
        count = number_parse(rows[key], whole=True)
    except ValueError:
        raise ApplicationError("The number of rows must be a whole number.", {"field": "rows"}) from None
    if not 1 <= count <= limit:
        raise ApplicationError(f"The number of rows must be between 1 and {limit}.", {"field": "rows"})
    spec = {key: count}
    if key == "random":
        try:
            seed = number_parse(0 if rows.get("seed") in (None, "") else rows["seed"], whole=True)
        except ValueError:
            seed = None
        if seed is None or not 0 <= seed <= 2**31 - 1:
            raise ApplicationError("The row seed must be a whole number between 0 and 2147483647.", {"field": "rows"})
        spec["seed"] = seed
    return spec


def row_names_find(*, dataset: Dataset, names) -> tuple[list[int], list[str]]:
    """The ids of the rows with these names (every row of a name that repeats), and the cleaned names."""
    row_name = dataset.schema.get("row_name")
    if not row_name:
        raise ApplicationError("This dataset has no row-name column; pick rows by id instead, or set one on the schema page.",
                               {"field": "rows"})
    if not isinstance(names, list) or not all(isinstance(n, (str, int, float)) for n in names):
        raise ApplicationError("Row names must be a list of names such as [\"alice\", \"bob\"].", {"field": "rows"})
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        raise ApplicationError("Type at least one row name.", {"field": "rows"})
    with dataset.data_file.open("rb") as handle:
        column = pd.read_parquet(handle, columns=[row_name])[row_name]
    from datasets.ingest import value_text

    texts = column.map(lambda v: value_text(v) if pd.notna(v) else "")
    ids, missing = [], []
    for name in names:
        hits = np.flatnonzero((texts == name).to_numpy())
        if not len(hits):
            missing.append(name)
        ids.extend(int(i) for i in hits)
    if missing:
        raise ApplicationError(f"No row is named {', '.join(repr(m) for m in missing[:5])} in “{row_name}”.", {"field": "rows"})
    return list(dict.fromkeys(ids)), names


def row_choices(spec: dict) -> list[dict]:
    """The spec's choices in order (one, or those of ``any_of``)."""
    return list(spec["any_of"]) if "any_of" in spec else [spec]


def rows_spec_resubmit(spec: dict) -> dict:
    """A cleaned spec as it is submitted again (a rerun): names stay names (their ids are looked up again)."""
    def choice(c: dict) -> dict:
        return {"names": c["names"]} if c.get("names") else {"ids": c["ids"]} if "ids" in c else dict(c)

    return {"any_of": [choice(c) for c in spec["any_of"]]} if "any_of" in spec else choice(spec)


def rows_need_predictions(spec: dict) -> bool:
    return any("misclassified" in choice for choice in row_choices(spec))


def rows_count_estimate(spec: dict, *, n_test: int) -> int:
    """At most how many rows the spec picks (the test split bounds random, misclassified and all_test)."""
    total = 0
    for choice in row_choices(spec):
        if "ids" in choice:
            total += len(choice["ids"])
        elif choice.get("all_test"):
            total += n_test
        else:
            total += min(int(choice.get("random") or choice.get("misclassified") or 1), n_test)
    return min(total, settings.EXPLAINER_MAX_JOB_ROWS)


# ---------------------------------------------------------------- picking rows (pure: arrays in, row ids out)


def misclassified_rows(*, rows: np.ndarray, y: np.ndarray, probabilities: dict[str, np.ndarray], count: int) -> list[int]:
    """Rows some classifier gets wrong, the most confident mistakes first.

    ``rows`` are row ids, ``y`` their true class codes (-1: unknown, never a mistake), ``probabilities`` maps
    each classifier to its ``(len(rows), n_classes)`` class probabilities. A row's confidence is the highest
    predicted-class probability among the classifiers that get it wrong; ties go to the lower row id. The
    answer depends on every classifier at once, so each of them explains the same rows.
    """
    rows, y = np.asarray(rows), np.asarray(y)
    confidence = np.full(len(rows), -1.0)
    for proba in probabilities.values():
        proba = np.asarray(proba, dtype=float)
        predicted = proba.argmax(axis=1)
        wrong = (predicted != y) & (y >= 0)
        confidence = np.where(wrong, np.maximum(confidence, proba.max(axis=1)), confidence)
    picked = np.flatnonzero(confidence >= 0)
    order = sorted(picked, key=lambda i: (-confidence[i], int(rows[i])))
    return [int(rows[i]) for i in order[:count]]


def rows_pick(*, spec: dict, test_idx: np.ndarray, y: np.ndarray, probabilities: dict[str, np.ndarray] | None,
              limit: int) -> list[int]:
    """The row ids a cleaned spec explains, in order, without repeats, at most ``limit``.

    ``y`` holds the class code of every row of the file; ``probabilities`` (classifier → probabilities on
    ``test_idx``) is needed only when the spec asks for misclassified rows.
    """
    test_idx = np.asarray(test_idx)
    picked: list[int] = []
    for choice in row_choices(spec):
        if "ids" in choice:
            picked += [int(i) for i in choice["ids"]]
        elif choice.get("all_test"):
            picked += [int(i) for i in test_idx[:limit]]
        elif "random" in choice:
            rng = np.random.default_rng(choice.get("seed", 0))
            picked += sorted(int(i) for i in rng.choice(test_idx, size=min(choice["random"], len(test_idx)), replace=False))
        else:
            if probabilities is None:
                raise ValueError("misclassified rows need every classifier's probabilities on the test rows")
            picked += misclassified_rows(rows=test_idx, y=np.asarray(y)[test_idx], probabilities=probabilities,
                                         count=choice["misclassified"])
    return list(dict.fromkeys(picked))[:limit]


# ---------------------------------------------------------------- the job's rows, once every classifier is trained


def rows_resolve(*, job, data, probabilities: dict[str, np.ndarray] | None = None) -> list[int]:
    """The job's rows from its data (``JobData``) and, for misclassified rows, every classifier's probabilities
    on the test rows (classifier → array): what a job-level pipeline calls once every classifier is trained."""
    return rows_pick(spec=job.rows_spec, test_idx=data.test_idx, y=data.y, probabilities=probabilities,
                     limit=settings.EXPLAINER_MAX_JOB_ROWS)
