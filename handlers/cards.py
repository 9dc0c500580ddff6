"""Template cards: the APPROVAL menu sends a card with approve/reject buttons, and a click is
answered by greying out the card's buttons with the outcome; the LUNCH_VOTE menu sends a vote."""

from __future__ import annotations

import uuid

from callback import Context, Router, UpdateButtonReply
from callback.inbound.messages import Event, TemplateCardEvent
from callback.outbound import TemplateCard

router = Router("cards")


@router.click("MENU_APPROVAL")
def request_approval(message: Event, ctx: Context) -> str:
    """Send the member a leave request to approve: a card with two buttons."""
    card = TemplateCard.button_interaction(
        f"leave-{uuid.uuid4().hex[:12]}",  # a task_id is used once per app
        "Leave request: lisi, 2 days",
        [("Approve", "APPROVE"), ("Reject", "REJECT")],
        desc="May 6-7, family visit",
    )
    ctx.reply(card)
    return "A leave request is waiting for you."


@router.click("MENU_LUNCH_VOTE")
def lunch_vote(message: Event, ctx: Context) -> None:
    """Ask the member where to have lunch: a vote card with a submit button."""
    options = [("noodles", "Noodles"), ("dumplings", "Dumplings"), ("salad", "Salad")]
    card = TemplateCard.vote_interaction(
        f"lunch-{uuid.uuid4().hex[:12]}", "Lunch on Friday?", "LUNCH", options,
        submit_key="LUNCH_VOTE", submit_text="Vote",
    )  # fmt: skip
    ctx.reply(card)


@router.card_action("APPROVE")
def approve(message: TemplateCardEvent, ctx: Context) -> UpdateButtonReply:
    ctx.log.info("task %s approved by %s", message.task_id, message.from_user)
    return UpdateButtonReply("Approved")


@router.card_action("REJECT")
def reject(message: TemplateCardEvent, ctx: Context) -> UpdateButtonReply:
    ctx.log.info("task %s rejected by %s", message.task_id, message.from_user)
    return UpdateButtonReply("Rejected")


@router.card_action("LUNCH_VOTE")
def voted(message: TemplateCardEvent, ctx: Context) -> UpdateButtonReply:
    chosen = ", ".join(message.selected.get("LUNCH", ())) or "nothing"
    return UpdateButtonReply(f"Voted: {chosen}")
