"""The ``constellation`` application: global options, error rendering, and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup, TyperOption

from cli import check as check_cmd
from cli import context
from cli import dashboard as dashboard_cmd
from cli import demo as demo_cmd
from cli import describe as describe_cmd
from cli import doctor as doctor_cmd
from cli import enqueue as enqueue_cmd
from cli import imports as imports_cmd
from cli import index as index_cmd
from cli import migrate as migrate_cmd
from cli import model as model_cmd
from cli import monitor as monitor_cmd
from cli import monitoring as monitoring_cmd
from cli import plan as plan_cmd
from cli import provision as provision_cmd
from cli import query as query_cmd
from cli import recover as recover_cmd
from cli import rollback as rollback_cmd
from cli import serve as serve_cmd
from cli import stats as stats_cmd
from cli import traffic as traffic_cmd
from cli import tune as tune_cmd
from cli import users as users_cmd
from cli import verify as verify_cmd
from cli import worker as worker_cmd
from cli.examples import epilog
from cli.output import Output


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    # A flag takes no value, so its help shows none: `--debug`, never `--debug <bool>` (which
    # reads as if `--debug true` were the way to give it).
    return None if self.is_flag else _value_type(self, ctx)


_value_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]

#: options accepted anywhere on the command line, as if given before the subcommand
GLOBAL_OPTIONS = {"--plan": True, "--env": True, "--debug": False}


class RootGroup(TyperGroup):
    """The root command: hoists global options and turns our errors into one clear line."""

    # ctx is Typer's (vendored) click Context; typed loosely to match the base class.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _output(ctx).error("interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            from constellation.errors import ConstellationError

            if not isinstance(exc, ConstellationError):
                raise
            app_ctx = ctx.obj if isinstance(ctx.obj, context.AppContext) else None
            out = _output(ctx)
            if app_ctx is not None and app_ctx.debug:
                out.err.print_exception(show_locals=False)
            out.error(str(exc))
            raise typer.Exit(exc.exit_code) from None


def _output(ctx: Any) -> Output:
    """The invocation's output object (a fresh one if the error came before it was made)."""
    return ctx.obj.output if isinstance(ctx.obj, context.AppContext) else Output()


def hoist_global_options(args: list[str]) -> list[str]:
    """Move ``--plan X``, ``--env X`` and ``--debug`` to the front, wherever they were typed,
    so ``constellation provision --env staging`` works like ``constellation --env staging
    provision``. Nothing after ``--`` is touched."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            takes_value = GLOBAL_OPTIONS[name]
            if takes_value and "=" not in arg and i + 1 < len(args):
                hoisted.extend(args[i : i + 2])
                i += 2
                continue
            hoisted.append(arg)
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


app = typer.Typer(
    cls=RootGroup,
    name="constellation",
    help=(
        "Migrate a notes app's search to a queue-based embedding service, and run that service.\n\n"
        "Global options (--plan, --env, --debug) may be given before or after the command."
    ),
    no_args_is_help=True,
    # --install-completion / --show-completion for bash, zsh and fish (and PowerShell)
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        Output().result(f"constellation {version('constellation')}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    plan: Annotated[
        Path,
        typer.Option(
            "--plan",
            envvar="CONSTELLATION_PLAN",
            help="Plan file (YAML).",
            show_default=True,
        ),
    ] = Path("plans/local.yaml"),
    env: Annotated[
        str | None,
        typer.Option(
            "--env", help="Environment whose overrides apply (development, staging, ...)."
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    app_ctx = context.AppContext(plan, env, debug)
    ctx.obj = app_ctx
    ctx.call_on_close(app_ctx.close)


# Commands grouped as an operator meets them in --help.
SETUP, SERVICE, MIGRATION, REPAIR, MODELS, MONITORING = (
    "Set up",
    "Run the service",
    "Migrate",
    "Roll back and repair",
    "Model versions",
    "Monitor",
)
app.command("demo", epilog=epilog("demo"), rich_help_panel=SETUP)(demo_cmd.demo)
app.add_typer(plan_cmd.app, name="plan", rich_help_panel=SETUP)
app.command("provision", epilog=epilog("provision"), rich_help_panel=SETUP)(provision_cmd.provision)
app.command("describe", epilog=epilog("describe"), rich_help_panel=SETUP)(describe_cmd.describe)
app.command("verify", epilog=epilog("verify"), rich_help_panel=SETUP)(verify_cmd.verify)
app.add_typer(index_cmd.app, name="index", rich_help_panel=SETUP)
app.command("serve", epilog=epilog("serve"), rich_help_panel=SERVICE)(serve_cmd.serve)
app.add_typer(worker_cmd.app, name="worker", rich_help_panel=SERVICE)
app.command("tune", rich_help_panel=SERVICE)(tune_cmd.tune)
app.command("enqueue", epilog=epilog("enqueue"), rich_help_panel=SERVICE)(enqueue_cmd.enqueue)
app.add_typer(imports_cmd.app, name="import", rich_help_panel=SERVICE)
app.command("query", epilog=epilog("query"), rich_help_panel=SERVICE)(query_cmd.query)
app.command("users", epilog=epilog("users"), rich_help_panel=SERVICE)(users_cmd.users)
app.add_typer(migrate_cmd.app, name="migrate", rich_help_panel=MIGRATION)
app.add_typer(check_cmd.app, name="check", rich_help_panel=MIGRATION)
app.add_typer(traffic_cmd.app, name="traffic", rich_help_panel=MIGRATION)
app.add_typer(rollback_cmd.app, name="rollback", rich_help_panel=REPAIR)
app.add_typer(rollback_cmd.consumer_app, name="consumer", rich_help_panel=REPAIR)
app.command("requeue", epilog=epilog("requeue"), rich_help_panel=REPAIR)(recover_cmd.requeue)
app.command("recover", epilog=epilog("recover"), rich_help_panel=REPAIR)(recover_cmd.recover)
app.command("compare", epilog=epilog("compare"), rich_help_panel=REPAIR)(recover_cmd.compare)
app.add_typer(model_cmd.app, name="model", rich_help_panel=MODELS)
app.command("stats", epilog=epilog("stats"), rich_help_panel=MONITORING)(stats_cmd.stats)
app.command("monitor", epilog=epilog("monitor"), rich_help_panel=MONITORING)(monitor_cmd.monitor)
app.command("dashboard", epilog=epilog("dashboard"), rich_help_panel=MONITORING)(
    dashboard_cmd.dashboard
)
app.command("doctor", rich_help_panel=MONITORING)(doctor_cmd.doctor)
app.add_typer(monitoring_cmd.app, name="monitoring", rich_help_panel=MONITORING)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="constellation")


if __name__ == "__main__":  # pragma: no cover
    main()
