"""`python -m autocurriculum` runs the same command line as the console script."""

from autocurriculum.cli import main

raise SystemExit(main())
