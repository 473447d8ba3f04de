"""GET /asr/history: newest first, paginated, filtered by status."""

from tests.utils.api import submit
from tests.utils.audio import audio_file


def test_history_pages_newest_first_and_filters_by_status(client, run_worker):
    ids = [submit(client, audio_file("hotwords.mp3"), name=f"clip{i}.mp3").json()["task_id"]
           for i in range(5)]  # fmt: skip
    for task_id in ids[:2]:
        client.post(f"/api/v1/asr/cancel/{task_id}")
    run_worker()

    first = client.get("/api/v1/asr/history?limit=2").json()
    assert first["total"] == 5 and first["limit"] == 2 and first["offset"] == 0
    assert [r["task_id"] for r in first["records"]] == [ids[4], ids[3]]
    last = client.get("/api/v1/asr/history?limit=2&offset=4").json()
    assert [r["task_id"] for r in last["records"]] == [ids[0]]

    done = client.get("/api/v1/asr/history?status=done").json()
    assert done["total"] == 3
    assert [r["filename"] for r in done["records"]] == ["clip4.mp3", "clip3.mp3", "clip2.mp3"]
    record = done["records"][0]
    assert "comfy" in record["text_preview"].lower() and record["duration"] > 3
    assert record["audio_url"].endswith(f"/api/v1/asr/audio/{ids[4]}")
    canceled = client.get("/api/v1/asr/history?status=canceled").json()
    assert {r["task_id"] for r in canceled["records"]} == set(ids[:2])
    assert all(r["text_preview"] is None for r in canceled["records"])


def test_history_rejects_bad_paging_and_unknown_status(client):
    for query in ("limit=0", "limit=101", "offset=-1", "status=finished"):
        response = client.get(f"/api/v1/asr/history?{query}")
        assert response.status_code == 422, query
        assert response.json()["error"] == "invalid request"
