"""scripts/serve on a stock Debian Python: no uv on PATH, `pip install` refused outside a
virtual environment (PEP 668). It installs uv into a virtual environment of the checkout's
own, or says in one line what to install."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.utils.paths import ROOT

DEBIAN_PYTHON = Path("/usr/bin/python3")
BARE_PATH = "/usr/bin:/bin"

pytestmark = pytest.mark.skipif(
    not DEBIAN_PYTHON.exists() or any(Path(d, "uv").exists() for d in BARE_PATH.split(":")),
    reason="needs the distribution's python3 and no uv in /usr/bin or /bin",
)


def checkout_with_serve(tmp_path: Path) -> Path:
    """Just scripts/serve: `--which-uv` stops before the dependencies are installed."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "serve", checkout / "scripts" / "serve")
    (tmp_path / "home").mkdir()
    return checkout


def run_serve(checkout: Path, path: str = BARE_PATH) -> subprocess.CompletedProcess[str]:
    """As a new user's shell would: nothing but PATH and HOME (`env -i`)."""
    return subprocess.run(
        ["env", "-i", f"PATH={path}", f"HOME={checkout.parent / 'home'}", "bash",
         str(checkout / "scripts" / "serve"), "--which-uv"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_serve_installs_uv_into_a_private_virtual_environment(tmp_path: Path):
    checkout = checkout_with_serve(tmp_path)

    first = run_serve(checkout)

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == ".uv-bootstrap/bin/uv"
    version = subprocess.run([checkout / ".uv-bootstrap" / "bin" / "uv", "--version"],
                             capture_output=True, text=True, check=True)  # fmt: skip
    assert version.stdout.startswith("uv ")
    again = run_serve(checkout)  # found, not installed twice
    assert again.returncode == 0 and again.stdout.strip() == ".uv-bootstrap/bin/uv"
    assert "installing" not in again.stderr


def test_serve_says_what_to_install_when_python_cannot_make_a_venv(tmp_path: Path):
    """Debian without python3-venv: `python3 -m venv` fails (no ensurepip)."""
    checkout = checkout_with_serve(tmp_path)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "python3").write_text(  # `python3 -m venv DIR`: DIR made, then the failure
        '#!/bin/sh\nmkdir -p "$3/bin"\necho \'The virtual environment was not created '
        "successfully because ensurepip is not available.' >&2\nexit 1\n"
    )
    (fake_bin / "python3").chmod(0o755)

    refused = run_serve(checkout, path=f"{fake_bin}:{BARE_PATH}")

    assert refused.returncode == 1
    said = [line for line in refused.stderr.splitlines() if "cannot install uv" in line]
    assert len(said) == 1 and "apt-get install python3-venv" in said[0], refused.stderr
    assert "astral.sh/uv/install.sh" in said[0]
    assert not (checkout / ".uv-bootstrap").exists()  # nothing half made left to trip on
