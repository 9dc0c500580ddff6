"""Template-card buttons: approve/reject answered by greying out the clicked button."""

from __future__ import annotations

from callback import Context, Router, UpdateButtonReply
from callback.inbound.messages import TemplateCardEvent

router = Router("cards")


@router.card_action("APPROVE")
def approve(message: TemplateCardEvent, ctx: Context) -> UpdateButtonReply:
    ctx.log.info("task %s approved by %s", message.task_id, message.from_user)
    return UpdateButtonReply("Approved")


@router.card_action("REJECT")
def reject(message: TemplateCardEvent, ctx: Context) -> UpdateButtonReply:
    ctx.log.info("task %s rejected by %s", message.task_id, message.from_user)
    return UpdateButtonReply("Rejected")
