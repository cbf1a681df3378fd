"""Is the Hugging Face hub reachable? Answered in seconds, once per endpoint and process.

`datasets` and `huggingface_hub` retry for ~25 s when the network is closed;
asking first lets offline users fall back to packaged data at once. The
endpoint asked is the one those libraries will use: $HF_ENDPOINT (a mirror,
or a test server) when set, else https://huggingface.co.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlsplit

DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "true", "yes", "on"}


def hub_endpoint() -> str:
    """The hub URL huggingface_hub and datasets use (they read the same variable)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def endpoint_address(endpoint: str) -> tuple[str, int] | None:
    """(host, port) of an endpoint URL; None when it names no host."""
    try:
        parts = urlsplit(endpoint)
        port = parts.port or (80 if parts.scheme == "http" else 443)
    except ValueError:  # a port that is not a number
        return None
    return (parts.hostname, port) if parts.hostname else None


def hub_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_reachable(timeout: float = 3.0) -> bool:
    """False at once in offline mode; else whether a TCP connection to the endpoint opens within `timeout` s."""
    if hub_offline():
        return False
    address = endpoint_address(hub_endpoint())
    return address is not None and _can_connect(address, timeout)


@functools.lru_cache(maxsize=8)
def _can_connect(address: tuple[str, int], timeout: float) -> bool:
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


hub_reachable.cache_clear = _can_connect.cache_clear  # type: ignore[attr-defined]  # tests forget answers
