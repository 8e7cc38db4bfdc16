"""Convert the mentor-match sample sign-ups (mentors.csv, mentees.csv) into a matcher instance.

The shared data is not part of this project: pass the folder that holds the two CSV files.
The shape follows the data's README (peer comparison): mentee row i becomes participant
``mentee-<i>`` (role ``patient_leader``), mentor row i becomes ``mentor-<i>`` (role ``manager``
for the HR and Operations professions, else ``clinician``); ``organisation`` is a slug of the
department, ``organisation_type`` ``government-department``, ``system`` ``uk-civil-service``;
interest tags ``profession:<p>`` and ``identity:<x>`` (a mentor's characteristics, a mentee's
identity to match). Names, emails, job titles and biographies are dropped. One online cohort
``c1`` with capacity max(mentors, mentees), one session date, sets of 3-4 pairs.

Usage:
  python benchmarks/mentor_match.py PATH/TO/large -o /tmp/mentor-match-large.json
  python -m matcher solve /tmp/mentor-match-large.json --format json -o /tmp/plan.json
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path
from typing import Any

MANAGER_PROFESSIONS = {"hr", "operations"}


def slug(text: str) -> str:
    """Lower case, runs of other characters replaced by one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", text.strip().lower()).strip("-")


def _tags(profession: str, identities: str) -> list[str]:
    tags = [f"profession:{slug(profession)}"] if profession.strip() else []
    for part in identities.split(","):
        if part.strip():
            tags.append(f"identity:{slug(part)}")
    return sorted(set(tags))


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def convert(folder: Path, *, name: str = "mentor-match") -> dict[str, Any]:
    """The instance (a JSON-ready dict) for ``folder/mentors.csv`` and ``folder/mentees.csv``."""
    mentors = _rows(folder / "mentors.csv")
    mentees = _rows(folder / "mentees.csv")
    width = max(3, len(str(max(len(mentors), len(mentees)) - 1)))
    people: list[dict[str, Any]] = []
    for i, row in enumerate(mentees):
        people.append(
            {
                "id": f"mentee-{i:0{width}d}",
                "role": "patient_leader",
                "organisation": slug(row["organisation"]),
                "organisation_type": "government-department",
                "system": "uk-civil-service",
                "interests": _tags(row["profession"], row.get("identity to match", "")),
            }
        )
    for i, row in enumerate(mentors):
        role = "manager" if slug(row["profession"]) in MANAGER_PROFESSIONS else "clinician"
        people.append(
            {
                "id": f"mentor-{i:0{width}d}",
                "role": role,
                "organisation": slug(row["organisation"]),
                "organisation_type": "government-department",
                "system": "uk-civil-service",
                "interests": _tags(row["profession"], row.get("characteristics", "")),
            }
        )
    return {
        "schema_version": "1",
        "name": name,
        "cohorts": [
            {
                "id": "c1",
                "name": "mentor-match (online)",
                "sessions": ["2023-03-08"],
                "capacity_pairs": max(len(mentors), len(mentees)),
                "mode": "online",
                "set_size": {"min_pairs": 3, "max_pairs": 4},
            }
        ],
        "participants": people,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder holding mentors.csv and mentees.csv")
    parser.add_argument("-o", "--output", type=Path, required=True, help="instance JSON to write")
    parser.add_argument("--name", default=None, help="instance name (default: mentor-match-DIR)")
    args = parser.parse_args()
    name = args.name or f"mentor-match-{slug(args.folder.resolve().name)}"
    data = convert(args.folder, name=name)
    args.output.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {len(data['participants'])} participants, 1 cohort")


if __name__ == "__main__":
    main()
