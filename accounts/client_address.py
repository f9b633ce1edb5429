"""The client's address for login lockouts and sign-up throttling: REMOTE_ADDR, unless a trusted proxy says otherwise."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The address a request came from, as the outermost trusted proxy saw it.

    With ``EXPLAINER_TRUSTED_PROXY_COUNT`` at 0 (the default) any forwarding header is the client's own word and is
    ignored. Behind N proxies that each append the address they saw to ``EXPLAINER_CLIENT_IP_HEADER``, the N-th
    entry from the right is the first one no client can forge; a header too short or not an address means the
    request did not come through the proxies, so REMOTE_ADDR stands.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.EXPLAINER_TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    meta_key = "HTTP_" + settings.EXPLAINER_CLIENT_IP_HEADER.upper().replace("-", "_")
    hops = [hop.strip() for hop in request.META.get(meta_key, "").split(",")]
    if len(hops) < count or not hops[-count]:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-count]))
    except ValueError:
        return remote
