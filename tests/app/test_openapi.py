"""The OpenAPI page documents every field and the error responses of each route."""


def test_submit_documents_its_fields_and_errors(client):
    spec = client.get("/openapi.json").json()
    submit = spec["paths"]["/api/v1/asr/submit"]["post"]
    assert {"202", "400", "413", "415", "422", "503"} <= submit["responses"].keys()
    form_ref = submit["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"]
    form = spec["components"]["schemas"][form_ref.rsplit("/", 1)[-1]]
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
