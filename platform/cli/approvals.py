"""`deskbase approvals`: what awaits an account's approval, and deciding as that account."""
from __future__ import annotations

import argparse
from collections.abc import Callable

from deskbase.rules.access.identity import identity_of

from .opening import open_store
from .tables import table


def add_commands(commands, common: argparse.ArgumentParser) -> dict[str, Callable[[argparse.Namespace], int]]:
    """The `approvals` command and its actions."""
    approvals = commands.add_parser("approvals", parents=[common], help="approval chains: what awaits you, decide")
    approval_commands = approvals.add_subparsers(dest="approvals_command", metavar="ACTION", required=True)
    awaiting = approval_commands.add_parser("list", parents=[common], help="the records awaiting this account's approval")
    awaiting.add_argument("--as", dest="as_login", required=True, metavar="LOGIN")
    for decision in ("approve", "reject", "comment", "propose"):
        deciding = approval_commands.add_parser(decision, parents=[common], help=f"{decision} as this account")
        deciding.add_argument("number", help="a record number such as T-000123")
        deciding.add_argument("--as", dest="as_login", required=True, metavar="LOGIN")
        deciding.add_argument("--comment", default=None, help="what you say with it")
        deciding.add_argument("--price", default=None, help="approve at, or propose, this price")
        deciding.add_argument("--chain", default=None, help="the chain, when the record has several")
    return {"approvals": cmd_approvals}


def cmd_approvals(args) -> int:
    from deskbase.rules.process.approvals import decide_approval, pending_for
    with open_store(args) as store:
        identity = identity_of(store, args.as_login)     # --as is required: never the system
        if args.approvals_command == "list":
            rows = [[item.number, item.label, item.step, item.approver if item.approver != identity.id else "",
                     item.since.strftime("%Y-%m-%d %H:%M")] for item in pending_for(store, identity)]
            print(table(rows, ["Record", "Approval", "Step", "For", "Since"]) if rows else "nothing awaits your approval")
            return 0

        def work(session):
            view = decide_approval(session, args.number, args.approvals_command, chain=args.chain,
                                   comment=args.comment, price=args.price)
            awaiting = (f", awaiting {', '.join(view.awaiting) or 'an administrator'} (step {view.step})"
                        if view.state == "pending" else "")
            return f"{view.number}: {view.label} is {view.state}{awaiting}"
        print(store.run(work, identity=identity))
        return 0
