"""The ``constellation`` command line: thin commands that parse, call one domain function, render."""
