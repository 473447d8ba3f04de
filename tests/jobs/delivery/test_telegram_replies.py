"""The bot's answer when a task ends: the transcript split under Telegram's limit, failures in
words, retries when Telegram asks to slow down. Tasks are real rows; the reply job runs in a
real maintenance worker against the stand-in Bot API."""

from datetime import UTC, datetime

from sqlalchemy import select

from app.config import get_settings
from jobs.delivery.telegram_api import MESSAGE_LIMIT, split_message, telegram_length
from jobs.delivery.telegram_replies import enqueue_reply
from jobs.queues import connect_redis
from jobs.upkeep.reconciler import reconcile
from models import Task, TaskStatus
from models.db import session_scope
from tests.utils.audio import ENGLISH_HALF_TEXT, normalize
from tests.utils.bot_api_standin import (
    BotApiStandIn,
)
from tests.utils.logs import logged
from tests.utils.records import add_task_row, task_row
from tests.utils.redis_db import clear_db
from tests.utils.workers import run_maintenance_until, run_maintenance_until_idle

CHAT_ID = 777


def ended_task(bot_api: BotApiStandIn, status: TaskStatus, text: str | None = None,
               error: str | None = None, with_reply: bool = True) -> Task:  # fmt: skip
    """A task row from chat CHAT_ID that has ended, with its "Transcribing…" reply sent."""
    reply_id = bot_api.answer("sendMessage", {"chat_id": CHAT_ID, "text": "Transcribing…"})[1][
        "result"
    ]["message_id"]
    metadata = {"chat_id": CHAT_ID, "message_id": 5, "reply_id": reply_id if with_reply else 999}
    task = add_task_row(
        get_settings(),
        filename="voice.oga",
        content_type="audio/ogg",
        status=status,
        text=text,
        error=error,
        client_metadata={"telegram": metadata},
        finished_at=datetime.now(UTC),
    )
    with connect_redis(get_settings().REDIS_URL) as redis:
        enqueue_reply(redis, task.id)
    return task


def chat_texts(bot_api: BotApiStandIn) -> list[str]:
    return [message.text for message in bot_api.sent(CHAT_ID)]


def test_a_long_transcript_is_split_under_the_limit(bot_api):
    # ~12,000 characters of real text, with emoji (two UTF-16 units each) to count right.
    text = " ".join([ENGLISH_HALF_TEXT, "🎙️ 🎧"] * 18)
    parts = split_message(text)
    assert len(parts) == 3
    ended_task(bot_api, TaskStatus.DONE, text=text)
    run_maintenance_until(lambda: len(bot_api.sent(CHAT_ID)) == 3)
    messages = chat_texts(bot_api)
    assert messages == parts
    assert all(0 < telegram_length(m) <= MESSAGE_LIMIT for m in messages)
    assert normalize(" ".join(messages)) == normalize(text)
    first, *rest = bot_api.sent(CHAT_ID)
    assert first.edits == 1  # "Transcribing…" became the first part
    assert all(message.reply_to == 5 for message in rest)


def test_a_failed_task_says_why(bot_api):
    ended_task(bot_api, TaskStatus.FAILED, error="audio stream could not be decoded")
    run_maintenance_until(lambda: bot_api.sent(CHAT_ID)[0].edits > 0)
    assert chat_texts(bot_api) == [
        "Sorry, this recording could not be transcribed: audio stream could not be decoded"
    ]


def test_silence_gets_a_sentence_rather_than_an_empty_message(bot_api):
    ended_task(bot_api, TaskStatus.DONE, text="")
    run_maintenance_until(lambda: bot_api.sent(CHAT_ID)[0].edits > 0)
    assert chat_texts(bot_api) == ["No speech was heard in this recording."]


def test_too_many_requests_is_retried_after_the_pause_telegram_asks(bot_api):
    bot_api.failures["editMessageText"] = [(429, "Too Many Requests: retry after 1", 1)]
    ended_task(bot_api, TaskStatus.DONE, text="And so, my fellow Americans.")
    run_maintenance_until(lambda: bot_api.sent(CHAT_ID)[0].edits > 0)
    assert bot_api.methods().count("editMessageText") == 2
    assert chat_texts(bot_api) == ["And so, my fellow Americans."]


def test_a_deleted_reply_is_replaced_by_a_new_message(bot_api):
    ended_task(bot_api, TaskStatus.DONE, text="Hello there.", with_reply=False)
    run_maintenance_until(lambda: len(bot_api.sent(CHAT_ID)) == 2)
    assert chat_texts(bot_api) == ["Transcribing…", "Hello there."]
    assert bot_api.sent(CHAT_ID)[1].reply_to == 5


def test_a_chat_that_blocked_the_bot_is_not_retried(bot_api):
    bot_api.failures["editMessageText"] = [(403, "Forbidden: bot was blocked by the user", None)]
    task = ended_task(bot_api, TaskStatus.DONE, text="Hello.")
    # Until nothing is queued or scheduled: a retry, had one been scheduled, would have run.
    run_maintenance_until_idle()
    assert bot_api.methods().count("editMessageText") == 1
    assert bot_api.methods().count("sendMessage") == 1  # only the test's "Transcribing…"
    with session_scope(get_settings().DATABASE_URL) as session:
        assert session.scalar(select(Task.status).where(Task.id == task.id)) == "done"


def test_a_reply_telegram_keeps_refusing_is_given_up_after_the_last_retry(bot_api):
    """WEBHOOK_RETRY_DELAYS=1,1,1: the first attempt and three retries, then no more."""
    bot_api.failures["editMessageText"] = [(500, "Internal Server Error", None)] * 10
    task = ended_task(bot_api, TaskStatus.DONE, text="Hello.")
    with logged("ERROR") as errors:
        run_maintenance_until_idle()
    assert bot_api.methods().count("editMessageText") == 4
    assert chat_texts(bot_api) == ["Transcribing…"]  # never replaced
    assert any(f"task {task.id}: telegram reply given up (4 attempts)" in e for e in errors)


def test_a_reply_lost_with_redis_is_sent_once_by_the_reconciler(bot_api, redis):
    task = ended_task(bot_api, TaskStatus.DONE, text="And so, my fellow Americans.")
    clear_db(redis)  # Redis restarted empty

    assert reconcile(get_settings(), redis).redelivered == [task.id]
    assert reconcile(get_settings(), redis).redelivered == []  # its job exists now
    run_maintenance_until_idle()

    assert chat_texts(bot_api) == ["And so, my fellow Americans."]
    assert bot_api.methods().count("editMessageText") == 1
    assert task_row(get_settings(), task.id).telegram_reply_ended_at is not None


def test_a_reply_lost_midway_goes_on_after_the_messages_already_sent(bot_api, redis):
    """Attempt 1 put two of three parts in the chat, then Telegram failed and its retry was
    lost with Redis (Telegram's edits are idempotent, so only a sent part can show twice)."""
    text = " ".join([ENGLISH_HALF_TEXT, "🎙️ 🎧"] * 18)
    parts = split_message(text)
    task = ended_task(bot_api, TaskStatus.DONE, text=text)
    clear_db(redis)
    reply_id = task.client_metadata["telegram"]["reply_id"]
    bot_api.answer("editMessageText", {"chat_id": CHAT_ID, "message_id": reply_id,
                                       "text": parts[0]})  # fmt: skip
    bot_api.answer("sendMessage", {"chat_id": CHAT_ID, "text": parts[1],
                                   "reply_parameters": {"message_id": 5}})  # fmt: skip
    with session_scope(get_settings().DATABASE_URL) as session:
        row = session.get(Task, task.id)
        row.telegram_reply_attempts, row.telegram_reply_sent = 1, 2

    assert reconcile(get_settings(), redis).redelivered == [task.id]
    run_maintenance_until_idle()

    assert chat_texts(bot_api) == parts  # each part once, in order
    assert task_row(get_settings(), task.id).telegram_reply_attempts == 2


def test_a_reply_given_up_is_not_queued_again(bot_api, redis):
    bot_api.failures["editMessageText"] = [(403, "Forbidden: bot was blocked by the user", None)]
    task = ended_task(bot_api, TaskStatus.DONE, text="Hello.")
    run_maintenance_until_idle()
    clear_db(redis)

    assert reconcile(get_settings(), redis).redelivered == []
    assert task_row(get_settings(), task.id).telegram_reply_ended_at is not None


def test_a_clients_own_telegram_metadata_is_owed_no_reply(bot_api, redis):
    task = add_task_row(
        get_settings(),
        status=TaskStatus.DONE,
        text="Hello.",
        finished_at=datetime.now(UTC),
        client_metadata={"telegram": "@someone"},
    )

    assert reconcile(get_settings(), redis).redelivered == [task.id]  # the metadata looks ours
    run_maintenance_until_idle()

    assert reconcile(get_settings(), redis).redelivered == []  # not every pass from now on
    assert bot_api.methods() == []
