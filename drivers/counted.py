"""What every parser exposes and the instruments' drivers share: the writes it declares
(``allowed_writes``, all the port layer will send) and its drops by reason, read live;
and, with no device clock, no boots to count."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class CountedParser:
    def __init__(self, allowed: Iterable[bytes], reasons: Iterable[str]) -> None:
        self._allowed = frozenset(allowed)
        self._dropped = dict.fromkeys(reasons, 0)

    @property
    def allowed_writes(self) -> frozenset[bytes]:
        return self._allowed

    @property
    def dropped(self) -> Mapping[str, int]:
        return self._dropped

    @property
    def boots(self) -> int:
        return 0  # no device clock: nothing restarts
