"""The OpenAPI page documents every field and the error responses of each route."""

from tests.utils.api import submitted
from tests.utils.audio import audio_file
from tests.utils.records import task_row

# The task columns the submit form's optional fields fill.
FORM_COLUMNS = ("model", "language", "hotwords", "initial_prompt", "beam_size", "temperature",
                "vad_threshold", "vad_min_speech_ms", "vad_min_silence_ms", "vad_speech_pad_ms",
                "client_metadata", "callback_url", "callback_secret")  # fmt: skip


def submit_form(spec: dict) -> dict:
    form_ref = spec["paths"]["/api/v1/asr/submit"]["post"]["requestBody"]["content"][
        "multipart/form-data"]["schema"]["$ref"]  # fmt: skip
    return spec["components"]["schemas"][form_ref.rsplit("/", 1)[-1]]


def test_submit_documents_its_fields_and_errors(client):
    spec = client.get("/openapi.json").json()
    submit = spec["paths"]["/api/v1/asr/submit"]["post"]
    assert {"202", "400", "413", "415", "422", "503"} <= submit["responses"].keys()
    form = submit_form(spec)
    fields = {"audio", "language", "task", "word_timestamps", "hotwords", "initial_prompt",
              "vad_filter", "beam_size"}  # fmt: skip
    assert fields <= form["properties"].keys()
    assert all(form["properties"][f].get("description") for f in fields)


def test_result_documents_404_and_every_status(client):
    spec = client.get("/openapi.json").json()
    read = spec["paths"]["/api/v1/asr/result/{task_id}"]["get"]
    assert {"200", "404", "422"} <= read["responses"].keys()
    public = spec["components"]["schemas"]["TaskPublic"]
    assert public["properties"]["status"]["enum"] == [
        "queued", "processing", "done", "failed", "canceled"
    ]  # fmt: skip
    assert client.get("/docs").status_code == 200


def test_every_field_of_every_schema_is_described(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    undocumented = [
        f"{name}.{field}"
        for name, schema in schemas.items()
        for field, spec in schema.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert undocumented == []


def test_422_is_documented_with_our_error_body(client):
    spec = client.get("/openapi.json").json()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            if "422" in operation["responses"]:
                ref = operation["responses"]["422"]["content"]["application/json"]["schema"]
                assert ref["$ref"].endswith("/ValidationErrorBody"), (method, path)


def test_routes_that_need_a_key_declare_the_bearer_and_header_schemes(client):
    """So that /docs has an Authorize button, and generated clients know where keys go."""
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"] == {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "`Authorization: Bearer <key>`"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                   "description": "`X-API-Key: <key>`"},
    }  # fmt: skip
    keyed = [(method, path) for path, methods in spec["paths"].items()
             if path.startswith(("/api/v1/", "/v1/")) for method in methods]  # fmt: skip
    assert ("post", "/api/v1/asr/submit") in keyed and len(keyed) > 10
    for method, path in keyed:
        operation = spec["paths"][path][method]
        assert operation["security"] == [{"bearer": []}, {"apiKey": []}], (method, path)
    assert "security" not in spec["paths"]["/health"]["get"]


def test_every_nullable_submit_field_takes_null_or_blank_as_unset(client, settings):
    """Multipart has no null: generated clients and a browser's FormData send None as the
    text `null`, and forms leave fields blank. Where the schema says a field is nullable,
    both mean what leaving it out means."""
    form = submit_form(client.get("/openapi.json").json())
    nullable = {name for name, field in form["properties"].items()
                if {"type": "null"} in field.get("anyOf", [])}  # fmt: skip
    assert {"model", "language", "hotwords", "beam_size", "metadata", "callback_url"} <= nullable
    unset = task_row(settings, submitted(client, audio_file("jfk.flac")))
    for name in nullable:
        is_text = any(t.get("type") == "string" for t in form["properties"][name]["anyOf"])
        for value in ("null", "", *(["  "] if is_text else [])):
            row = task_row(settings, submitted(client, audio_file("jfk.flac"), **{name: value}))
            for column in FORM_COLUMNS:
                assert getattr(row, column) == getattr(unset, column), (name, value, column)
