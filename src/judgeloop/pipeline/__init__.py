"""The serving pipeline: score sessions with the active judges, decide, escalate.

Modules: ``context`` (per-criterion state), ``process`` (judge, decide, store, queue),
``worker`` (pending sessions, in-process thread or `judgeloop worker`), ``build`` (a worker
from Settings), ``results`` (decisions as the API returns them).
"""
