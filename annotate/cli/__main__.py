"""`python -m annotate.cli`: the same as the `annotate` console script."""

from annotate.cli import main

main()
