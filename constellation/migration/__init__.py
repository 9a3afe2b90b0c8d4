"""The migration's runtime, what the app and the workers run: the state and its journal, the
comparison and failure logs, the notes source, the old system and the router (:mod:`.runtime`
opens all of it for one plan)."""
