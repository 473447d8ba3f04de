"""Telling a task's client that the task ended, as jobs on the `deliveries` queue (served by
`python -m jobs.deliveries`): announce.py queues what a task owes when it ends; webhooks.py
POSTs the signed outcome and retries; webhook_guard.py decides which callback URLs may be
called, at submit and before each delivery.

Telegram, all of it:
- telegram_api.py: the Bot API client (getFile, downloads, sendMessage, editMessageText,
  getUpdates) and Telegram's message-length rule; used by the API and the workers.
- telegram_replies.py: the transcript (or the failure) edited into the chat's
  "Transcribing…" message.
- app/telegram.py: the intake, one update becoming a queued task and that first reply.
- app/routes/telegram.py: `POST /telegram/webhook`, the route Telegram calls.
- scripts/telegram_polling.py: getUpdates instead of a webhook, for a server with no
  public URL.
- jobs/upkeep/reconciler.py: queues again a reply that is owed with no job (Redis lost it).
- models/task.py: the reply's state on the task row (telegram_reply_*; migration 0010).
- tests: tests/jobs/delivery/test_telegram_*.py, tests/app/test_telegram.py and
  tests/scripts/test_telegram_polling.py, against a stand-in of the Bot API
  (tests/utils/bot_api_standin.py, the `bot_api` fixture in tests/conftest.py).
"""
