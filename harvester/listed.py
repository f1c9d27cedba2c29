"""The identifiers listed to a run so far, to notice one listed again on a later page (and, for the deletion
check, the identifiers a source lists: a million of them in 16 MB).

An upstream that pages by offset and whose list changes while it is harvested shifts what comes after the change,
and says nothing. A record added before the next page's offset makes the last record of a page come again at the
start of the next one, and is itself never listed; one that moves to the end of the list (changed, in a list in
datestamp order) makes the record after it be skipped, and comes again itself. A repeat is the sign a run sees.

Memory: a run may list millions of records, and the harvester keeps under 250 MB at a million. A set of the
identifiers would hold 140 MB at a million (58-character identifiers), a set of their hashes 76 MB; this keeps
the 64-bit hashes in one flat table of 8-byte slots, at most 3/4 full: 16 MB at a million, 24 while it grows
(measured; 1.1 us an identifier, where a record costs a run about 660: bench/RESULTS.md). The hash is Python's
own, keyed afresh in every process, so that no upstream can choose identifiers that collide; two that collide by
chance (a run of a million records meets such a pair once in 30 million runs) are taken for a repeat: a warning
too many, never a record lost.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

_UNSIGNED = (1 << 64) - 1
_FREE = 0


class ListedIdentifiers:
    """A set of identifiers that keeps only their hashes, in an open-addressing table (linear probing)."""

    def __init__(self, slots: int = 1 << 12) -> None:
        self._slots = array("Q", bytes(8 * slots))  # a power of two
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return len(self._slots) * self._slots.itemsize

    def again(self, identifiers: Iterable[str]) -> list[str]:
        """Remember one page's identifiers; returns those listed before (on earlier pages: an identifier the page
        holds twice is returned only if an earlier page held it too)."""
        return [identifier for identifier in dict.fromkeys(identifiers) if not self._add(_key(identifier))]

    def __contains__(self, identifier: str) -> bool:
        key = _key(identifier)
        return self._slots[_slot(self._slots, key)] == key

    def _add(self, key: int) -> bool:
        """False if `key` was there already."""
        if not _place(self._slots, key):
            return False
        self._count += 1
        if self._count * 4 > len(self._slots) * 3:
            bigger = array("Q", bytes(2 * self.nbytes))
            for held in self._slots:
                if held != _FREE:
                    _place(bigger, held)
            self._slots = bigger
        return True


def _key(identifier: str) -> int:
    return hash(identifier) & _UNSIGNED or 1  # 0 marks a free slot


def _slot(slots: array, key: int) -> int:
    """Where `key` is in `slots`, or the free slot where it goes: at its hash's place or the first after it."""
    mask = len(slots) - 1
    at = key & mask
    while (held := slots[at]) != key and held != _FREE:
        at = (at + 1) & mask
    return at


def _place(slots: array, key: int) -> bool:
    """Put `key` into `slots`; False if it was there."""
    at = _slot(slots, key)
    if slots[at] == key:
        return False
    slots[at] = key
    return True
