"""The schema form's first guess for a table, with the reason for every column it leaves out.

Pure functions of a dataset's column summaries (``Dataset.columns``: name, dtype, n_unique, n_missing,
missing_pct, examples), its ``label_values`` and its row count, so they are cheap and easy to test. The label
is the column that reads most like an outcome; identifiers, near-unique codes, mostly empty and constant
columns are left unticked with a sentence that says why (the user can tick them again).
"""

from __future__ import annotations

import re

OUTCOME_NAME = re.compile(
    r"^(target|label|labels|class|classes|outcome|result|survived|survival|churn|churned|default|defaulted|"
    r"diagnosis|income|spam|fraud|y|is_.+|has_.+|response|category|species|type|class_type|quality|num|"
    r"disease|status|approved|admit|admitted|readmitted)$", re.I)
_ID_WORDS = re.compile(r"(^|[_\s.-])(id|ids|uuid|guid|key|index|idx|no|nr|number|code)$|^(id|row|record)([_\s.-]|$)", re.I)
_ID_CAMEL = re.compile(r"[a-z](Id|ID|No|Nr|Number|Key|Code)$")  # PassengerId, customerID, TicketNo


def id_like(name: str) -> bool:
    """Whether a column's name reads like an identifier: ``id``, ``customer_id``, ``PassengerId``, ``row no``."""
    name = name.strip()
    return bool(_ID_WORDS.search(name) or _ID_CAMEL.search(name))
MOSTLY_MISSING = 0.6  # share of missing values above which a column is left unticked
NEAR_UNIQUE = 0.5  # categories: distinct values per row above which a column is a code, not a category
LABEL_CLASSES_MAX = 50


def label_score(column: dict, position: int, n_columns: int) -> float:
    """How much a column reads like the thing to predict: an outcome's name, two classes, nothing missing."""
    n = column["n_unique"]
    score = 0.0
    if OUTCOME_NAME.match(column["name"].strip()):
        score += 3.0
    score += 2.0 if n == 2 else 1.0 if n <= 10 else 0.0
    if not column.get("n_missing"):
        score += 0.5
    return score + 0.5 * position / max(n_columns - 1, 1)  # ties: the later column, as tables usually end in the label


def schema_guess(columns: list[dict], label_values: dict, n_rows: int) -> dict:
    """``{label, features, categorical, row_name, reasons: {column: sentence}}`` for a table."""
    candidates = [(label_score(c, i, len(columns)), i, c["name"]) for i, c in enumerate(columns)
                  if c["name"] in label_values and 2 <= c["n_unique"] <= LABEL_CLASSES_MAX]
    label = max(candidates)[2] if candidates else columns[-1]["name"]
    reasons: dict[str, str] = {label: "This is the column to predict (it reads like an outcome)." if candidates
                               else "The last column, proposed as the column to predict."}
    row_name = next((c["name"] for c in columns if c["dtype"] == "categorical" and n_rows and c["n_unique"] >= 0.8 * n_rows
                     and c["name"] != label and not id_like(c["name"])), "")
    if row_name:
        reasons[row_name] = "Different in almost every row, like a name: used to name the rows, not to predict."
    features, categorical = [], []
    for c in columns:
        name, n_unique = c["name"], c["n_unique"]
        if name in (label, row_name):
            continue
        share_missing = c.get("missing_pct", 0) / 100 if c.get("missing_pct") is not None else (
            c.get("n_missing", 0) / n_rows if n_rows else 0)
        reason = ""
        if c["dtype"] == "text":
            reason = "Free text: a table's classifiers cannot use it (a text dataset reads it word by word)."
        elif n_unique <= 1:
            reason = "The same value in every row, so it cannot tell rows apart."
        elif share_missing >= MOSTLY_MISSING:
            reason = f"{share_missing:.0%} of its values are missing."
        elif n_rows and n_unique >= 0.95 * n_rows and (c["dtype"] == "categorical" or id_like(name)):
            reason = "Different in every row, like an id: it would only let a classifier memorise rows."
        elif id_like(name) and c["dtype"] == "numeric" and n_rows and n_unique >= 0.8 * n_rows:
            reason = "Its name and values look like an id number, which says nothing about the outcome."
        elif c["dtype"] == "categorical" and n_rows and n_unique > NEAR_UNIQUE * n_rows:
            reason = (f"{n_unique:,} different values in {n_rows:,} rows: a code (like a ticket number) "
                      "more than a category to learn from.")
        if reason:
            reasons[name] = reason
            continue
        features.append(name)
        if c["dtype"] == "categorical":
            categorical.append(name)
    return {"label": label, "features": features, "categorical": categorical, "row_name": row_name, "reasons": reasons}
