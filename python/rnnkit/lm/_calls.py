"""One call at a time per model: the models' calls change shared state (the train/eval mode
that ``evaluate`` and ``generate`` switch to and back, the caches a forward keeps for its
backward), so a call from a second thread waits for the first to end."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class OneCallAtATime:
    """A reentrant lock per model, made when first needed and left out of pickles and copies
    (a copy is a new model: nobody is calling it)."""

    def _calls(self) -> threading.RLock:
        lock = self.__dict__.get("_calls_lock")
        if lock is None:  # (setdefault is atomic: two first calls get one lock)
            lock = self.__dict__.setdefault("_calls_lock", threading.RLock())
        return lock  # type: ignore[no-any-return]

    def __getstate__(self) -> dict[str, Any]:
        # (pickle's default restore, __dict__.update, then takes the rest as it is)
        state = self.__dict__.copy()
        state.pop("_calls_lock", None)
        return state


def one_call_at_a_time(method: F) -> F:
    """``method`` holding its model's lock: calls from other threads wait (the same thread may
    call in again, as ``fit`` calls ``evaluate``)."""

    @functools.wraps(method)
    def wrapper(self: OneCallAtATime, *args: Any, **kwargs: Any) -> Any:
        with self._calls():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
