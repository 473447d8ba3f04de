"""Turning a task's recording into its transcript: the RQ job (transcribe.py), the model
(engine.py: where it comes from, loading it once, running it), decoding audio a piece at a
time (audio_stream.py), cross-job batching of short clips (batch_job.py claims the jobs,
batching.py runs them as one batch), seeded sampling (seeding.py), the checks a running
transcription makes between segments (checkpoint.py: time limit, shutdown, cancel, progress)
and writing a run's outcome to the task row (outcome.py).

Worker-process state a run reads: the tasks in flight for the heartbeat (inflight.py) and the
stop request (shutdown.py). retry.py retries what is transient (a lost database or Redis
connection), never a bad file.
"""
