"""docs/PERFORMANCE.md is shared by several benchmarks: each replaces its own `## ` section."""

import re
from pathlib import Path


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the section under `heading` (`section` starts with it), or add it before the
    hand-written notes."""
    text = path.read_text() if path.exists() else "# Performance\n"
    ours = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.M | re.S)
    if ours.search(text):
        text = ours.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    elif (notes := text.find("\n## Notes")) >= 0:
        text = text[: notes + 1] + section.rstrip("\n") + "\n\n" + text[notes + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
