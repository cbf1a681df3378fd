"""Is the Hugging Face hub reachable? Answered within seconds, once per endpoint and process.

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


HUB_TIMEOUT = 3.0  # seconds to connect, and then to get the first answer


def hub_reachable(timeout: float = HUB_TIMEOUT) -> bool:
    """False at once in offline mode; else whether the endpoint answers an HTTP request within `timeout` s."""
    return hub_problem(timeout) is None


def hub_problem(timeout: float = HUB_TIMEOUT) -> str | None:
    """Why the hub cannot be used now ("offline mode (HF_HUB_OFFLINE)", "refused the connection",
    "did not answer within 3 s", ...), or None when it answers.

    A connection alone is no answer: a hub (or proxy) that accepts and then
    says nothing would hang `datasets` for minutes of retries.
    """
    if hub_offline():
        return "offline mode (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set)"
    endpoint = hub_endpoint()
    if endpoint_address(endpoint) is None:
        return f"HF_ENDPOINT {endpoint!r} names no host"
    return _ask(endpoint, timeout)


@functools.lru_cache(maxsize=8)
def _ask(endpoint: str, timeout: float) -> str | None:
    import urllib.error
    import urllib.request

    try:  # any HTTP answer will do, even an error status: the server is there and talking
        with urllib.request.urlopen(urllib.request.Request(endpoint + "/", method="HEAD"), timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None
    except (TimeoutError, socket.timeout):
        return f"did not answer within {timeout:g} s"
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            return f"did not answer within {timeout:g} s"
        return "refused the connection" if isinstance(exc.reason, ConnectionRefusedError) else f"cannot be reached ({exc.reason})"
    except OSError as exc:  # reset, closed mid-answer, ...
        return f"cannot be reached ({exc.strerror or type(exc).__name__})"


hub_reachable.cache_clear = _ask.cache_clear  # type: ignore[attr-defined]  # tests forget answers
