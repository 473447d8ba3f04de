"""The worker side. Never imports app/ (settings in app/config.py excepted): the worker must
not load FastAPI. The API imports queues.py, history.py, metrics.py and, from delivery/,
the callback URL checks, the end-of-task announcement and the Telegram client; never the
model.

- Processes, `python -m jobs.<name>`: worker (transcription), maintenance, deliveries, cron.
- Shared with the API: queues.py (Redis and RQ handles), history.py (the JSONL log),
  metrics.py (worker counters in Redis).
- transcription/: the job and everything it runs on.
- delivery/: webhooks and Telegram, what a task's client is told when it ends.
- upkeep/: the reconciler, dead-worker judgement, retention.
"""
