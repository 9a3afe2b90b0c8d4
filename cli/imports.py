"""``constellation import git|folder|notion``: files and pages as notes, sent when they change."""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from cli import context
from cli.output import Output
from cli.params import Json
from phases import imports as verbs
from phases.imports import ImportReport

app = typer.Typer(
    help="Import notes from a git repository, a folder or a Notion export (what changed only).",
    no_args_is_help=True,
)

User = Annotated[
    str | None,
    typer.Option("--user", help="The notes' user id (default: the login name running this)."),
]
Name = Annotated[
    str | None,
    typer.Option(
        "--name",
        help="The source's stable name: imports of one name and user diff against each other "
        "(default: the path; for Notion, one workspace per user).",
    ),
]
Glob = Annotated[
    list[str] | None,
    typer.Option("--glob", help="Only paths matching this pattern, e.g. '*.md' (repeatable)."),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="List what would be sent and removed; change nothing.")
]
AllowEmpty = Annotated[
    bool,
    typer.Option(
        "--allow-empty", help="Accept a source that lists nothing (removes every note it sent)."
    ),
]


@app.command("git")
def git(
    ctx: typer.Context,
    repo: Annotated[Path, typer.Argument(help="A local git repository (working copy or bare).")],
    user: User = None,
    glob: Glob = None,
    ref: Annotated[str, typer.Option("--ref", help="The branch or commit to import.")] = "HEAD",
    name: Name = None,
    dry_run: DryRun = False,
    allow_empty: AllowEmpty = False,
    json_out: Json = False,
) -> None:
    """Import a repository's files as notes (created: each file's last commit time)."""
    verb = functools.partial(verbs.import_git, repo=repo, globs=glob or (), ref=ref)
    _import(ctx, verb, user, name, dry_run, allow_empty)


@app.command("folder")
def folder(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="A folder of text files.")],
    user: User = None,
    glob: Glob = None,
    name: Name = None,
    dry_run: DryRun = False,
    allow_empty: AllowEmpty = False,
    json_out: Json = False,
) -> None:
    """Import a folder's files as notes (created: each file's modification time)."""
    verb = functools.partial(verbs.import_folder, folder=directory, globs=glob or ())
    _import(ctx, verb, user, name, dry_run, allow_empty)


@app.command("notion")
def notion(
    ctx: typer.Context,
    export: Annotated[Path, typer.Argument(help="Notion's export zip (Markdown & CSV).")],
    user: User = None,
    name: Name = None,
    dry_run: DryRun = False,
    allow_empty: AllowEmpty = False,
    json_out: Json = False,
) -> None:
    """Import a Notion export's pages and database rows as notes (created: last edit time)."""
    _import(
        ctx, functools.partial(verbs.import_notion, export=export), user, name, dry_run, allow_empty
    )


def _import(
    ctx: typer.Context,
    verb: Callable[..., ImportReport],
    user: str | None,
    name: str | None,
    dry_run: bool,
    allow_empty: bool,
) -> None:
    """Run one import verb (its source already bound) with the options every import takes."""
    app_ctx = context.get(ctx)
    out = app_ctx.output
    m = app_ctx.migration(write=not dry_run)
    with out.tracker() as tracker:
        try:
            report = verb(
                m,
                user_id=user or getpass.getuser(),
                name=name,
                dry_run=dry_run,
                allow_empty=allow_empty,
                on_progress=tracker.advance,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    out.show(report, show_import)


def show_import(out: Output, report: ImportReport) -> None:
    """The counts, then what was sent, removed and skipped."""
    verb = "would send" if report.dry_run else "sent"
    counts = report.counts
    rows: list[tuple[str, object]] = [
        ("source", f"{report.kind} {report.name}"),
        ("user", report.user_id),
        ("write mode", report.write_mode),
    ]
    if report.marker:
        before = (report.previous_marker or "")[:12] or "none"
        rows.append(("commit", f"{before} → {report.marker[:12]}"))
    rows += [
        (verb, counts["sent"]),
        ("unchanged", counts["unchanged"]),
        ("would remove" if report.dry_run else "removed", counts["removed"]),
        ("skipped", counts["skipped"]),
    ]
    out.table(["import", ""], rows, title="dry run: nothing written" if report.dry_run else None)
    if report.sent:
        out.table(
            ["item", "note"],
            [(n.title, n.note_id) for n in report.sent[:200]],
            title=f"{verb} {len(report.sent):,}"
            + (" (first 200)" if len(report.sent) > 200 else ""),
        )
    if report.removed:
        out.table(
            ["item", "note"],
            [(n.title, n.note_id) for n in report.removed[:200]],
            title=f"{'would remove' if report.dry_run else 'removed'} {len(report.removed):,}",
        )
    if report.skipped:
        out.table(["item", "why"], report.skipped[:200], title=f"skipped {len(report.skipped):,}")
    for side, count in report.write_failures.items():
        out.warn(
            f"{count} write(s) to the {side} system failed (logged); "
            "find them with `constellation recover`"
        )
