"""Approvals in the web interface (P7): on a record's page, each approval chain run on it —
its state, the step awaited and by whom, every decision — with the form to approve, reject,
comment or propose a price for those who may; on the home page, what awaits the person."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from deskbase.objects.errors import NotFound
from deskbase.rules.access.identity import Identity
from deskbase.rules.documents.formatting import datetime_text
from deskbase.rules.process.approvals import (
    DECISIONS,
    ApprovalRefused,
    approval_chains,
    chains_on,
    decide_approval,
    pending_for,
)

from . import said
from .editing import readable_record
from .i18n import translator

if TYPE_CHECKING:
    from .app import Web


def on_record(session, identity: Identity, record, may_update: bool) -> list[dict[str, Any]]:
    """The approval chains of a record as its page shows them; `may_update`: whether the
    person may update the record (they may then comment on its approvals)."""
    chains = approval_chains(session.definitions).by_name
    language = identity.language or session.definitions.languages[0]
    zone = ZoneInfo(session.definitions.zone)
    mine = {identity.id, *(identity.acting_for or ())}
    shown = []
    for view in chains_on(session, record):
        pending = view.state == "pending"
        deciding = pending and (identity.superuser or bool(mine & set(view.awaiting)))
        shown.append({
            "chain": view.chain, "label": view.label, "state": view.state,
            "step": _step_title(chains.get(view.chain), view.step, language),
            "awaiting": view.awaiting, "price": view.price,
            "quote": chains[view.chain].quote is not None if view.chain in chains else False,
            "may_decide": deciding, "may_comment": pending and (deciding or may_update),
            "decisions": [{"at": datetime_text(entry["at"], zone, language),
                           "by": entry["by"] + (f" for {entry['for']}" if entry.get("for") not in (None, entry["by"])
                                                else ""),
                           "decision": entry["decision"], "comment": entry.get("comment"),
                           "price": entry.get("price")} for entry in reversed(view.decisions)]})
    return shown


def decide_on_page(web: "Web", request: Request, web_session, identity: Identity) -> Response:
    """A decision sent from a record's page; a refusal comes back on the page with its reason."""
    number, chain = request.path_params["number"], request.path_params["chain"]
    form = request.state.form
    decision = str(form.get("decision", ""))
    comment = str(form.get("comment", "")).strip() or None
    price = str(form.get("price", "")).strip() or None

    def work(session):
        record, _ = readable_record(session, identity, number)
        decide_approval(session, record, decision, chain=chain, comment=comment, price=price)
    if decision not in DECISIONS:
        return web.record_page(request, web_session, identity, problem=f"`{decision}` is not a decision.",
                           status=422)
    try:
        web.store.run(work, identity=identity)
    except NotFound:
        return Response(status_code=404)
    except ApprovalRefused as refused:
        return web.record_page(request, web_session, identity, problem=str(refused), status=422)
    t = translator(web.language_of(identity))
    return said.say(RedirectResponse(f"/r/{number}", status_code=303),
                    t("Your decision on {number} is recorded: {decision}.", number=number, decision=t(decision)))


def awaiting(web: "Web", identity: Identity) -> list[dict[str, Any]]:
    """What awaits the person's approval (or that of someone they stand in for), oldest first."""
    chains = approval_chains(web.definitions).by_name
    language = web.language_of(identity)
    return [{"number": item.number, "label": item.label,
             "step": _step_title(chains.get(item.chain), item.step, language),
             "for": item.approver if item.approver != identity.id else None}
            for item in pending_for(web.store, identity)]


def _step_title(chain, step: str | None, language: str) -> str | None:
    """A step's label in the person's language (its name when the chain is gone)."""
    found = next((candidate for candidate in (chain.steps if chain else ()) if candidate.name == step), None)
    return found.title(language) if found is not None else step
