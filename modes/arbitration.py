"""Request arbitration between the cab selector (CAN, always wins) and the engineer's API (remote).

- A change of the cab selector is a request from source "cab": TRANSPORT/SWEEPER/SNOW ask for that mode,
  OFF asks for TRANSPORT (stow). Moving to REMOTE hands requests over to the API and asks for nothing.
- The first selector value seen after start asks for nothing (no unexpected start: a selector left on
  SWEEPER does not engage the sweeper when the service starts); neither does an invalid (None) value, which
  also keeps the last valid position as the reference.
- A remote request is accepted for consideration only while the selector is on REMOTE.
"""

from __future__ import annotations

from modes.types import CabSelector, Mode, Refusal

SELECTOR_TARGET: dict[CabSelector, Mode] = {
    CabSelector.OFF: Mode.TRANSPORT,
    CabSelector.TRANSPORT: Mode.TRANSPORT,
    CabSelector.SWEEPER: Mode.SWEEPER,
    CabSelector.SNOW: Mode.SNOW,
}

CAB_SELECTOR_NOT_REMOTE = Refusal(
    "cab_selector_not_remote", "the cab mode selector is not on REMOTE: the cab has control"
)
UNKNOWN_SOURCE = Refusal("unknown_source", "request source must be 'cab' or 'remote'")


class CabArbiter:
    """Edge detector on `SSC_Equipment.CabModeSelector` plus the source rule for requests."""

    def __init__(self) -> None:
        self._last: CabSelector | None = None

    @property
    def selector(self) -> CabSelector | None:
        """The last valid selector position seen."""
        return self._last

    def poll(self, selector: CabSelector | None) -> Mode | None:
        """The mode the cab asks for in this cycle, or None when the selector did not change."""
        if selector is None:
            return None
        previous, self._last = self._last, selector
        if previous is None or previous == selector:
            return None
        return SELECTOR_TARGET.get(selector)

    @staticmethod
    def source_refusal(source: str, selector: CabSelector | None) -> Refusal | None:
        """Why a request from `source` may not be considered now (None: it may)."""
        if source == "cab":
            return None
        if source == "remote":
            return None if selector is CabSelector.REMOTE else CAB_SELECTOR_NOT_REMOTE
        return UNKNOWN_SOURCE
