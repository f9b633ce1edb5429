"""The errors an explainer raises on purpose (alibi's ``exceptions.py``); their messages are shown to users.

Pure Python, so the catalogue and the web side can name them without loading numpy.
"""

from __future__ import annotations


class ExplainerError(Exception):
    """Base of every error an explainer raises on purpose; its message is shown to users."""


class PredictorCallError(ExplainerError):
    """The model failed while the explainer was calling it."""


class NotFittedError(ExplainerError):
    """``explain`` was called before ``fit``."""


class UnknownExplainerError(ExplainerError, KeyError):
    """No explainer is registered under the requested key (or none for that kind of data)."""

    def __str__(self) -> str:  # KeyError would otherwise show the message in quotes
        return str(self.args[0]) if self.args else ""
