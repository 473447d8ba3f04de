"""Downloading the original recording."""

from app.routes.audio import content_disposition
from tests.app.test_submit import submit
from tests.helpers import audio_file


def test_audio_download_returns_the_original_bytes_with_a_safe_name(client, tmp_path):
    odd = tmp_path / "Réunion d'été.mp3"
    odd.write_bytes(audio_file("hotwords.mp3").read_bytes())
    task_id = submit(client, odd).json()["task_id"]
    response = client.get(f"/api/v1/asr/audio/{task_id}")
    assert response.status_code == 200
    assert response.content == odd.read_bytes()
    assert response.headers["content-type"] == "audio/mpeg"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="R_union d\'_t_.mp3"')
    assert "filename*=UTF-8''R%C3%A9union%20d%27%C3%A9t%C3%A9.mp3" in disposition


def test_audio_of_unknown_task_is_404(client):
    response = client.get("/api/v1/asr/audio/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404 and response.json()["error"] == "task not found"


def test_content_disposition_cannot_inject_headers():
    header = content_disposition('evil"\r\nSet-Cookie: x=1.wav')
    assert "\r" not in header and "\n" not in header
    assert header.count('"') == 2
    assert 'filename="evil___Set-Cookie: x=1.wav"' in header
