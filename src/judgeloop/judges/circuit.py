"""A circuit breaker per model: stop calling a provider that keeps failing, then probe it.

Closed: calls go through; each failed request of a provider-health kind (timeout, rate limit,
connection, 5xx, auth) adds to a count of consecutive failures, each success resets it. At
``failure_threshold`` the breaker opens: calls fail at once, without a request, for
``cooldown_s``. Then it is half-open: one trial call goes through (the others still fail fast);
its success closes the breaker, its failure opens it for another cooldown.

Breakers are per process and shared by every backend that calls the same model at the same
endpoint (``breaker_for``), so the scoring worker, ``?wait=true`` requests and CLI runs in one
process stop hammering a failing provider together.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from judgeloop.config import get_settings

State = Literal["closed", "open", "half_open"]


class CircuitOpenError(Exception):
    """A call refused without a request because the model's breaker is open."""


@dataclass
class CircuitBreaker:
    """Consecutive-failure breaker with a cooldown and a single half-open trial call.

    Thread-safe: the worker thread and request threads share one breaker per model.
    """

    name: str
    failure_threshold: int = 5
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    failures: int = field(default=0, init=False)
    opened_at: float | None = field(default=None, init=False)
    trial_in_flight: bool = field(default=False, init=False)
    times_opened: int = field(default=0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError(f"failure_threshold must be at least 1, got {self.failure_threshold}")
        if self.cooldown_s < 0:
            raise ValueError(f"cooldown_s must not be negative, got {self.cooldown_s}")

    @property
    def state(self) -> State:
        """Closed, open (failing fast) or half-open (cooldown over, a trial allowed)."""
        with self._lock:
            return self._state()

    def _state(self) -> State:
        if self.opened_at is None:
            return "closed"
        if self.clock() - self.opened_at < self.cooldown_s:
            return "open"
        return "half_open"

    def before_call(self) -> bool:
        """Admit a call or raise ``CircuitOpenError``; True when the call is the trial.

        Raises:
            CircuitOpenError: the breaker is open, or half-open with its trial in flight.
        """
        with self._lock:
            state = self._state()
            if state == "closed":
                return False
            if state == "half_open" and not self.trial_in_flight:
                self.trial_in_flight = True
                return True
            remaining = max(self.cooldown_s - (self.clock() - (self.opened_at or 0.0)), 0.0)
        raise CircuitOpenError(
            f"circuit open for {self.name} after {self.failure_threshold} consecutive failures; "
            f"no request sent (next trial in {remaining:.1f}s)"
        )

    def record_success(self) -> None:
        """A request answered: close the breaker and forget past failures."""
        with self._lock:
            self.failures = 0
            self.opened_at = None
            self.trial_in_flight = False

    def record_failure(self, *, trial: bool = False) -> None:
        """A request failed in a way that says the provider is unwell."""
        with self._lock:
            self.failures += 1
            if trial or (self.opened_at is None and self.failures >= self.failure_threshold):
                self.opened_at = self.clock()
                self.times_opened += 1
            if trial:
                self.trial_in_flight = False

    def release_trial(self) -> None:
        """The trial call ended without telling anything about the provider (e.g. cancelled)."""
        with self._lock:
            self.trial_in_flight = False


_breakers: dict[tuple[str, str], CircuitBreaker] = {}
_registry_lock = threading.Lock()


def breaker_for(model: str, api_base: str | None = None) -> CircuitBreaker:
    """The process-wide breaker of ``model`` at ``api_base``, made from Settings on first use.

    Thresholds come from ``JUDGELOOP_JUDGE_CIRCUIT_FAILURES`` and
    ``JUDGELOOP_JUDGE_CIRCUIT_COOLDOWN_SECONDS``.
    """
    key = (model, api_base or "")
    with _registry_lock:
        breaker = _breakers.get(key)
        if breaker is None:
            settings = get_settings()
            breaker = CircuitBreaker(
                name=model if not api_base else f"{model} at {api_base}",
                failure_threshold=settings.judge_circuit_failures,
                cooldown_s=settings.judge_circuit_cooldown_seconds,
            )
            _breakers[key] = breaker
        return breaker
