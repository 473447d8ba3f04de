"""The baseline of `scripts/bench.py --only api`: a minimal FastAPI app doing the same database
work as the service's routes, with nothing else — no auth, no ORM, no Redis, no logging. It
is part of the benchmark, not of the product.

    BASELINE_DATABASE_URL=postgresql://postgres@127.0.0.1/asr_bench \\
    uvicorn --factory scripts.bench_api_baseline:create_app --no-access-log
"""

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, UploadFile
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool


def create_app() -> FastAPI:
    pool = ConnectionPool(
        os.environ["BASELINE_DATABASE_URL"], min_size=4, max_size=10,
        kwargs={"row_factory": dict_row}, open=True,
    )  # fmt: skip
    uploads = Path(os.environ.get("BASELINE_UPLOADS", tempfile.mkdtemp(prefix="baseline-")))
    uploads.mkdir(parents=True, exist_ok=True)
    with pool.connection() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS baseline_upload (id uuid PRIMARY KEY, "
                     "size bigint, created_at timestamptz DEFAULT now())")  # fmt: skip
    app = FastAPI()

    @app.get("/hello")
    def hello() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/result/{task_id}")
    def result(task_id: uuid.UUID) -> Any:
        with pool.connection() as conn:
            return conn.execute("SELECT * FROM task WHERE id = %s", (task_id,)).fetchone()

    @app.get("/history")
    def history() -> dict[str, Any]:
        with pool.connection() as conn:
            total: Any = conn.execute("SELECT count(*) AS n FROM task").fetchone()
            rows = conn.execute(
                "SELECT * FROM task ORDER BY created_at DESC, seq DESC LIMIT 20"
            ).fetchall()
        return {"total": total["n"] if total else 0, "records": rows}

    @app.post("/submit", status_code=202)
    def submit(audio: UploadFile) -> dict[str, Any]:
        task_id = uuid.uuid4()
        with (uploads / f"{task_id}.bin").open("wb") as out:
            shutil.copyfileobj(audio.file, out, 1024 * 1024)
            size = out.tell()
        with pool.connection() as conn:
            conn.execute("INSERT INTO baseline_upload (id, size) VALUES (%s, %s)",
                         (task_id, size))  # fmt: skip
        return {"task_id": task_id, "status": "queued"}

    return app
