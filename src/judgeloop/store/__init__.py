"""Persistence: the only code that opens transactions and commits."""

from judgeloop.store.criteria import add_criteria, get_criterion, list_criteria
from judgeloop.store.engine import db_session, make_engine
from judgeloop.store.errors import InvalidInputError, NotFoundError, Problem
from judgeloop.store.keys import authenticate, create_key, list_keys, revoke_key
from judgeloop.store.labels import add_labels, check_labels, labels_for_criterion
from judgeloop.store.migrate import current_revision, upgrade
from judgeloop.store.sessions import add_sessions, count_sessions, find_sessions, get_session

__all__ = [
    "InvalidInputError",
    "NotFoundError",
    "Problem",
    "add_criteria",
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
]
