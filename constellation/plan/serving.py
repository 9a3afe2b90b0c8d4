"""Plan section ``service:``: who may call ``constellation serve``, and its limits.

Token values come from the environment (``token: "${CONSTELLATION_TOKEN:-}"``) and are
:class:`~pydantic.SecretStr`: masked by ``plan validate`` and never logged. A token whose value
is empty is not configured (its variable is unset); a plan with no configured token serves
loopback clients only.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from constellation.plan.fields import Duration, OptSecret, Section

#: a token shorter than this is refused: tokens are meant to be generated, not typed
MIN_TOKEN_LENGTH = 16

Scope = Literal["read", "write"]


class ApiToken(Section):
    """One bearer token: ``write`` may embed and write notes, and read; ``read`` only reads."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    token: OptSecret = None
    scope: Scope = "read"

    @model_validator(mode="after")
    def _long_enough(self) -> ApiToken:
        # A value_error, so the loader never echoes the value in its message.
        if self.token is not None and len(self.token.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"token {self.name!r} is shorter than {MIN_TOKEN_LENGTH} characters; "
                "generate one, e.g. `openssl rand -hex 32`"
            )
        return self


class ServiceConfig(Section):
    """The HTTP service (``constellation serve``)."""

    tokens: list[ApiToken] = Field(default_factory=list)
    #: a request body larger than this is answered 413 before it is parsed
    max_body_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    #: requests handled at once; beyond it, 503 with Retry-After
    max_in_flight: int = Field(128, ge=1, le=10_000)
    #: what a 503 answer tells the client to wait (seconds, the Retry-After header)
    retry_after: int = Field(1, ge=1, le=3600)
    #: the largest topK a query or search may ask for
    max_top_k: int = Field(100, ge=1, le=1000)
    #: how long ``/readyz`` waits for each system before naming it unreachable
    ready_timeout: Duration = 5.0
    #: a connection whose request line and headers have not all arrived by then is closed
    header_timeout: Duration = 10.0
    #: a request whose body has not all arrived by then is answered 408 and closed
    body_timeout: Duration = 10.0

    @model_validator(mode="after")
    def _distinct(self) -> ServiceConfig:
        names = [t.name for t in self.tokens]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"token names must differ: {', '.join(repeated)} repeated")
        values = [t.token.get_secret_value() for t in self.tokens if t.token is not None]
        if len(values) != len(set(values)):
            raise ValueError("two tokens have the same value; give each its own")
        return self

    def configured(self) -> list[ApiToken]:
        """The tokens that have a value (the others' variables are unset)."""
        return [t for t in self.tokens if t.token is not None]
