"""`python -m deskbase.cli`: the `deskbase` command."""
import sys

from deskbase.cli import main

sys.exit(main())
