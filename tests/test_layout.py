"""Imports flow one way: the web process never loads the model, the worker never loads
FastAPI (../shared/STYLE.md §1)."""

import subprocess
import sys

import pytest

from tests.utils.paths import ROOT


def modules_loaded_by(statement: str) -> set[str]:
    code = f"{statement}; import sys; print(' '.join(sys.modules))"
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return {name.split(".")[0] for name in output.split()}


def test_the_api_does_not_load_faster_whisper():
    loaded = modules_loaded_by("from app.main import create_app")
    assert not loaded & {"faster_whisper", "ctranslate2", "onnxruntime"}


@pytest.mark.parametrize(
    "module",
    [
        "jobs.worker",
        "jobs.transcription.transcribe",
        "jobs.maintenance",
        "jobs.deliveries",
        "jobs.cron",
        "storage",
        "models",
    ],
)
def test_worker_side_does_not_load_the_web_stack(module: str):
    loaded = modules_loaded_by(f"import {module}")
    assert not loaded & {"fastapi", "starlette", "uvicorn"}
