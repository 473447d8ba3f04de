"""The README's examples are what the code produces: its requests are run against the real
service with the default model, and the answers it shows are compared with the real ones."""

import json
import re
import shutil
import subprocess

import pytest

from app.config import Settings
from app.schemas import QueueStatus
from tests.utils.api import result, submit
from tests.utils.audio import audio_file
from tests.utils.paths import ROOT

README = (ROOT / "README.md").read_text()
LOG_FILE = re.compile(r"`logs/([a-z_]+\.log)`")


def comment_after(command: str) -> str:
    """The `# …` lines that follow `command` in a README code block, joined into one line."""
    start = README.index(command)
    lines = []
    for line in README[start:].splitlines()[1:]:
        if not line.startswith("#"):
            if lines:
                break
            continue
        lines.append(line.lstrip("#").strip())
    return " ".join(lines)


@pytest.fixture
def jfk_done(client, run_worker) -> tuple[dict, dict]:
    """The README's submit of jfk.flac, then its result once a worker has run."""
    submitted = submit(client, audio_file("jfk.flac")).json()
    run_worker()
    return submitted, result(client, submitted["task_id"])


def test_submit_and_poll_examples(jfk_done):
    submitted, done = jfk_done
    shown = json.loads(comment_after("-F audio=@../shared/audio/jfk.flac \\"))
    assert shown.keys() == submitted.keys()
    assert (shown["status"], shown["position"]) == (submitted["status"], submitted["position"])

    poll = comment_after("http://localhost:8000/api/v1/asr/result/3f0c…\n")
    text = re.search(r'"text":"(.*?)","language"', poll)
    assert text and text.group(1) == done["text"]
    assert f'"language":"{done["language"]}"' in poll
    assert f'"duration":{done["duration"]}' in poll
    first = done["segments"][0]
    assert f'{{"start":{first["start"]},"end":{first["end"]},"text":"{first["text"][:7]}' in poll
    rtf = float(re.search(r'"rtf":([0-9.]+)', poll).group(1))
    measured = done["timings"]["rtf"]
    assert measured / 5 < rtf < measured * 5, (rtf, measured)  # the machine's speed varies


def test_srt_export_example(jfk_done, client):
    _, done = jfk_done
    url = f"/api/v1/asr/result/{done['task_id']}?format=srt&max_line_width=42&max_line_count=2"
    srt = client.get(url).text.splitlines()
    shown = comment_after('max_line_width=42&max_line_count=2"').split("saves jfk.srt: ")[1]
    assert shown == " ".join(srt[:4])


def test_openai_example(client, live_worker):
    with audio_file("jfk.flac").open("rb") as audio:
        answer = client.post(
            "/v1/audio/transcriptions", files={"file": ("jfk.flac", audio)},
            data={"model": "whisper-1", "response_format": "verbose_json",
                  "timestamp_granularities[]": ["word", "segment"]},
        ).json()  # fmt: skip
    models = [m["id"] for m in client.get("/v1/models").json()["data"]]
    language_and_text = re.search(r"print\(result.language, result.text\)  # (.*) …", README)
    assert language_and_text and f"{answer['language']} {answer['text']}".startswith(
        language_and_text.group(1)
    )
    first_word = answer["words"][0]
    assert f"# {first_word['word'].strip()} {first_word['end']}\n" in README
    assert f"# {models}\n" in README


def test_every_uv_sync_shown_keeps_the_other_extras():
    """A plain `uv sync` removes the packages of extras it is not given (pg_ctl from under a
    running scripts/serve, the base model)."""
    shown = [README, *(ROOT / "scripts" / name for name in ("serve", "install_model.py",
                                                            "embedded.py"))]  # fmt: skip
    texts = [t if isinstance(t, str) else t.read_text() for t in shown]
    syncs = [m for text in texts for m in re.findall(r"(?<!plain `)uv sync[^`\n]*", text)]
    assert syncs and all("--inexact" in s or "--all-extras" in s for s in syncs), syncs


def test_queue_status_fields_are_listed():
    row = next(line for line in README.splitlines() if line.startswith("| `GET /asr/queue/status`"))
    assert re.findall(r"`([a-z_]+)`", row.split("|")[2]) == list(QueueStatus.model_fields)


def test_cancel_of_an_ended_task(client, run_worker):
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    assert client.post(f"/api/v1/asr/cancel/{task_id}").status_code == 200
    again = client.post(f"/api/v1/asr/cancel/{task_id}")
    row = next(line for line in README.splitlines() if line.startswith("| 409 |"))
    assert again.status_code == 200 and "canceling one that is done or failed" in row

    other = submit(client, audio_file("jfk.flac")).json()["task_id"]
    run_worker()
    assert client.post(f"/api/v1/asr/cancel/{other}").status_code == 409


def test_files_lists_every_log(settings: Settings, client, run_worker):
    submit(client, audio_file("jfk.flac"))
    run_worker()
    files = README.split("\n## Files\n")[1].split("\n## ")[0]
    listed = set(LOG_FILE.findall(files))
    written = {path.name for path in settings.logs_path.glob("*.log")}
    every_process = {"maintenance.log", "deliveries.log", "cron.log", "telegram.log"}
    assert written | every_process <= listed, sorted(written | every_process - listed)


def test_serve_banner_is_the_one_shown(capsys):
    pytest.importorskip("honcho", reason="needs `uv sync --inexact --extra embedded`")
    from scripts.serve import ConfiguredSettings, print_banner

    settings = ConfiguredSettings(PORT=8000, RQ_DASHBOARD_PORT=9181, RQ_DASHBOARD_BIND="127.0.0.1")
    env = {"RQ_DASHBOARD_USERNAME": "admin", "RQ_DASHBOARD_PASSWORD": "…"}
    print_banner("http://127.0.0.1:8000", env, settings, None, "")
    printed = capsys.readouterr().out
    shown = README.split("\n```\nserve: ready")[1].split("\n```")[0]
    assert "serve: ready" + shown in printed


@pytest.mark.skipif(not (ROOT / ".git").exists() or not shutil.which("git"), reason="no git")
def test_nothing_git_ignores_is_tracked():
    """Files: running the service leaves `git status` clean (data/logs/*.log once were not)."""
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--ignored", "--exclude-standard"], cwd=ROOT,
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert tracked == []
