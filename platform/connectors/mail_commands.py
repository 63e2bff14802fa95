"""`deskbase` commands of the mailboxes: fetch mail now, the quarantine."""
from __future__ import annotations

import argparse
from collections.abc import Callable


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add this group's sub-commands to `commands`; return their handlers by command name."""
    return {}
