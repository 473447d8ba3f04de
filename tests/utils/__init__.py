"""Helpers shared by tests, one of each kind:

- `paths`: the checkout's root.
- `audio`: the shared recordings, reference texts, and recordings made at test time.
- `api`: submitting and reading tasks through the API, API keys.
- `records`: task rows, stored recordings and history lines as the tests set them up or check them.
- `waiting`: waiting for a condition or a server, bounded in time.
- `processes`: worker, uvicorn and other child processes, free ports.
- `workers`: the worker classes run inside the test process (one model load per session).
- `subtitles`: reading SRT and WebVTT bodies.
- `bot_api_standin`: the stand-in for Telegram's Bot API.
- `webhook_receiver`: the stand-in for a client's webhook endpoint.
"""
