"""The CLI's one output object: a result is drawn by its renderer, or printed as JSON."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

from rich.console import Console

from cli.output import Output


@dataclass
class Report:
    name: str
    count: int

    __json_properties__ = ("empty",)

    @property
    def empty(self) -> bool:
        return self.count == 0


def draw(out: Output, report: Report) -> None:
    out.result(f"{report.name}: {report.count}")


def output(json_mode: bool) -> tuple[Output, io.StringIO, io.StringIO]:
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(
        json_mode,
        stdout=Console(file=stdout, width=80, no_color=True),
        stderr=Console(file=stderr, width=80, no_color=True),
    )
    return out, stdout, stderr


def test_a_result_is_drawn_by_its_renderer() -> None:
    out, stdout, stderr = output(json_mode=False)
    out.show(Report("queue", 3), draw)
    assert (stdout.getvalue(), stderr.getvalue()) == ("queue: 3\n", "")


def test_json_mode_prints_the_fields_and_properties_and_never_calls_the_renderer() -> None:
    out, stdout, stderr = output(json_mode=True)
    out.show(Report("queue", 0), draw)
    assert json.loads(stdout.getvalue()) == {"name": "queue", "count": 0, "empty": True}
    assert stderr.getvalue() == ""


def test_json_mode_takes_another_shape_where_the_command_gives_one() -> None:
    out, stdout, _ = output(json_mode=True)
    out.show(Report("queue", 2), draw, as_json=lambda r: {"total": r.count})
    assert json.loads(stdout.getvalue()) == {"total": 2}
