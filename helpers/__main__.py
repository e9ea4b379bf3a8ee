"""Command line: ``python -m helpers {run,...} --help``."""

from helpers.cli import main

raise SystemExit(main())
