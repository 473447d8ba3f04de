"""Helpers shared by tests, one of each kind:

- `paths`: the checkout's root.
- `databases`: Postgres databases of this run's own (created and dropped by it).
- `redis_db`: the Redis db index this run found empty and claimed.
- `audio`: the shared recordings, reference texts, and recordings and videos made from them.
- `api`: submitting and reading tasks through the API; API keys and credentials.
- `records`: task rows, stored recordings and history lines, as tests set them up or check them.
- `waiting`: waiting for a condition or a server, bounded in time ("stuck", not "slow").
- `processes`: worker, uvicorn and other child processes (always stopped), free ports.
- `workers`: the worker classes run inside the test process (one model load per session).
- `logs`: what the service logged while a block ran.
- `subtitles`: reading SRT and WebVTT bodies.
- `bot_api_standin`: the stand-in for Telegram's Bot API (declared: it cannot run here).
- `loopback`: serving a stand-in's HTTP server from a thread.
- `webhook_receiver`: the stand-in for a client's webhook endpoint (declared likewise).
"""
