"""`python -m etl4all` runs the command line."""

from etl4all.cli import main

main()
