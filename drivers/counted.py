"""What every parser exposes and the instruments' drivers share: the writes it declares
(``allowed_writes``, all the port layer will send) and its drops by reason, read live,
each with the last line or frame it dropped (what ``check-config --probe`` shows); and,
with no device clock, no boots to count."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

EXAMPLE_BYTES = 120


class CountedParser:
    def __init__(self, allowed: Iterable[bytes], reasons: Iterable[str]) -> None:
        self._allowed = frozenset(allowed)
        self._dropped = dict.fromkeys(reasons, 0)
        self.examples: dict[str, bytes] = {}
        """The last line or frame dropped for each reason (its first ``EXAMPLE_BYTES``)."""

    def _count(self, reason: str, example: bytes = b"") -> None:
        self._dropped[reason] += 1
        if example:
            self.examples[reason] = example[:EXAMPLE_BYTES]

    @property
    def allowed_writes(self) -> frozenset[bytes]:
        return self._allowed

    @property
    def dropped(self) -> Mapping[str, int]:
        return self._dropped

    @property
    def boots(self) -> int:
        return 0  # no device clock: nothing restarts
