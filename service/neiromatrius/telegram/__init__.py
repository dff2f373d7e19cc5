"""Telegram: the Bot API client and reply delivery, reading updates, the webhook endpoint and the
``neiromatrius telegram`` commands (register the webhook, or long-poll where there is no public URL)."""

from .commands import delete_webhook, set_webhook, webhook_info

__all__ = ["delete_webhook", "set_webhook", "webhook_info"]
