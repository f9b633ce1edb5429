"""Developer machine and `make run`: the embedded defaults (SQLite, filesystem broker).

Debug stays off unless ``DJANGO_DEBUG=true``: someone trying the app with `make run` sees the site's own error
pages, never Django's debug pages with settings and paths. Static files come straight from the source folders
(WhiteNoise's finders), so no ``collectstatic`` is needed here.
"""

from .base import *  # noqa: F403

WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG  # noqa: F405
