"""``constellation migrate status`` and ``constellation migrate phase N``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from cli import context, render
from cli.examples import epilog
from cli.output import Output, Tracker
from cli.params import DryRun, Force, Json, Reason, seconds
from phases.migrate import pause as pause_verbs
from phases.migrate import status as status_verb
from phases.migrate.phase import PhaseReport
from phases.migrate.phase1 import phase1
from phases.migrate.phase2 import Tick, phase2
from phases.migrate.phase3 import phase3
from phases.migrate.phase4 import phase4
from phases.migrate.status import MigrationStatus
from phases.migrate.transitions import describe

app = typer.Typer(help="Walk the four-phase migration.", no_args_is_help=True)


@app.command("status", epilog=epilog("migrate status"))
def status(
    ctx: typer.Context,
    json_out: Json = False,
    tail: Annotated[int, typer.Option("--tail", help="Journal entries to show.")] = 10,
) -> None:
    """Show the migration state, the current phase's gate with live values, and the journal."""
    app_ctx = context.get(ctx)
    report = status_verb.status(app_ctx.migration(write=False), journal_tail=tail)
    app_ctx.output.show(report, show_status)


def show_status(out: Output, report: MigrationStatus) -> None:
    render.state(out, report.state, report.summary)
    render.gate(out, report.gate)
    render.checks(out, report.checks)
    render.journal(out, report.journal)
    out.info(f"next: {report.next_step}")


@app.command("phase", epilog=epilog("migrate phase"))
def phase(
    ctx: typer.Context,
    number: Annotated[
        int,
        typer.Argument(
            min=1, max=4, help="1 parallel write, 2 read migration, 3 cutover, 4 cleanup."
        ),
    ],
    wait: Annotated[
        bool,
        typer.Option(
            "--wait", help="Phase 1: run (embedded) or wait for the worker until drained."
        ),
    ] = False,
    step: Annotated[
        bool, typer.Option("--step", help="Phase 2: take the next traffic step (default).")
    ] = False,
    to: Annotated[
        float | None, typer.Option("--to", help="Phase 2: go to this share of traffic.")
    ] = None,
    auto: Annotated[
        bool, typer.Option("--auto", help="Phase 2: every step, dwelling and watching the gate.")
    ] = False,
    dwell: Annotated[
        str | None,
        typer.Option(
            "--dwell", help="Phase 2 --auto: dwell per step (default: the plan's), e.g. 30s."
        ),
    ] = None,
    dry_run: DryRun = False,
    force: Force = False,
    reason: Reason = "",
    json_out: Json = False,
) -> None:
    """Run one phase of the migration (each refuses to start before the previous gate passed)."""
    if number != 1 and wait:
        raise typer.BadParameter("--wait is for phase 1")
    if number != 2 and (step or to is not None or auto or dwell):
        raise typer.BadParameter("--step, --to, --auto and --dwell are for phase 2")
    if sum([step, to is not None, auto]) > 1:
        raise typer.BadParameter("choose one of --step, --to, --auto")
    app_ctx = context.get(ctx)
    m = app_ctx.migration(write=not dry_run)
    out = app_ctx.output
    with out.tracker() as tracker:
        if number == 1:
            report = phase1(
                m,
                wait=wait,
                dry_run=dry_run,
                force=force,
                reason=reason,
                on_progress=tracker.advance,
            )
        elif number == 2:
            report = phase2(
                m,
                mode="auto" if auto else "to" if to is not None else "step",
                to=to,
                dwell=None if dwell is None else seconds(dwell),
                dry_run=dry_run,
                force=force,
                reason=reason,
                on_tick=_ticks(out, tracker),
            )
        elif number == 3:
            report = phase3(
                m, dry_run=dry_run, force=force, reason=reason, on_progress=tracker.advance
            )
        else:
            report = phase4(
                m, dry_run=dry_run, force=force, reason=reason, on_progress=tracker.advance
            )
    out.show(report, show_phase)
    render.finish(out, report.outcome, report.message)


def show_phase(out: Output, report: PhaseReport) -> None:
    render.steps(
        out, report.steps, f"phase {report.phase}" + (" (dry run)" if report.dry_run else "")
    )
    render.skipped(out, report.skipped)
    render.measured(out, report.measured)
    render.consistency(out, report.consistency)
    render.gate(out, report.gate)


@app.command("pause")
def pause(
    ctx: typer.Context, reason: Reason = "", dry_run: DryRun = False, json_out: Json = False
) -> None:
    """Hold phase 2 at its traffic step: promotions refused, a running --auto stops."""
    _hold(ctx, pause_verbs.pause, reason, dry_run)


@app.command("resume")
def resume(
    ctx: typer.Context, reason: Reason = "", dry_run: DryRun = False, json_out: Json = False
) -> None:
    """Let phase 2 take its traffic steps again (each still behind its gate)."""
    _hold(ctx, pause_verbs.resume, reason, dry_run)


def _hold(
    ctx: typer.Context,
    verb: Callable[..., pause_verbs.PauseReport],
    reason: str,
    dry_run: bool,
) -> None:
    app_ctx = context.get(ctx)
    report = verb(app_ctx.migration(write=False), reason=reason, dry_run=dry_run)
    app_ctx.output.show(report, show_pause)


def show_pause(out: Output, report: pause_verbs.PauseReport) -> None:
    render.state(out, report.state, describe(report.state))
    out.info(report.message)


#: a gate waiting for evidence says so at least this often (seconds), and when its count moves
WAITING_EVERY = 10.0


def _ticks(out: Output, tracker: Tracker) -> Callable[[Tick], None]:
    """Phase 2's progress: a dwell's ticks above the bars; a gate waiting for comparisons is
    said on stderr even without a terminal (the operator must know why nothing happens)."""
    said: dict[str, Any] = {"at": -WAITING_EVERY, "count": None}

    def on_tick(t: Tick) -> None:
        if not t.waiting:
            tracker.note(
                f"{t.traffic:.0%}: {t.elapsed:,.0f}/{t.dwell:,.0f}s, "
                f"{t.comparisons} comparisons, gate {t.gate.outcome}"
            )
            return
        if t.comparisons == said["count"] and t.elapsed - said["at"] < WAITING_EVERY:
            return
        said.update(at=t.elapsed, count=t.comparisons)
        where = f"before {t.target:.0%}" if t.target is not None else "at the last step"
        out.info(
            f"waiting for comparisons {where}: {t.comparisons} of "
            f"{t.gate.checks[0].bound.removeprefix('>= ')} so far "
            f"({t.elapsed:,.0f}s of at most {t.dwell:,.0f}s; the app's searches make them)"
        )

    return on_tick
