"""The dashboard at any width, and the HTML report's plots (issue 23): below the width its
table needs, the terminal dashboard stacks its panels, with every figure whole; the report
breaks a line over an idle stretch, says "no failures" when there are none, and its captions
add to the plots' titles."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

from rich.console import Console

from cli.dashboard import frame, squeezed
from constellation.monitoring.panels import DashboardData, read_dashboard
from constellation.monitoring.report import broken, caption, render_html
from tests.support.monitoring import recorded


def _data(tmp_path: Path, **kwargs: object) -> DashboardData:
    plan, services, end = recorded(tmp_path, 10, **kwargs)  # type: ignore[arg-type]
    return read_dashboard(plan, services, range_seconds=900, now=end)  # type: ignore[arg-type]


def _screen(data: DashboardData, width: int) -> list[str]:
    console = Console(width=width, record=True, force_terminal=True, color_system=None)
    console.print(frame(data, live=True, console=console))
    return console.export_text().splitlines()


def test_every_figure_is_whole_at_80_120_and_200_columns(tmp_path: Path) -> None:
    data = _data(tmp_path, failures=2)
    figures = []
    for panel in data.panels:
        for values in ([v for _, v in points if v is not None] for points in panel.series.values()):
            figures += [values[-1], max(values)]
    for width in (80, 120, 200):
        lines = _screen(data, width)
        text = "\n".join(lines)
        assert all(len(line) <= width for line in lines), (width, text)
        assert "…" not in text, (width, text)  # no cell cut short
        for panel in data.panels:
            assert panel.panel.title.split(" (")[0].split()[0] in text
        for label in ("embed queue", "p95", "model_error", "v1"):
            assert label in text, (width, label)
        assert "q or Ctrl-C to quit" in text
    wide, narrow = _screen(data, 200), _screen(data, 80)
    assert any("┃ panel" in line for line in wide)  # the table where it fits
    assert not any("┃" in line for line in narrow)  # stacked panels at 80 columns
    # each series line at 80 columns keeps its label, its sparkline and both of its figures
    p95 = [line for line in narrow if re.match(r"\s+p95\s", line)]
    assert p95 and all(re.search(r"[▁▂▃▄▅▆▇█].*last \S+\s+max \S+$", line) for line in p95)


def test_a_sparkline_squeezed_keeps_its_peaks_and_its_gaps() -> None:
    axis = [None, None, 1.0, 9.0, 2.0, None, None, None, 3.0, 1.0]
    assert squeezed(axis, 5) == [None, 9.0, 2.0, None, 3.0]
    assert squeezed(axis, 20) == axis  # wider than the axis: as it is


def test_the_report_breaks_lines_over_an_idle_stretch(tmp_path: Path) -> None:
    points = [(0.0, 1.0), (10.0, 2.0), (200.0, 3.0), (210.0, 4.0)]
    times, values = broken(points, 25.0)
    assert len(values) == 5 and math.isnan(values[2]) and 10.0 < times[2] < 200.0
    assert broken(points[:2], 25.0) == ([0.0, 10.0], [1.0, 2.0])

    data = _data(tmp_path, pause=(3, 7))  # four minutes without a batch
    (batches,) = [p for p in data.panels if p.panel.key == "embedding_batch"]
    times = [t for t, _ in batches.series["mean"]]
    grain = max(data.step, data.snapshot_interval)
    assert max(b - a for a, b in itertools.pairwise(times)) > 2.5 * grain
    assert any(math.isnan(v) for v in broken(batches.series["mean"], 2.5 * grain)[1])


def test_the_report_says_no_failures_and_its_captions_add_to_the_titles(tmp_path: Path) -> None:
    data = _data(tmp_path)
    page = render_html(data)
    (errors,) = [p for p in data.panels if p.panel.key == "errors"]
    assert not errors.series and errors.panel.empty == "no failures"
    for panel in data.panels:
        text = caption(panel)
        assert text and panel.panel.title not in text
    assert "no data recorded" not in page
