"""Every script imports: most are run by people, not by the suite, so a moved module must not
break them unnoticed (scripts/bench.py once imported jobs/ by a path that no longer existed)."""

import importlib

import pytest

from tests.utils.paths import ROOT

SCRIPTS = sorted(path.stem for path in (ROOT / "scripts").glob("*.py") if path.stem != "__init__")


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_script_imports(name: str):
    module = importlib.import_module(f"scripts.{name}")
    assert module.__file__ == str(ROOT / "scripts" / f"{name}.py")
