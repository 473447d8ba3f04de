"""Which model a task runs on, and what that model cannot do: refused at submit with a 422
that says why, rather than quietly done some other way by the worker."""

from fastapi.exceptions import RequestValidationError

from app.config import Settings
from app.schemas import TaskOptions

MODEL_DOC = "One of the server's models (WHISPER_MODELS); its default model if absent."


def choose_model(settings: Settings, requested: str | None) -> str:
    """The requested model if the server offers it; WHISPER_MODEL when none is named."""
    if requested is None or not requested.strip():
        return settings.WHISPER_MODEL
    if requested.strip() not in settings.offered_models:
        raise RequestValidationError([{
            "type": "value_error", "loc": ("body", "model"), "input": requested,
            "msg": f"unknown model {requested!r}; available: "
                   + ", ".join(settings.offered_models),
        }])  # fmt: skip
    return requested.strip()


def check_model_supports(model: str, options: TaskOptions) -> None:
    """An English-only model (`*.en`) cannot transcribe another language or translate: say
    so rather than have faster-whisper quietly transcribe as English."""
    if not model.rstrip("/").endswith(".en"):
        return
    problems = []
    if options.language not in (None, "en"):
        problems.append(("language", options.language, f"{model} is an English-only model: "
                         "it transcribes English only; use `en` or `auto`, or a multilingual "
                         "model"))  # fmt: skip
    if options.task == "translate":
        problems.append(("task", options.task, f"{model} is an English-only model: it cannot "
                         "translate; use a multilingual model"))  # fmt: skip
    if problems:
        raise RequestValidationError([
            {"type": "value_error", "loc": ("body", field), "msg": message, "input": value}
            for field, value, message in problems
        ])  # fmt: skip
