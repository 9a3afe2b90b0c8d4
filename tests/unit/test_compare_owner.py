"""``compare`` for a note of another user (issue 23): in the app's own layout the old index's
record id is the note id alone, so a lookup by id finds whoever's note has it. It must not be
shown as the asking user's ("present", exit 0): the old system's ``get`` keeps to the user, and
compare names the note's owner and the command that compares it as theirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from constellation.errors import NoteNotFound
from phases.checks.compare import compare
from tests.support.migration import started

APP_LAYOUT = {"legacy": {"layout": {"id": "{noteId}", "user_key": "owner", "note_key": None}}}


def test_a_note_of_another_user_is_named_with_its_owner(tmp_path: Path) -> None:
    with started(tmp_path, notes=12, users=3, overrides=APP_LAYOUT) as m:
        note = m.sample[0]
        assert m.legacy.get(note.user_id, note.id) is not None
        assert m.legacy.get("nobody", note.id) is None  # the same id, another user: not theirs

        mine = compare(m, note.user_id, note.id)
        assert mine.source.present and mine.old.present

        with pytest.raises(NoteNotFound) as refused:
            compare(m, "nobody", note.id)
        assert refused.value.exit_code == 2
        assert f"belongs to user {note.user_id}" in str(refused.value)
        assert f"constellation compare --user {note.user_id} --note {note.id}" in str(refused.value)

        with pytest.raises(NoteNotFound, match="constellation users"):
            compare(m, note.user_id, "no-such-note")
