"""`python -m speechattn` runs the command-line interface."""

from speechattn.cli import main

raise SystemExit(main())
