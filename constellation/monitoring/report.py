"""A static HTML page with real plots of the recorded series, to share after a migration step.

Each panel is drawn with matplotlib (its object API and the Agg canvas: no pyplot, no display,
no global figure state) into a PNG embedded as a base64 ``<img>``, so the page is one file.

The page's window is the data's (:func:`read_report`): five minutes of figures in an hour's
range are drawn over those five minutes, not squeezed against the edge. Each panel keeps its
own scale: an alert line far above the data is named, not drawn (a queue of 12 stays visible
under a threshold of 1,000). The header table's percentiles are read from the plotted series,
so the table and the plots never disagree.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from constellation.errors import MonitoringError
from constellation.monitoring.panels import DashboardData, PanelData, read_dashboard

if TYPE_CHECKING:
    from constellation.plan import Plan
    from constellation.services import Services

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; } .meta { color: #666; }
table { border-collapse: collapse; margin: 1rem 0; }
td, th { border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; }
.panels { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 1rem; }
figure { margin: 0; } img { width: 100%; border: 1px solid #eee; }
"""


#: points per plot
PLOT_POINTS = 120
#: an alert line more than this many times above a panel's data is named instead of drawn
OFF_SCALE = 3.0
#: no point for this many grains (the seconds between two points) breaks a line
GAP = 2.5


def read_report(
    plan: Plan, services: Services, *, range_seconds: float = 3600.0, now: float | None = None
) -> DashboardData:
    """The figures for the page: over ``range_seconds``, narrowed to the time that has data
    (with a margin; at least four snapshot intervals), read again at that finer grain."""
    data = read_dashboard(plan, services, range_seconds=range_seconds, points=PLOT_POINTS, now=now)
    span = data.span()
    if span is None:
        return data
    first, last = span
    width = max(last - first, 4 * plan.monitoring.snapshot_interval)
    if width * 1.5 >= range_seconds:
        return data
    margin = width * 0.05
    return read_dashboard(
        plan,
        services,
        range_seconds=width + 2 * margin,
        points=PLOT_POINTS,
        now=last + margin,
    )


def _top(panel: PanelData) -> float | None:
    return max((v for points in panel.series.values() for _, v in points), default=None)


def _off_scale(panel: PanelData) -> bool:
    """The alert line is far above the data: drawing it would flatten the data to nothing."""
    top = _top(panel)
    return (
        panel.threshold is not None
        and top is not None
        and panel.threshold > OFF_SCALE * max(top, 1.0)
    )


def caption(panel: PanelData) -> str:
    """What a panel's plot does not say itself: how to read it, and an alert line that is not
    drawn because it is off the panel's scale (the plot's own title names the panel)."""
    parts = [panel.panel.about] if panel.panel.about else []
    if _off_scale(panel):
        parts.append(f"The alert (above {panel.threshold:g}) is far above this scale: not drawn.")
    return " ".join(parts)


def broken(points: list[tuple[float, float]], gap: float) -> tuple[list[float], list[float]]:
    """A line's times and values with a break (NaN) wherever no point came for more than
    ``gap`` seconds: an idle stretch is drawn empty, not as a slope from the last value before
    it to the first after it."""
    times: list[float] = []
    values: list[float] = []
    for i, (t, v) in enumerate(points):
        if i and t - points[i - 1][0] > gap:
            times.append((t + points[i - 1][0]) / 2)
            values.append(float("nan"))
        times.append(t)
        values.append(v)
    return times, values


def plot_png(panel: PanelData, start: float, end: float, grain: float) -> bytes:
    """One panel as a PNG; ``grain``: the seconds between two points (a longer gap is a break)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, DateFormatter, date2num
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.0, 3.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for label, points in panel.series.items():
        if points:
            times, values = broken(points, GAP * grain)
            xs = date2num([datetime.fromtimestamp(t, tz=UTC) for t in times])
            ax.plot(xs, values, marker="." if len(points) < 3 else None, label=label)
    top = _top(panel)
    if panel.threshold is not None and not _off_scale(panel):
        ax.axhline(panel.threshold, color="red", linestyle="--", linewidth=1, label="alert")
    if not any(panel.series.values()):
        ax.text(0.5, 0.5, panel.panel.empty, ha="center", va="center", transform=ax.transAxes)
    elif top is not None:
        ax.set_ylim(bottom=0)
    ax.set_xlim(*date2num([datetime.fromtimestamp(t, tz=UTC) for t in (start, end)]))
    ax.set_title(panel.panel.title, fontsize=11)
    ax.xaxis.set_major_locator(AutoDateLocator(tz=UTC))
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M:%S", tz=UTC))
    ax.set_xlabel("time (UTC)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def plotted(data: DashboardData, panel: str, line: str) -> tuple[float | None, float | None]:
    """The latest and the highest value of one plotted line (None where it has none)."""
    for p in data.panels:
        if p.panel.key == panel:
            values = [v for _, v in p.series.get(line, [])]
            return (values[-1], max(values)) if values else (None, None)
    return None, None


def _percentiles(data: DashboardData, panel: str) -> tuple[str, str]:
    """``p50 / p95 / p99`` of a percentile panel as plotted: the latest points, the highest."""
    found = [plotted(data, panel, f"p{p}") for p in (50, 95, 99)]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f} ms"

    return (
        " / ".join(ms(latest) for latest, _ in found),
        " / ".join(ms(highest) for _, highest in found),
    )


def _summary(data: DashboardData) -> list[tuple[str, str]]:
    stats = data.stats
    w = stats.window

    def show(value: object, suffix: str = "") -> str:
        return "-" if value is None else f"{value}{suffix}"

    processing_last, processing_top = _percentiles(data, "processing")
    latency_last, latency_top = _percentiles(data, "latency")
    query_last, query_top = _percentiles(data, "query")

    return [
        ("queue depth", show(stats.queue.total)),
        ("dead-letter depth", show(stats.dead_letter.total)),
        (
            "processed / skipped / failed",
            f"{stats.jobs.processed} / {stats.jobs.skipped} / {stats.jobs.failed}",
        ),
        (
            "failed by reason",
            ", ".join(f"{k}: {v}" for k, v in stats.jobs.failed_by_reason.items()) or "-",
        ),
        (f"error rate ({w.seconds:g}s)", show(w.error_rate)),
        ("batch processing p50 / p95 / p99, latest plotted", processing_last),
        ("batch processing p50 / p95 / p99, highest plotted", processing_top),
        ("enqueue to stored p50 / p95 / p99, latest plotted", latency_last),
        ("enqueue to stored p50 / p95 / p99, highest plotted", latency_top),
        (
            "mean embedding / upsert batch",
            f"{show(w.mean_embedding_batch_size)} / {show(w.mean_upsert_batch_size)}",
        ),
        ("query p50 / p95 / p99, latest plotted", query_last),
        ("query p50 / p95 / p99, highest plotted", query_top),
        ("index size", ", ".join(f"v{v}: {n}" for v, n in stats.index_size.items()) or "-"),
    ]


def render_html(data: DashboardData) -> str:
    """The whole page."""
    when = datetime.fromtimestamp(data.end, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    since = datetime.fromtimestamp(data.start, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in _summary(data)
    )
    figures = []
    grain = max(data.step, data.snapshot_interval)
    for panel in data.panels:
        png = base64.b64encode(plot_png(panel, data.start, data.end, grain)).decode("ascii")
        title = html.escape(panel.panel.title)
        figures.append(
            f'<figure id="{panel.panel.key}"><img src="data:image/png;base64,{png}" '
            f'alt="{title}"><figcaption>{html.escape(caption(panel))}</figcaption></figure>'
        )
    title = html.escape(f"Constellation: {data.plan} ({data.environment})")
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{_STYLE}</style></head><body>\n<h1>{title}</h1>\n"
        f'<p class="meta">{since} to {when} · {html.escape(data.cadence())} · '
        f"{html.escape(data.source)}</p>\n<table>{rows}</table>\n"
        f'<div class="panels">\n' + "\n".join(figures) + "\n</div>\n</body></html>\n"
    )


def write_report(data: DashboardData, path: Path) -> Path:
    """Write the page to ``path`` (:class:`MonitoringError` naming it when that fails: a full
    disk, a folder we may not write, a device such as ``/dev/full``)."""
    page = render_html(data)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            out.write(page)
    except OSError as exc:
        raise MonitoringError(
            f"cannot write the dashboard to {path}: {exc.strerror or exc}",
            "give --html a file in a folder with space that you may write",
        ) from exc
    return path
