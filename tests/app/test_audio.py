"""Downloading the original recording."""

from app.routes.audio import content_disposition
from tests.utils.api import submit
from tests.utils.audio import audio_file


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


def test_range_requests_return_206_with_exactly_the_requested_bytes(client):
    original = audio_file("jfk.flac").read_bytes()
    size = len(original)
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    url = f"/api/v1/asr/audio/{task_id}"

    whole = client.get(url)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    cases = {
        "bytes=100-199": (100, 199),
        "bytes=1000000-": (1000000, size - 1),
        "bytes=-50": (size - 50, size - 1),
        f"bytes=0-{size + 10}": (0, size - 1),
    }
    for header, (first, last) in cases.items():
        part = client.get(url, headers={"Range": header})
        assert part.status_code == 206, header
        assert part.content == original[first : last + 1], header
        assert part.headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert int(part.headers["content-length"]) == last - first + 1

    beyond = client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    assert beyond.json()["error"] == "range not satisfiable"
    several = client.get(url, headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.content == original


def test_audio_removed_from_storage_is_410(client, settings):
    task_id = submit(client, audio_file("hotwords.mp3")).json()["task_id"]
    for path in settings.recordings_path.iterdir():
        path.unlink()
    response = client.get(f"/api/v1/asr/audio/{task_id}")
    assert response.status_code == 410 and response.json()["error"] == "audio no longer stored"
