"""Persistence: the only code that opens transactions and commits."""

from judgeloop.store.calibrations import add_calibration, latest_calibration
from judgeloop.store.criteria import add_criteria, get_criterion, list_criteria
from judgeloop.store.drift import (
    drift_alarms,
    drift_monitors,
    observe_agreement,
    observe_label,
    reset_drift,
)
from judgeloop.store.engine import db_session, make_engine
from judgeloop.store.errors import ConflictError, InvalidInputError, NotFoundError, Problem
from judgeloop.store.judges import (
    add_judgments,
    get_judge_version,
    judged_session_ids,
    judgments_for_version,
    list_judge_versions,
    register_judge_version,
)
from judgeloop.store.keys import authenticate, create_key, list_keys, revoke_key
from judgeloop.store.labels import add_labels, check_labels, labels_for_criterion
from judgeloop.store.migrate import current_revision, upgrade
from judgeloop.store.queue import (
    JudgeVerdict,
    QueueLoad,
    ReviewItemView,
    ReviewOutcome,
    ReviewPublic,
    assign_clusters,
    claim_item,
    claim_next,
    enqueue,
    expire_leases,
    item_for_reviewer,
    list_queue,
    queue_load,
    release_item,
    submit_review,
)
from judgeloop.store.sessions import add_sessions, count_sessions, find_sessions, get_session
from judgeloop.store.splits import get_splits, record_splits

__all__ = [
    "add_calibration",
    "latest_calibration",
    "add_judgments",
    "get_judge_version",
    "judged_session_ids",
    "judgments_for_version",
    "list_judge_versions",
    "register_judge_version",
    "get_splits",
    "record_splits",
    "ConflictError",
    "InvalidInputError",
    "NotFoundError",
    "Problem",
    "add_criteria",
    "drift_alarms",
    "drift_monitors",
    "observe_agreement",
    "observe_label",
    "reset_drift",
    "add_labels",
    "check_labels",
    "add_sessions",
    "authenticate",
    "count_sessions",
    "create_key",
    "current_revision",
    "db_session",
    "find_sessions",
    "get_criterion",
    "get_session",
    "labels_for_criterion",
    "list_criteria",
    "list_keys",
    "make_engine",
    "revoke_key",
    "upgrade",
    "JudgeVerdict",
    "QueueLoad",
    "ReviewItemView",
    "ReviewOutcome",
    "ReviewPublic",
    "assign_clusters",
    "claim_item",
    "claim_next",
    "enqueue",
    "expire_leases",
    "item_for_reviewer",
    "list_queue",
    "queue_load",
    "release_item",
    "submit_review",
]
