"""Figures that agree (issue 16): batch-size percentiles within ``max_batch_size``, query
latency recorded by the app's router and the client, one way of naming the snapshot interval,
and an HTML report whose window, scales and header follow its data."""

from __future__ import annotations

import re
from pathlib import Path

from constellation import Client
from constellation.migration.source import Note
from constellation.monitoring.metrics import size_buckets
from constellation.monitoring.panels import read_dashboard
from constellation.monitoring.report import plotted, read_report, render_html
from constellation.monitoring.stats import read_stats
from tests.support.migration import started
from tests.support.monitoring import recorded

HOUR = 3600.0


def test_batch_size_buckets_end_at_max_batch_size() -> None:
    assert size_buckets(20)[-2:] == (20, float("inf"))
    assert all(b <= 20 for b in size_buckets(20)[:-1])
    assert size_buckets(500)[-2:] == (500, float("inf"))


def test_batch_size_percentiles_never_exceed_max_batch_size(tmp_path: Path) -> None:
    plan, services, end = recorded(tmp_path, 5)  # every batch full: 20 of max_batch_size 20
    data = read_dashboard(plan, services, range_seconds=300, points=10, now=end)  # type: ignore[arg-type]
    (panel,) = [p for p in data.panels if p.panel.key == "embedding_batch"]
    p95 = [v for _, v in panel.series["p95"]]
    assert p95 and max(p95) <= plan.consumer.max_batch_size
    assert min(p95) > plan.consumer.max_batch_size - 1  # and close to it: the batches are full


def test_the_report_window_follows_the_data_and_each_panel_keeps_its_scale(
    tmp_path: Path,
) -> None:
    plan, services, end = recorded(tmp_path, 5, queue=12)
    # an hour's range, asked for an hour after the five minutes of data
    data = read_report(plan, services, range_seconds=HOUR, now=end + HOUR - 300)  # type: ignore[arg-type]
    first, last = data.span() or (0.0, 0.0)
    assert data.end - data.start < 600  # the data's five minutes, not the hour
    assert data.start <= first and last <= data.end
    page = render_html(data)
    # the queue panel: a depth of 12 under an alert line at 1,000 is named, not drawn
    queue = re.search(r'<figure id="queue">.*?<figcaption>([^<]*)</figcaption>', page)
    assert queue is not None and "alert (above 1000) is far above this scale" in queue.group(1)
    assert "Queue depth" not in queue.group(1)  # the plot's title says that: no repeat
    # the header table's percentiles are the plotted ones
    latest = [plotted(data, "processing", f"p{p}")[0] for p in (50, 95, 99)]
    assert all(v is not None for v in latest)
    row = re.search(r"processing p50 / p95 / p99, latest plotted</th><td>([^<]+)</td>", page)
    assert row is not None
    assert row.group(1) == " / ".join(f"{v:,.0f} ms" for v in latest if v is not None)
    # the cadence is named once, the same way as on the terminal dashboard
    assert page.count(data.cadence()) == 1 and page.count("a point every") == 1
    assert data.cadence() == f"a point every {max(data.step, 0.2):g}s"


def test_searches_through_the_apps_router_and_the_client_are_timed(tmp_path: Path) -> None:
    with started(tmp_path) as m:
        client = Client(m.plan, m.services)
        router = client.router()
        for i in range(5):
            router.search(f"python {i}", "user-01")
        client.query("python", "user-01")
        router.write(Note("n-new", "user-01", "a new note", 5, 5))
        client.close()
        stats = read_stats(m.plan, m.services)
    assert stats.window.query_p95_ms is not None and stats.window.query_p95_ms > 0
