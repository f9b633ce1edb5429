"""``python -m bench``: the project's batch engines against the reference libraries' per-row loops, measured together."""
