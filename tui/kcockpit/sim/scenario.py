"""The scenario timeline: healthy -> broken -> fixed -> dns-overload, driven by a clock.

In auto mode the phase is a pure function of time since `start_ns` (phase durations in
seconds, optionally looping), so a seeded simulator replays the same story for the same
clock. `set_phase(name)` and `next_phase()` pin a phase from that moment on (manual
mode), which is how the cockpit's demo steps through the story. `phase` (a property)
is the phase now; `phase_at(t_ns)` the phase at any time. Listeners are called
with (phase, at_ns) whenever the phase changes, from whichever thread noticed it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from kcockpit.sim.clock import Clock, SystemClock
from kcockpit.sim.world import PHASES

DEFAULT_DURATIONS_S = {"healthy": 60.0, "broken": 60.0, "fixed": 60.0, "dns-overload": 60.0}
AUTO = "auto"

PhaseListener = Callable[[str, int], None]


class Scenario:
    def __init__(
        self,
        clock: Clock | None = None,
        mode: str = AUTO,
        durations_s: dict[str, float] | None = None,
        loop: bool = True,
        start_ns: int | None = None,
    ) -> None:
        if mode != AUTO and mode not in PHASES:
            raise ValueError(f"unknown scenario {mode!r}: expected auto or one of {', '.join(PHASES)}")
        durations = {**DEFAULT_DURATIONS_S, **(durations_s or {})}
        for name, seconds in durations.items():
            if name not in PHASES:
                raise ValueError(f"unknown scenario phase {name!r} in durations: expected one of {', '.join(PHASES)}")
            if seconds <= 0:
                raise ValueError(f"phase {name} must last more than 0 seconds, got {seconds}")
        self.clock = clock or SystemClock()
        self.start_ns = self.clock.now_ns() if start_ns is None else start_ns
        self.loop = loop
        self._durations_ns = [int(durations[name] * 1_000_000_000) for name in PHASES]
        self._cycle_ns = sum(self._durations_ns)
        # Manual pins, oldest first: (from_ns, phase). A fixed-phase scenario is pinned at start.
        self._pins: list[tuple[int, str]] = [] if mode == AUTO else [(self.start_ns, mode)]
        self._listeners: list[PhaseListener] = []
        self._lock = threading.Lock()
        self._last_seen = self.phase_at(self.start_ns)

    @property
    def manual(self) -> bool:
        return bool(self._pins)

    def durations_s(self) -> dict[str, float]:
        return {name: ns / 1e9 for name, ns in zip(PHASES, self._durations_ns, strict=True)}

    def phase_at(self, t_ns: int) -> str:
        """The phase in force at time t_ns (pins apply from the moment they were made)."""
        pins = self._pins
        if pins and t_ns >= pins[0][0]:
            for from_ns, phase in reversed(pins):
                if t_ns >= from_ns:
                    return phase
        elapsed = max(0, t_ns - self.start_ns)
        if self.loop:
            elapsed %= self._cycle_ns
        for name, duration in zip(PHASES, self._durations_ns, strict=True):
            if elapsed < duration:
                return name
            elapsed -= duration
        return PHASES[-1]  # not looping and past the end: the story stays in its last phase

    @property
    def phase(self) -> str:
        """The current phase; notifies listeners if it changed since last asked."""
        now = self.clock.now_ns()
        phase = self.phase_at(now)
        self._notify_if_changed(phase, now)
        return phase

    def seconds_left(self) -> float | None:
        """Seconds until the next automatic change, or None when none will come."""
        now = self.clock.now_ns()
        if self._pins and now >= self._pins[0][0]:
            return None
        elapsed = max(0, now - self.start_ns)
        if not self.loop and elapsed >= self._cycle_ns:
            return None
        elapsed %= self._cycle_ns
        for duration in self._durations_ns:
            if elapsed < duration:
                return (duration - elapsed) / 1e9
            elapsed -= duration
        return None

    def set_phase(self, name: str) -> None:
        if name not in PHASES:
            raise ValueError(f"unknown scenario phase {name!r}: expected one of {', '.join(PHASES)}")
        now = self.clock.now_ns()
        with self._lock:
            self._pins.append((now, name))
        self._notify_if_changed(name, now)

    def next_phase(self) -> str:
        """Pin the phase after the current one (the last wraps around to healthy)."""
        following = PHASES[(PHASES.index(self.phase) + 1) % len(PHASES)]
        self.set_phase(following)
        return following

    def add_listener(self, listener: PhaseListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: PhaseListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify_if_changed(self, phase: str, at_ns: int) -> None:
        with self._lock:
            if phase == self._last_seen:
                return
            self._last_seen = phase
        for listener in list(self._listeners):
            listener(phase, at_ns)
