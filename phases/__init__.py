"""The migration and the operator verbs: each public function here is one command.

Functions take the loaded plan and the adapters they need, return result objects and raise
:class:`~constellation.errors.ConstellationError` subclasses; they never print.
"""
