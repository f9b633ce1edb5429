"""Developer machine: the embedded defaults (SQLite, filesystem broker), debug on unless told otherwise."""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from .base import *  # noqa: E402,F403
