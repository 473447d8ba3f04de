"""Response bodies built from rows (app/views.py)."""

from datetime import timedelta

from fastapi.testclient import TestClient

from tests.utils.records import make_task


def test_a_results_urls_name_the_host_and_prefix_each_request_came_by(client: TestClient, settings):
    """The route paths are looked up once per app (`task_url`); the host and the proxy's
    prefix are each request's own."""
    task_id = make_task(settings, "failed", timedelta(minutes=1))
    for host, prefix in (("a.example", ""), ("b.example:8443", "/stt"), ("a.example", "")):
        client.app.root_path = prefix  # type: ignore[attr-defined]  # as behind a proxy
        body = client.get(f"/api/v1/asr/result/{task_id}", headers={"Host": host}).json()
        base = f"http://{host}{prefix}/api/v1/asr"
        assert body["audio_url"] == f"{base}/audio/{task_id}"
        assert body["retry_url"] == f"{base}/retry/{task_id}"
    client.app.root_path = ""  # type: ignore[attr-defined]
