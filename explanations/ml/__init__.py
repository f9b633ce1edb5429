"""The pure ML code: classifiers, explainers with their engines, plots, trust and what-if maths, table encoding.

It imports no Django and no module of the app around it (``ml/ruff.toml`` bans them, and ``ruff check`` fails
CI on such an import), so it can be read, tested and reused as plain Python. Jobs, files and the database stay
in ``explanations/`` above it.
"""
