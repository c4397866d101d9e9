"""CabArbiter: selector edges become cab requests; remote requests need the selector on REMOTE."""

import pytest

from modes import CabSelector, Mode
from modes.arbitration import CabArbiter


def test_first_value_and_repeats_request_nothing() -> None:
    arb = CabArbiter()
    assert arb.poll(CabSelector.SWEEPER) is None  # no unexpected start
    assert arb.poll(CabSelector.SWEEPER) is None
    assert arb.selector is CabSelector.SWEEPER


@pytest.mark.parametrize(
    ("selector", "target"),
    [
        (CabSelector.OFF, Mode.TRANSPORT),
        (CabSelector.TRANSPORT, Mode.TRANSPORT),
        (CabSelector.SWEEPER, Mode.SWEEPER),
        (CabSelector.SNOW, Mode.SNOW),
        (CabSelector.REMOTE, None),
    ],
)
def test_changes_map_to_targets(selector: CabSelector, target: Mode | None) -> None:
    arb = CabArbiter()
    start = CabSelector.SNOW if selector is not CabSelector.SNOW else CabSelector.TRANSPORT
    arb.poll(start)
    assert arb.poll(selector) is target


def test_invalid_selector_keeps_the_last_position() -> None:
    arb = CabArbiter()
    arb.poll(CabSelector.TRANSPORT)
    assert arb.poll(None) is None
    assert arb.selector is CabSelector.TRANSPORT
    assert arb.poll(CabSelector.TRANSPORT) is None  # back from NA to the same position: no request
    assert arb.poll(CabSelector.SNOW) is Mode.SNOW


def test_source_rule() -> None:
    assert CabArbiter.source_refusal("cab", CabSelector.SWEEPER) is None
    assert CabArbiter.source_refusal("remote", CabSelector.REMOTE) is None
    for selector in (None, CabSelector.OFF, CabSelector.TRANSPORT, CabSelector.SWEEPER, CabSelector.SNOW):
        refusal = CabArbiter.source_refusal("remote", selector)
        assert refusal is not None and refusal.name == "cab_selector_not_remote"
    refusal = CabArbiter.source_refusal("api", CabSelector.REMOTE)
    assert refusal is not None and refusal.name == "unknown_source"
