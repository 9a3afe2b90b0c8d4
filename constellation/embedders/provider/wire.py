"""One request to an OpenAI-compatible ``POST /embeddings``, and what its answer means.

:meth:`Wire.post` sends texts and returns an :class:`Answer` (the vectors in input order, the
tokens the provider counted, its rate-limit headers), or what the answer means for us:
:class:`RateLimited` (429: slow down), :class:`Transient` (5xx, out of reach, too slow, a
garbled body: try again later), :class:`InputRefused` (400, 413, 422: something about these
texts) or :class:`Refused` (401/403: the key; any other 4xx: the request itself). Nothing here
retries or waits; :mod:`.embedder` decides that.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from constellation.embedders.provider.headers import RateHeaders, rate_headers, retry_after
from constellation.masking import location, masked
from constellation.plan.provider import ProviderConfig

if TYPE_CHECKING:
    import httpx
    import numpy as np


def endpoint(url: str) -> str:
    """``<url>/embeddings``, a query string (Azure's ``?api-version=``) kept after the path."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + "/embeddings"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


@dataclass(frozen=True)
class Answer:
    vectors: np.ndarray
    #: tokens the provider counted (``usage``), if it says
    tokens: int | None
    limits: RateHeaders
    seconds: float


@dataclass(frozen=True)
class Failed:
    """An answer that is not vectors; ``reason`` is one masked line."""

    reason: str
    limits: RateHeaders = field(default_factory=RateHeaders)


@dataclass(frozen=True)
class RateLimited(Failed):
    #: what Retry-After asked for (None: it did not say)
    wait: float | None = None


@dataclass(frozen=True)
class Transient(Failed):
    timeout: bool = False


@dataclass(frozen=True)
class InputRefused(Failed):
    """400, 413 or 422: the texts (or one of them) are refused."""


@dataclass(frozen=True)
class Refused(Failed):
    """401 or 403 (``key`` True), or another 4xx: no text will get through as we ask."""

    key: bool = False


#: what one request came to
Outcome = Answer | RateLimited | Transient | InputRefused | Refused


class Wire:
    """An HTTP connection pool to one provider endpoint (thread-safe)."""

    def __init__(
        self,
        config: ProviderConfig,
        *,
        model: str,
        dimensions: int,
        connections: int,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        self.config = config
        self.url = endpoint(config.url)
        #: the endpoint as messages name it (masked)
        self.where = location(self.url)
        self.model = model
        self.dimensions = dimensions
        self._key = config.api_key.get_secret_value() if config.api_key else ""
        headers = {"Content-Type": "application/json", **config.headers}
        if self._key:
            scheme = f"{config.auth_scheme} " if config.auth_scheme else ""
            headers[config.auth_header] = scheme + self._key
        self._client = httpx.Client(
            headers=headers,
            timeout=config.timeout,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            trust_env=False,
            transport=transport,
        )

    def post(self, texts: Sequence[str], timeout: float | None = None) -> Outcome:
        """Embed ``texts`` in one request (``timeout``: less than the plan's, if given)."""
        import httpx

        body: dict[str, Any] = {"model": self.model, "input": list(texts)}
        if self.config.encoding != "float":
            body["encoding_format"] = self.config.encoding
        if self.config.send_dimensions:
            body["dimensions"] = self.dimensions
        limit = self.config.timeout if timeout is None else min(timeout, self.config.timeout)
        started = time.perf_counter()
        try:
            reply = self._client.post(self.url, content=json.dumps(body), timeout=max(limit, 0.05))
        except httpx.TimeoutException as exc:
            return Transient(
                f"no answer from {self.where} within {limit:g}s ({type(exc).__name__})",
                timeout=True,
            )
        except httpx.HTTPError as exc:
            return Transient(f"{self.where} is out of reach: {self._said(str(exc))}")
        seconds = time.perf_counter() - started
        limits = rate_headers(reply.headers)
        if reply.status_code == 200:
            return self._vectors(reply, len(texts), limits, seconds)
        said = self._said(_error_text(reply))
        status = f"{reply.status_code} {reply.reason_phrase}".strip()
        if reply.status_code == 429:
            wait = retry_after(reply.headers)
            return RateLimited(f"{self.where} answered {status}: {said}", limits, wait)
        if reply.status_code in (408,) or reply.status_code >= 500:
            return Transient(f"{self.where} answered {status}: {said}", limits)
        if reply.status_code in (400, 413, 422):
            return InputRefused(f"{status}: {said}", limits)
        key = reply.status_code in (401, 403)
        return Refused(f"{self.where} answered {status}: {said}", limits, key=key)

    def _vectors(
        self, reply: httpx.Response, count: int, limits: RateHeaders, seconds: float
    ) -> Answer | Transient:
        import numpy as np

        try:
            payload = reply.json()
            rows = sorted(payload["data"], key=lambda item: int(item.get("index", 0)))
            if self.config.encoding == "base64":
                vectors = np.stack(
                    [np.frombuffer(base64.b64decode(row["embedding"]), dtype="<f4") for row in rows]
                )
            else:
                vectors = np.asarray([row["embedding"] for row in rows], dtype=np.float32)
            usage = payload.get("usage") or {}
            tokens = usage.get("prompt_tokens", usage.get("total_tokens"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return Transient(
                f"{self.where} answered 200 with a body that is not embeddings ({exc})"
            )
        if vectors.ndim != 2 or vectors.shape[0] != count:
            return Transient(
                f"{self.where} answered {vectors.shape[0] if vectors.ndim else 0} vectors "
                f"for {count} texts"
            )
        counted = int(tokens) if isinstance(tokens, int | float) else None
        return Answer(vectors, counted, limits, seconds)

    def _said(self, text: str) -> str:
        """A provider's words as one masked line (never our key, even if it echoes it)."""
        line = " ".join(text.split())
        return masked(line[:300], (self._key,))

    def close(self) -> None:
        self._client.close()


def _error_text(reply: httpx.Response) -> str:
    """The reason in an error body: OpenAI's ``error.message``, FastAPI's ``detail``, TEI's
    ``error``, or the text itself."""
    try:
        payload = reply.json()
    except ValueError:
        return reply.text or "(no body)"
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "detail", "message"):
            if payload.get(key):
                return str(payload[key])
    return json.dumps(payload)
