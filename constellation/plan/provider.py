"""Plan section of an embedding provider over HTTP (``backend: http``).

Any service that speaks OpenAI's ``POST /v1/embeddings``: OpenAI, Azure OpenAI, Cloudflare
Workers AI, Hugging Face TEI, Infinity, vLLM, Ollama. The limits are kept on our side, so the
worker never sends what the provider would refuse; the provider's own answers (429 with
``Retry-After``, ``x-ratelimit-*`` headers) slow it down further when they come.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from constellation.plan.fields import Duration, OptSecret, Section


class ProviderConfig(Section):
    """Where and how to reach an OpenAI-compatible embeddings endpoint."""

    #: the base URL; requests go to ``<url>/embeddings`` (a query string, as Azure's
    #: ``?api-version=...``, is kept after the path)
    url: str = Field(min_length=1)
    #: the model name sent in each request (default: the model version's ``name``)
    model: str | None = None
    #: the key, from the environment (``${OPENAI_API_KEY}``): masked in every output
    api_key: OptSecret = None
    #: the header that carries the key, and the scheme before it (Azure: ``api-key``, no scheme)
    auth_header: str = Field("Authorization", min_length=1)
    auth_scheme: str = "Bearer"
    #: more headers sent with every request (an organization, a project)
    headers: dict[str, str] = Field(default_factory=dict)
    #: send the plan's ``dimensions`` in each request (OpenAI's text-embedding-3 models can
    #: shorten their vectors to it); otherwise the provider's own length must match
    send_dimensions: bool = False
    #: texts in one request
    texts_per_request: int = Field(32, ge=1, le=2048)
    #: requests at once (fewer for a while after a 429)
    requests_in_flight: int = Field(4, ge=1, le=256)
    #: one request's time limit
    timeout: Duration = 30.0
    #: a worker batch's time to get its vectors, retries included; past it the batch's jobs
    #: go back to the queue, uncounted, and the circuit breaker opens
    deadline: Duration = 60.0
    #: a search's time to get its query vector, retries included (then 503 / one line)
    query_deadline: Duration = 5.0
    #: the first retry's wait (then doubled each time, with jitter, up to ``max_backoff``)
    backoff: Duration = 0.5
    max_backoff: Duration = 10.0
    #: limits kept on our side (None: only the provider's answers slow us down)
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    #: tokens counted for a text before the provider reports its usage: characters per token
    chars_per_token: float = Field(4.0, gt=0)
    #: cut each text after this many characters (None: the provider cuts, or refuses it)
    max_input_chars: int | None = Field(None, ge=1)
    #: consecutive failed requests that open the circuit breaker (the worker stops receiving)
    failures_to_open: int = Field(5, ge=1, le=1000)
    #: while open, how often the provider is probed with one small request
    probe_interval: Duration = 5.0
    #: how vectors come back: JSON floats, or base64 (fewer bytes, where the provider offers it)
    encoding: Literal["float", "base64"] = "float"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL (got {value!r})")
        return value

    @model_validator(mode="after")
    def _times(self) -> ProviderConfig:
        if self.timeout <= 0 or self.deadline <= 0 or self.query_deadline <= 0:
            raise ValueError("timeout, deadline and query_deadline must be above 0")
        if self.max_backoff < self.backoff:
            raise ValueError("max_backoff must be at least backoff")
        return self
