"""Keeping the system true to Postgres while nobody asks: the reconciler (reconciler.py:
Redis made to agree with the task rows, lost runs queued again), judging whether a silent
worker is dead (liveness.py), and retention (sweeper.py). Both run on the `maintenance` queue,
from `python -m jobs.cron`'s schedule and at every worker start.
"""
