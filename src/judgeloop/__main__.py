"""`python -m judgeloop` runs the command line."""

from judgeloop.cli import main

main()
