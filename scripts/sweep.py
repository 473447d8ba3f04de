"""Run one retention pass by hand: `python scripts/sweep.py [--dry-run]`.

Uses the same settings (MAX_RECORDINGS, RECORDING_MAX_AGE, RECORDINGS_MAX_BYTES,
TRANSCRIPT_MAX_AGE) and the same lock as the scheduled sweep.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.upkeep.sweeper import SweepReport, sweep


def print_report(report: SweepReport) -> None:
    verb = "would remove" if report.dry_run else "removed"
    for removal in report.recordings:
        print(f"{verb} recording {removal.key} ({removal.size} bytes): {removal.reason}")
    for removal in report.orphans:
        print(f"{verb} orphan file {removal.key} ({removal.size} bytes)")
    for task_id in report.tasks_deleted:
        print(f"{verb} task {task_id} (older than TRANSCRIPT_MAX_AGE)")
    for task_id in report.vanished:
        print(f"task {task_id}: recording had vanished from storage")
    print(report.summary())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one retention pass.")
    parser.add_argument("--dry-run", action="store_true", help="print, remove nothing")
    args = parser.parse_args(argv)
    report = sweep(dry_run=args.dry_run)
    print_report(report)
    return 1 if report.skipped else 0


if __name__ == "__main__":
    sys.exit(main())
