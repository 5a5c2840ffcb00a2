"""Fail CI when the PostgreSQL, local-model or browser tests were skipped or missing."""

import sys
import xml.etree.ElementTree as ElementTree

root = ElementTree.parse(sys.argv[1]).getroot()
cases = list(root.iter("testcase"))
groups = {
    "PostgreSQL": [c for c in cases if "postgres" in c.get("name", "").partition("[")[2]],
    "local model": [
        c
        for c in cases
        if c.get("classname", "").endswith(("test_local_backend", "test_local_scoring"))
    ],
    "web UI in Chromium": [
        c for c in cases if c.get("classname", "").endswith(("test_web_ui", "test_web_gates"))
    ],
}
failed = False
for group, members in groups.items():
    not_passed = [
        c.get("name")
        for c in members
        if any(c.find(tag) is not None for tag in ("skipped", "failure", "error"))
    ]
    print(f"{group} tests: {len(members) - len(not_passed)} passed, {len(not_passed)} not passed")  # noqa: T201
    if not members or not_passed:
        print(f"  missing or not passing: {not_passed[:10]}")  # noqa: T201
        failed = True
sys.exit(1 if failed else 0)
