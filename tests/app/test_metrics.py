"""/metrics exposes the named series with the values of real work."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.utils.api import result, submit
from tests.utils.audio import audio_file
from tests.utils.waiting import wait_for


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_reflect_a_real_transcription(client, live_worker):
    task_id = submit(client, audio_file("jfk.flac")).json()["task_id"]
    wait_for(lambda: result(client, task_id)["status"] == "done", timeout=60, message="done")
    submit(client, audio_file("hotwords.mp3"))  # a second one, maybe still queued

    metrics = scrape(client)

    submits = (("method", "POST"), ("route", "/api/v1/asr/submit"), ("status", "202"))
    assert metrics[("asr_http_requests_total", submits)] == 2
    latency = (("method", "POST"), ("route", "/api/v1/asr/submit"))
    assert metrics[("asr_http_request_duration_seconds_count", latency)] == 2
    assert metrics[("asr_http_request_duration_seconds_sum", latency)] > 0
    assert metrics[("asr_tasks", (("status", "done"),))] >= 1
    assert ("asr_queue_depth", (("queue", "transcription"),)) in metrics
    workers = [v for (name, _), v in metrics.items() if name == "asr_workers_live"]
    assert sum(workers) == 1
    assert metrics[("asr_audio_seconds_transcribed_total", ())] == pytest.approx(11.0, abs=0.1)
    assert metrics[("asr_transcription_wall_seconds_total", ())] > 0
    assert metrics[("asr_transcription_rtf_count", ())] >= 1
    assert metrics[("asr_transcription_rtf_bucket", (("le", "+Inf"),))] >= 1
    assert 0 < metrics[("asr_transcription_rtf_sum", ())] < 5


def test_metrics_use_route_templates_not_raw_paths(client):
    for _ in range(3):
        client.get("/api/v1/asr/result/00000000-0000-0000-0000-000000000000")
    metrics = scrape(client)
    labels = (("method", "GET"), ("route", "/api/v1/asr/result/{task_id}"), ("status", "404"))
    assert metrics[("asr_http_requests_total", labels)] == 3
