"""``docs/commands.md`` is every command's ``--help``, generated: it cannot drift (issue 24)."""

from __future__ import annotations

from cli.reference import PAGE, render


def test_the_command_reference_is_what_the_commands_say() -> None:
    page = render()
    assert PAGE.read_text() == page, "docs/commands.md is stale: run `python -m cli.reference`"
    # every command of the app is in it, with its options (a generator that skipped a group
    # or its options would still match a page written by itself)
    for name in (
        "constellation demo",
        "constellation migrate phase",
        "constellation model upgrade",
    ):
        assert f"## `{name}`" in page
    assert "`--json`" in page and "`--plan" not in page.split("# Set up")[1]


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (PAGE.parent.parent / "README.md").read_text()
    for page in sorted(PAGE.parent.glob("*.md")):
        assert f"(docs/{page.name})" in readme, f"docs/{page.name} is not linked from the README"
    assert len(readme.splitlines()) < 300
