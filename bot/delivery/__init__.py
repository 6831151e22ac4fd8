"""All movement of messages: one outbox worker (to her channel) and one inbox worker (from a
provider that will not wait), each with one lease, retry and dead-letter rule.

A channel only says how to send one text to one address, and whether a failure can be retried
(``DeliveryFailed``). The worker leases due messages (several gateway processes share one
database, each message is sent by one of them), backs off exponentially, and after
``max_attempts`` - or at once on a permanent failure (she blocked the bot, opted out, a number
that does not exist) - dead-letters the message: kept, with its reason, never retried, counted
in ``dead_letters()`` for the operator and the counsellors' console.
"""

from bot.delivery.inbox import InboxStore, InboxWorker
from bot.delivery.outbox import DeliveryFailed, OutboxChannel, OutboxWorker, SendingChannel

__all__ = ["DeliveryFailed", "InboxStore", "InboxWorker", "OutboxChannel", "OutboxWorker", "SendingChannel"]
