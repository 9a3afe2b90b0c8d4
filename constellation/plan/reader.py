"""Reading a plan's YAML: line numbers, ``${VAR}`` interpolation and ``--env`` overrides.

This module turns the text of a plan into plain Python data plus a map from each field path to
the line it came from, so that validation errors elsewhere can name file, line and field.
It knows nothing of the plan's schema; :mod:`constellation.plan` does.

Interpolation, as in docker compose and wrangler:

* ``${VAR}`` is the value of ``VAR``; an unset ``VAR`` is an error naming it.
* ``${VAR:-default}`` is ``default`` when ``VAR`` is unset or empty.
* ``$${`` is a literal ``${``.

Interpolation applies to string values only (never to keys), before validation, so
``max_batch_size: ${BATCH:-20}`` validates as the integer 20.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from constellation.errors import PlanIssue

FieldPath = tuple[str | int, ...]

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
ENVIRONMENTS_KEY = "environments"


@dataclass
class PlanSource:
    """The data read from one plan file, with the line of every field path."""

    file: Path
    data: dict[str, Any]
    lines: dict[FieldPath, int] = field(default_factory=dict)
    issues: list[PlanIssue] = field(default_factory=list)

    def line_of(self, path: FieldPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor the file mentions."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def issue(self, path: FieldPath, message: str) -> PlanIssue:
        return PlanIssue(str(self.file), self.line_of(path), dotted(path), message)


def dotted(path: FieldPath) -> str:
    """``("models", 1, "name")`` → ``models.1.name``."""
    return ".".join(str(part) for part in path)


def read_plan_file(
    file: Path, env_name: str | None, environ: Mapping[str, str] | None = None
) -> PlanSource:
    """Read ``file``, interpolate variables and apply the ``environments.<env_name>`` overrides."""
    environ = os.environ if environ is None else environ
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise_plan_issue(file, None, "", f"cannot read the plan: {exc.strerror or exc}", exc)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise_plan_issue(file, line, "", f"not valid YAML: {problem}", exc)

    source = PlanSource(file=file, data={})
    if node is None:
        source.issues.append(PlanIssue(str(file), None, "", "the plan is empty"))
        return source
    data = _to_python(node, (), source, environ)
    if not isinstance(data, dict):
        source.issues.append(source.issue((), "the plan must be a mapping of sections"))
        return source
    source.data = data
    _apply_environment(source, env_name)
    return source


def raise_plan_issue(
    file: Path, line: int | None, field_path: str, message: str, cause: BaseException
) -> Any:
    from constellation.errors import PlanError

    raise PlanError([PlanIssue(str(file), line, field_path, message)]) from cause


def _to_python(
    node: yaml.Node, path: FieldPath, source: PlanSource, environ: Mapping[str, str]
) -> Any:
    source.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(key_node)
            if not isinstance(key, str | int) or isinstance(key, bool):
                source.issues.append(source.issue(path, f"key {key!r} must be a name or number"))
                continue
            if key in result:
                source.lines[(*path, key)] = key_node.start_mark.line + 1
                source.issues.append(source.issue((*path, key), "duplicate key"))
                continue
            source.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _to_python(value_node, (*path, key), source, environ)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*path, i), source, environ) for i, item in enumerate(node.value)]
    value = _construct(node)
    if isinstance(value, str):
        return _interpolate(value, path, source, environ)
    return value


def _construct(node: yaml.Node) -> Any:
    """The Python value of one scalar node, typed as YAML 1.1 says (``20`` → int)."""
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def _interpolate(
    value: str, path: FieldPath, source: PlanSource, environ: Mapping[str, str]
) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        current = environ.get(name)
        if current:
            return current
        if default is not None:
            return default
        if current is None:
            source.issues.append(
                source.issue(
                    path,
                    f"environment variable {name} is not set "
                    f"(export it, or write ${{{name}:-default}} in the plan)",
                )
            )
        return ""

    return _VAR.sub(substitute, value)


def _apply_environment(source: PlanSource, env_name: str | None) -> None:
    environments = source.data.pop(ENVIRONMENTS_KEY, None) or {}
    if not isinstance(environments, dict):
        source.issues.append(
            source.issue((ENVIRONMENTS_KEY,), "must map environment names to overrides")
        )
        return
    base_name = source.data.get("environment", "development")
    if env_name is None or (env_name == base_name and env_name not in environments):
        source.data.setdefault("environment", base_name)
        return
    if env_name not in environments:
        known = sorted({str(base_name), *map(str, environments)})
        source.issues.append(
            PlanIssue(
                str(source.file),
                source.line_of((ENVIRONMENTS_KEY,)),
                "--env",
                f"unknown environment {env_name!r}; this plan has: {', '.join(known)}",
            )
        )
        return
    override = environments[env_name] or {}
    if not isinstance(override, dict):
        source.issues.append(
            source.issue((ENVIRONMENTS_KEY, env_name), "overrides must be a mapping")
        )
        return
    prefix: FieldPath = (ENVIRONMENTS_KEY, env_name)
    source.data = _merge(source.data, override, (), prefix, source)
    source.data["environment"] = env_name


def _merge(
    base: dict[Any, Any],
    override: dict[Any, Any],
    path: FieldPath,
    prefix: FieldPath,
    source: PlanSource,
) -> dict[Any, Any]:
    """Deep-merge ``override`` into ``base``: mappings merge, everything else is replaced.

    The line map is rewritten so that an overridden field points at the override's line.
    """
    merged = copy.deepcopy(base)
    for key, value in override.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value, here, prefix, source)
        else:
            merged[key] = value
            for known in list(source.lines):
                if known[: len(prefix) + len(here)] == (*prefix, *here):
                    source.lines[known[len(prefix) :]] = source.lines[known]
        line = source.lines.get((*prefix, *here))
        if line is not None:
            source.lines[here] = line
    return merged
