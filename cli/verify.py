"""``constellation verify``: the deployment verification checklist."""

from __future__ import annotations

from functools import partial
from typing import Annotated

import typer

from cli import context
from cli.output import Output
from cli.params import Json
from phases.operate.verify import VerifyReport, runs_inline
from phases.operate.verify import verify as verify_deployment


def verify(
    ctx: typer.Context,
    inline: Annotated[
        bool,
        typer.Option(
            "--inline",
            help="Process the test job with an in-process worker (the default on the embedded "
            "plan when no worker is running).",
        ),
    ] = False,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Check a running service (`constellation serve`) over HTTP."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="CONSTELLATION_TOKEN",
            show_envvar=True,
            help="Bearer token for --url (a write token: the check embeds a test note).",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the test job to be stored.")
    ] = 120.0,
    json_out: Json = False,
) -> None:
    """Check plan, queues, index and model, then a round trip through the service."""
    app_ctx = context.get(ctx)
    out = app_ctx.output
    if url is not None:
        if inline:
            raise typer.BadParameter("--inline checks the plan's systems; --url a running service")
        from phases.operate.verify_url import verify_service

        with out.status(f"verifying {url}") as update:
            report = verify_service(
                url,
                token,
                timeout=timeout,
                on_check=lambda c: update(f"{c.name}: {'pass' if c.passed else 'fail'}"),
            )
        out.show(report, partial(show_checklist, title=f"verify {url}"))
        if not report.passed:
            raise typer.Exit(1)
        return
    plan = app_ctx.plan()
    in_process = runs_inline(plan, True if inline else None)
    with out.status("verifying") as update:
        report = verify_deployment(
            plan,
            app_ctx.services(write=in_process),
            inline=in_process,
            timeout=timeout,
            on_check=lambda c: update(f"{c.name}: {'pass' if c.passed else 'fail'}"),
        )
    out.show(report, partial(show_checklist, title=f"verify {plan.name} ({plan.environment})"))
    if not report.passed:
        failed = next(c for c in report.checks if not c.passed)
        out.error(f"verify failed: {failed.name}: {failed.detail}")
        raise typer.Exit(1)


def show_checklist(out: Output, report: VerifyReport, *, title: str) -> None:
    out.table(
        ["check", "result", "detail"],
        [(c.name, "pass" if c.passed else "fail", c.detail) for c in report.checks],
        title=title,
    )
