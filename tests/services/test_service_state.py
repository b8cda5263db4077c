"""The service lifecycle's one transition table, and its check on every status update."""

from __future__ import annotations

import pytest

from shipyard.errors import IllegalTransitionError, ShipyardError
from shipyard.services import ServiceState, ServiceStatus
from shipyard.services.state import TRANSITIONS, check_transition


def test_every_state_has_a_row() -> None:
    assert set(TRANSITIONS) == set(ServiceState)


@pytest.mark.parametrize("state", list(ServiceState))
def test_staying_is_always_allowed(state: ServiceState) -> None:
    status = ServiceStatus(state=state)
    status.update(state, "a new error")
    assert (status.state, status.last_error) == (state, "a new error")


@pytest.mark.parametrize(
    ("current", "new"),
    [(ServiceState.PENDING_SHUTDOWN, ServiceState.PENDING_STARTUP)],
)
def test_illegal_moves_raise_and_change_nothing(current: ServiceState, new: ServiceState) -> None:
    status = ServiceStatus(state=current)
    with pytest.raises(IllegalTransitionError, match=f"from {current.value} to {new.value}"):
        status.update(new, "never recorded")
    assert (status.state, status.last_error) == (current, "")
    assert issubclass(IllegalTransitionError, ShipyardError)
    assert IllegalTransitionError("x").status_code == 409


def test_the_table_is_what_update_checks() -> None:
    for current, targets in TRANSITIONS.items():
        for new in ServiceState:
            if new in targets:
                check_transition(current, new)
                status = ServiceStatus(state=current)
                status.update(new)
                assert (status.state, status.last_state) == (new, current)
            elif new == current:
                check_transition(current, new)
            else:
                with pytest.raises(IllegalTransitionError):
                    ServiceStatus(state=current).update(new)
