"""Field types shared by every plan section: durations, paths, optional values, adapters."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
)

from constellation.errors import AdapterError
from constellation.plan import adapters

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: Any) -> Any:
    """Seconds from a number or a string such as ``500ms``, ``30s``, ``15m``, ``7d``."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"expected a duration such as 30, 30s, 15m, 2h or 7d (got {value!r})")
        return float(match.group(1)) * _UNITS[match.group(2)]
    return value


def _resolve_path(value: Path | None, info: ValidationInfo) -> Path | None:
    """Relative paths are relative to the plan file's folder, so a copied plan is self-contained."""
    if value is None:
        return None
    base = (info.context or {}).get("base_dir")
    value = value.expanduser()
    return value if value.is_absolute() or base is None else (Path(base) / value).resolve()


def _blank_to_none(value: Any) -> Any:
    """``${VAR:-}`` yields an empty string: for an optional setting that means "not set"."""
    return None if isinstance(value, str) and not value.strip() else value


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]
OptStr = Annotated[str | None, BeforeValidator(_blank_to_none)]
OptSecret = Annotated[SecretStr | None, BeforeValidator(_blank_to_none)]
PlanPath = Annotated[Path, AfterValidator(_resolve_path)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Section(BaseModel):
    """Base of every plan section: frozen, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def adapter_name(port: str) -> Any:
    def check(name: str) -> str:
        try:
            return adapters.check_name(port, name)
        except AdapterError as exc:
            raise ValueError(exc.message) from None

    return AfterValidator(check)
