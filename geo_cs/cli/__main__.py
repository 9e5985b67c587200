"""``python -m geo_cs.cli``: the same as the ``geo-cs`` command."""

from geo_cs.cli.app import main

main()
