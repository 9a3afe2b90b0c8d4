"""The Rich rendering of worker_throughput.py's results: corpus, throughput, detail, memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def render(results: dict[str, Any]) -> None:
    """Rich tables per corpus (description, throughput, worker detail), then memory."""
    from rich.console import Console

    console = Console()
    console.print(
        f"{results['cpus']} CPUs, load average {_load(results['load_average'])} before and "
        f"{_load(results['load_average_after'])} after (other work on the machine)"
    )
    for name, entry in results["corpora"].items():
        console.rule(f"corpus: {name}")
        _render_corpus(console, entry["corpus"])
        _render_throughput(console, results, entry)
        _render_detail(console, entry["worker"])
    if results.get("memory"):
        _render_memory(console, results)


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


def _render_corpus(console: Any, corpus: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"Corpus: {corpus['notes']} notes, {corpus['users']} users")
    for column in ("", "p50", "p95", "max"):
        table.add_column(column, justify="right")
    for unit in ("chars", "tokens"):
        spread = corpus[unit]
        table.add_row(unit, *(f"{spread[k]:.0f}" for k in ("p50", "p95", "max")))
    console.print(table)
    console.print(
        f"{corpus['over_model_limit']:.1%} of notes exceed the model's "
        f"{corpus['model_limit_tokens']} tokens (truncated by worker and bare model alike)"
    )


def _render_throughput(console: Any, results: dict[str, Any], entry: dict[str, Any]) -> None:
    from rich.table import Table

    bare = entry["bare"]
    table = Table(
        title=f"Throughput: worker batches of {results['batch_size']}, "
        f"max_concurrency {results['concurrency']}; bare model: one sorted encode, "
        f"passes of {results['passes']}"
    )
    columns = (
        "",
        "texts",
        "seconds",
        "texts/s",
        "x bare",
        "x bare to last stored",
        "x best bare",
        "CPU ms/text",
    )
    for column in columns:
        table.add_column(column, justify="right")
    streams = bare.get("streams", 1)
    configurations = [
        ("rate", "bare torch, one call"),
        ("streams_rate", f"bare torch, {streams} streams"),
        ("onnx_rate", "bare ONNX, 1 session"),
        ("onnx_streams_rate", f"bare ONNX, {streams} sessions"),
    ]
    configurations = [(key, label) for key, label in configurations if key in bare]
    best = bare.get("best", max(bare[key] for key, _ in configurations))
    for key, label in configurations:
        for when in ("before", "after"):
            rate = bare[f"{key}_{when}"]
            table.add_row(
                f"{label}, {when}", str(bare["texts"]), f"{bare['texts'] / rate:.1f}", f"{rate:.1f}"
            )
    for key, label in configurations:
        table.add_row(
            f"{label}, mean",
            "",
            "",
            f"{bare[key]:.1f}",
            f"{bare[key] / bare['rate']:.2f}",
            "",
            f"{bare[key] / best:.2f}",
            f"{bare['cpu_ms_per_text']:.1f}" if key == "rate" else "",
        )
    for name, run in entry["worker"].items():
        ratio = run["ratio"]
        table.add_row(
            f"worker: {name}",
            str(run["texts"]),
            f"{run['seconds']:.1f}",
            f"{run['rate']:.1f}",
            f"[{'green' if ratio >= 0.9 else 'red'}]{ratio:.2f}[/]",
            f"{run['ratio_to_last_stored']:.2f}",
            f"{run.get('ratio_to_best', ratio):.2f}",
            f"{run['cpu_ms_per_text']:.1f}",
        )
    langchain = entry.get("langchain") or {}
    for name, run in langchain.items():
        table.add_row(
            f"LangChain index(), {name}, batches of {run['batch_size']}",
            str(run["texts"]),
            f"{run['seconds']:.1f}",
            f"{run['rate']:.1f}",
            f"{run['ratio']:.2f}",
            "",
            f"{run['ratio_to_best']:.2f}",
            f"{run['cpu_ms_per_text']:.1f}",
        )
    console.print(table)
    if "embedded" in entry["worker"]:
        ours = entry["worker"]["embedded"]
        met = ours["ratio_to_best"] >= 0.9
        console.print(
            f"worker (embedded, the plan's model) against the best bare configuration: "
            f"[{'green' if met else 'red'}]{ours['ratio_to_best']:.2f} x[/]"
        )
        for name, run in langchain.items():
            ahead = ours["rate"] > run["rate"]
            again = run["unchanged"]
            console.print(
                f"against LangChain's index() ({name}): [{'green' if ahead else 'red'}]"
                f"{ours['rate'] / run['rate']:.2f} x[/] ({ours['rate']:.1f} against "
                f"{run['rate']:.1f} texts/s); LangChain unchanged: {again['rate']:.0f} jobs/s, "
                f"{again['skipped']} skipped, {again['model_calls']} model calls, "
                f"{again['records_written']} records written"
            )
    drift = abs(bare["rate_before"] - bare["rate_after"]) / bare["rate"]
    if drift > 0.05:
        console.print(
            f"[yellow]the bare model's two measurements differ by {drift:.0%}: the machine was "
            "busy, and the ratios are only as good as that[/]"
        )
    checked = dict(entry["worker"])
    if entry.get("pipeline"):
        checked["pipeline alone"] = entry["pipeline"]
    for name, run in checked.items():
        if run["outcomes"]["failed"]:
            console.print(
                f"[red]{name}: failed attempts ({_failed(run['outcomes'])}) were retried after "
                "the visibility timeout, and its time includes that wait[/]"
            )
        if run["texts"] != run["sent"] or run["left_in_queue"]:
            console.print(
                f"[red]{name}: {run['texts']} records stored of {run['sent']} jobs sent, "
                f"{run['left_in_queue']} left in the queue[/]"
            )
    for name, run in entry["worker"].items():
        again = run.get("unchanged")
        if again:
            ok = again["rate"] >= 3000 and not again["model_calls"] and not again["records_written"]
            console.print(
                f"{name}, the same {again['sent']} jobs again: [{'green' if ok else 'red'}]"
                f"{again['rate']:.0f} jobs/s[/], the median of {again['rounds']} rounds "
                f"({', '.join(f'{r:.0f}' for r in again['round_rates'])}; "
                f"{again['rate_to_last_done']:.0f} to the last batch done), {again['skipped']} "
                "skipped each, "
                f"{again['model_calls']} model calls, {again['records_written']} records written in all"
            )
    if "embedded" in entry["worker"]:
        target = entry["worker"]["embedded"]["ratio"] >= 0.9
        console.print(
            f"target, embedded >= 0.9 x bare: [{'green' if target else 'red'}]"
            f"{'met' if target else 'missed'}[/]"
        )
    if entry.get("pipeline"):
        pipe = entry["pipeline"]
        console.print(
            f"pipeline alone (embedded, model stubbed): {pipe['rate_to_last_stored']:.0f} "
            "texts/s to the last stored, "
            f"{pipe['cpu_ms_per_text']:.2f} ms CPU per text (drain tail "
            f"{pipe['drain_tail_seconds']:.2f} s); the bare model takes "
            f"{1000 / bare['rate']:.1f} ms per text"
        )


def _render_detail(console: Any, runs: dict[str, dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="Worker detail (ms)")
    table.add_column("")
    for name in runs:
        table.add_column(name, justify="right")
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("job latency p50/p95/p99, sent→stored", lambda r: _triple(r["job_latency_ms"])),
        ("batch time p50/p95/p99", lambda r: _triple(r["batch_ms"])),
        ("batch model time p50/p95/p99 (with lock wait)", lambda r: _triple(r["batch_model_ms"])),
        ("model encode p50/p95/p99 (compute only)", lambda r: _triple(r["encode_ms"])),
        ("model busy, share of wall time", lambda r: f"{r['model_busy_share']:.0%}"),
        ("model texts/s while encoding", lambda r: f"{r['model_rate_inside_worker']:.1f}"),
        (
            "drain tail: last batch stored → run() returned",
            lambda r: f"{1000 * r['drain_tail_seconds']:.0f}",
        ),
        ("enqueue texts/s (not in the ratio)", lambda r: f"{r['enqueue_rate']:.0f}"),
        ("batches", lambda r: str(r["batches"])),
        ("failed attempts (retried)", lambda r: _failed(r["outcomes"])),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(run) for run in runs.values()))
    console.print(table)
    console.print(
        "job latency counts the wait in the backlog: every job is queued before the worker starts"
    )


def _render_memory(console: Any, results: dict[str, Any]) -> None:
    from rich.table import Table

    concurrency = results["concurrency"]
    table = Table(title=f"Worker memory (embedded, max_concurrency {concurrency}, fresh process)")
    columns = ("queued", "handled", "left", "RSS before run", "RSS peak in run", "Python peak")
    for column in (*columns, "texts/s"):
        table.add_column(column, justify="right")
    for m in results["memory"]:
        table.add_row(
            str(m["backlog"]),
            str(m["processed"]),
            str(m["left_in_queue"]),
            f"{m['rss_before_run_mib']:.0f} MiB",
            f"{m['run_peak_mib']:.0f} MiB",
            f"{m['python_peak_mib']:.1f} MiB",
            f"{m['rate']:.1f}",
        )
    console.print(table)
    growth = results["memory_growth_mib"]
    small, large = results["memory"]
    console.print(
        f"with {large['backlog']} queued instead of {small['backlog']}: RSS peak "
        f"{growth['rss']:+.0f} MiB (noisy: allocator arenas), Python peak "
        f"{growth['python']:+.2f} MiB (exact)"
    )


def _failed(outcomes: dict[str, Any]) -> str:
    failed = outcomes["failed"]
    return ", ".join(f"{n} {kind}" for kind, n in failed.items()) if failed else "0"


def _triple(p: dict[str, float]) -> str:
    return f"{p['p50']:.0f} / {p['p95']:.0f} / {p['p99']:.0f}"
