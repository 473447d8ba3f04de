"""Reading SRT and WebVTT bodies."""

import re

SRT_TIME = r"\d\d:\d\d:\d\d,\d{3}"
VTT_TIME = r"\d\d:\d\d:\d\d\.\d{3}"


def seconds(stamp: str) -> float:
    hours, minutes, rest = stamp.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def cues(body: str, time_pattern: str = SRT_TIME) -> list[tuple[float, float, list[str]]]:
    """(start, end, lines) of each cue of an SRT or VTT body, checking each timing line's
    form on the way (a VTT header block has no timing line and is skipped)."""
    parsed = []
    for block in body.strip().split("\n\n"):
        lines = block.split("\n")
        timing = next((i for i, line in enumerate(lines) if " --> " in line), None)
        if timing is None:
            continue
        assert re.fullmatch(rf"{time_pattern} --> {time_pattern}", lines[timing]), lines[timing]
        start, end = lines[timing].split(" --> ")
        parsed.append((seconds(start), seconds(end), lines[timing + 1 :]))
    return parsed


def spoken(body: str) -> str:
    """The cue texts of an SRT or VTT body, joined, without numbers and timings."""
    return " ".join(" ".join(lines) for _, _, lines in cues(body, r"[\d:.,]+"))
