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
# The public human-labelled datasets live outside the repository (../shared/datasets or
# JUDGELOOP_PUBLIC_DATA_DIR); tests that need them may skip when a checkout has none.
OPTIONAL_DATA = "public dataset"


def not_passing(case: ElementTree.Element) -> bool:
    """Failed, errored, or skipped for any reason but absent public data."""
    if case.find("failure") is not None or case.find("error") is not None:
        return True
    skipped = case.find("skipped")
    return skipped is not None and OPTIONAL_DATA not in (skipped.get("message") or "")


failed = False
for group, members in groups.items():
    not_passed = [c.get("name") for c in members if not_passing(c)]
    data_skips = sum(1 for c in members if c.find("skipped") is not None) - sum(
        1 for c in members if c.find("skipped") is not None and not_passing(c)
    )
    ran = len(members) - len(not_passed) - data_skips
    print(  # noqa: T201
        f"{group} tests: {ran} passed, {len(not_passed)} not passed"
        + (f", {data_skips} skipped for absent public data" if data_skips else "")
    )
    if not members or not_passed:
        print(f"  missing or not passing: {not_passed[:10]}")  # noqa: T201
        failed = True
sys.exit(1 if failed else 0)
