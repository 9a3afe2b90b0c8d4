"""Every command's reference, written from the commands themselves: ``docs/commands.md``.

``python -m cli.reference`` rewrites the page; a test fails when the page and the commands
differ, so the reference cannot drift from ``--help``. Each command gets its help text, its
usage line and a table of its arguments and options (names, value, default, help), in the
order ``constellation --help`` lists them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
import typer.main

from cli.examples import EXAMPLES

PAGE = Path(__file__).resolve().parent.parent / "docs" / "commands.md"

HEADER = """# Commands

Every command, its arguments and options. Generated from the commands themselves by
`python -m cli.reference` (a test fails when this page and `--help` differ). Global options
(`--plan`, `--env`, `--debug`) may be given before or after the command; every report takes
`--json`. Exit codes: 0 ok, 1 a gate or check failed, 2 a usage error or bad input, 3
inconclusive, 4 an outside system out of reach.
"""


def _cell(text: str) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _help_text(command: Any) -> str:
    """The command's help without Rich markup or Typer's hidden-line marks."""
    text = (command.help or "").split("\f", 1)[0]
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def _param_row(param: Any, ctx: Any) -> str | None:
    """One argument or option as ``--help`` lists it: its names and value, then its help
    (with the default, as ``--help`` shows it)."""
    record = param.get_help_record(ctx)
    if record is None:
        return None
    names, help_text = record
    if param.param_type_name == "argument" and param.required:
        help_text = f"(required) {help_text}"
    return f"| `{_cell(names)}` | {_cell(help_text)} |"


def _section(path: list[str], command: Any, parent: Any) -> list[str]:
    name = " ".join(path)
    ctx = typer.Context(command, info_name=path[-1], parent=parent)
    lines = [f"## `{name}`", ""]
    help_text = _help_text(command)
    if help_text:
        lines += [help_text, ""]
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines += ["```", f"{name} {usage}".rstrip(), "```", ""]
    rows = [_param_row(p, ctx) for p in command.params if not p.hidden and p.name != "help"]
    if any(rows):
        lines += ["| argument or option | what it does |", "| --- | --- |"]
        lines += [row for row in rows if row]
        lines.append("")
    example_lines = EXAMPLES.get(" ".join(path[1:]), ())
    if example_lines:
        lines += ["Examples:", "", "```sh", *example_lines, "```", ""]
    if hasattr(command, "list_commands"):  # a group: its commands follow
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                lines += _section([*path, sub_name], sub, ctx)
    return lines


def render() -> str:
    """The whole page, as ``docs/commands.md`` should hold it."""
    from cli.main import app

    root: Any = typer.main.get_command(app)
    root_ctx = typer.Context(root, info_name="constellation")
    lines = [HEADER]
    groups: dict[str, list[str]] = {}
    for name in root.list_commands(root_ctx):
        command = root.get_command(root_ctx, name)
        if command is None or command.hidden:
            continue
        panel = getattr(command, "rich_help_panel", None) or "Other"
        groups.setdefault(panel, []).append(name)
    for panel, names in groups.items():
        lines += [f"# {panel}", ""]
        for name in names:
            command = root.get_command(root_ctx, name)
            assert command is not None
            lines += _section(["constellation", name], command, root_ctx)
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    """Rewrite ``docs/commands.md`` (or check it, with ``--check``: exit 1 when it differs)."""
    page = render()
    if "--check" in sys.argv[1:]:
        sys.exit(0 if PAGE.exists() and PAGE.read_text() == page else 1)
    PAGE.write_text(page)


if __name__ == "__main__":
    main()
