"""Session and label files: parsing, validation and import with errors naming file and line."""

from judgeloop.sessions.importer import (
    ImportFailedError,
    ImportReport,
    import_criteria,
    import_labels,
    import_sessions,
    load_criteria_file,
)
from judgeloop.sessions.jsonl import (
    LineError,
    ParsedLine,
    count_lines,
    describe_validation_error,
    read_jsonl,
)

__all__ = [
    "ImportFailedError",
    "ImportReport",
    "LineError",
    "ParsedLine",
    "count_lines",
    "describe_validation_error",
    "import_criteria",
    "import_labels",
    "import_sessions",
    "load_criteria_file",
    "read_jsonl",
]
