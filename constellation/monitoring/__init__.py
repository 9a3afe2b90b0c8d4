"""Monitoring of the embed service: metrics, snapshots, ``stats``, alerts and dashboards.

* :mod:`.metrics` — the service's Prometheus metrics (a recorder for the worker, a query hook);
* :mod:`.session` — a worker's metrics: ``/metrics`` server, gauge refresh, snapshots;
* :mod:`.store` — the SQLite file of snapshots and alert states (``<data_dir>/metrics.db``);
* :mod:`.queries` — the questions asked of the metrics, and their PromQL;
* :mod:`.readings` — answers from the snapshot file or from Prometheus's HTTP API;
* :mod:`.stats` — :func:`~.stats.read_stats`, the figures ``stats`` and the migration gates use;
* :mod:`.alerts` and :mod:`.notify` — alert rules with durations, and their notifications;
* :mod:`.rounds` — one ``monitor`` round: the figures, the rules evaluated, each change notified;
* :mod:`.panels`, :mod:`.export` and :mod:`.report` — dashboards for Grafana, the terminal, HTML.

Nothing here imports Typer or Rich; matplotlib is imported only when a report is written.
"""
