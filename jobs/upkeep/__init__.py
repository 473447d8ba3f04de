"""Keeping the system true to Postgres while nobody asks: the reconciler (reconciler.py:
Redis made to agree with the task rows, lost runs queued again), judging whether a silent
worker is dead (liveness.py), and retention (sweeper.py). Both passes run on the
`maintenance` queue on `python -m jobs.cron`'s schedule; the reconciler also runs at every
worker start, and the sweep from scripts/sweep.py on demand.
"""
