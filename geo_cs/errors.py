"""Errors that geo-cs reports to people, each with the exit code the CLI uses for it.

Exit codes are part of the interface (scripts in council data pipelines test them):

==== =====================================================================
code meaning
==== =====================================================================
0    success
1    unexpected internal error (a bug: please report it)
2    bad command-line usage (unknown option, missing argument)
3    invalid input data: a file, row, column or value is not what was expected
4    the database or its spatial extension cannot be opened or loaded
5    something asked for does not exist (unknown geography set, spec, file)
6    disk full: an update ran out of room (or hit a file-size limit or quota); nothing changed
==== =====================================================================
"""

from __future__ import annotations


class GeoCsError(Exception):
    """Base class: a problem geo-cs can explain to the person who caused it."""

    exit_code = 1


class InputError(GeoCsError):
    """Input data is not what was expected; the message names file, row, column and value."""

    exit_code = 3


class StoreError(GeoCsError):
    """The DuckDB database or its spatial extension cannot be opened or loaded."""

    exit_code = 4


class NotFoundError(GeoCsError):
    """A geography set, spec, file or other named thing does not exist."""

    exit_code = 5


class DiskFullError(StoreError):
    """An update ran out of room to write its copy of the database (disk full, a file-size
    limit, a quota). The partial copy has been removed and the database is unchanged; the
    message says how much room the update needs and where."""

    exit_code = 6
