"""Fail CI when the PostgreSQL variants of the database tests were skipped or missing."""

import sys
import xml.etree.ElementTree as ElementTree

root = ElementTree.parse(sys.argv[1]).getroot()
postgres_cases = [
    case for case in root.iter("testcase") if "postgres" in case.get("name", "").partition("[")[2]
]
not_passed = [
    case.get("name")
    for case in postgres_cases
    if case.find("skipped") is not None
    or case.find("failure") is not None
    or case.find("error") is not None
]
passed = len(postgres_cases) - len(not_passed)
print(f"PostgreSQL tests: {passed} passed, {len(not_passed)} not passed")  # noqa: T201
if not postgres_cases or not_passed:
    sys.exit(f"PostgreSQL tests missing or not passing: {not_passed[:10]}")
