"""``consumer enable|disable|status``: the switch every worker reads before each receive.

A disabled consumer takes no new batch after its next poll (``consumer.poll_interval``),
finishes what it holds, and waits until the switch is enabled again.
"""

from __future__ import annotations

from dataclasses import dataclass

from constellation.wiring.migration import Migration


@dataclass(frozen=True)
class ConsumerReport:
    enabled: bool
    changed: bool
    queue_visible: int
    queue_in_flight: int
    dead_letters: int


def consumer(m: Migration, enabled: bool | None = None, *, reason: str = "") -> ConsumerReport:
    """Show the consumer switch, or set it (journaled) when ``enabled`` is given."""
    if enabled is None:
        state, changed = m.state.read(), False
    else:
        action = "enable" if enabled else "disable"
        done = m.state.transition(
            f"consumer {action}",
            reason or f"consumer {action}d by hand",
            lambda current: (
                None if current.consumer_enabled == enabled else {"consumer_enabled": enabled}
            ),
        )
        state, changed = done.after, done.changed
    depth, dead = m.services.queue.depth(), m.services.dead_letter.depth()
    return ConsumerReport(
        state.consumer_enabled, changed, depth.visible, depth.in_flight, dead.total
    )
