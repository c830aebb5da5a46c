"""Reorder buffer for one inbound RTP stream (sans-IO: packets in, ready packets out).

In-order packets come straight back out of ``add()``: the buffer only holds packets that
arrived after a gap. It waits for a missing packet until a packet ``capacity`` sequence numbers
later arrives, then gives up on it (counted ``lost``) so the delay it adds is bounded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ari_offload.media.rtp import RtpPacket, seq_add, seq_diff

# RFC 3550 appendix A.1: a jump this far is a restarted stream, not loss or reordering.
MAX_DROPOUT = 3000
MAX_MISORDER = 100


@dataclass
class JitterStats:
    received: int = 0  # packets given to add()
    lost: int = 0  # sequence numbers given up on
    duplicates: int = 0  # already buffered or already played out
    late: int = 0  # arrived after the playout point had passed them
    resets: int = 0  # new SSRC or a sequence jump: the buffer restarted


class JitterBuffer:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"jitter buffer capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.stats = JitterStats()
        self._slots: dict[int, RtpPacket] = {}
        self._ssrc: int | None = None  # None until the first packet
        self._next = 0  # sequence number due for playout
        self._advanced = 0  # how far playout has moved since the stream started
        # Sequence numbers given up on, to tell "late" from "duplicate" when one turns up.
        self._skipped: deque[int] = deque(maxlen=MAX_MISORDER)

    @property
    def pending(self) -> int:
        """Packets held back waiting for a gap to fill."""
        return len(self._slots)

    def add(self, packet: RtpPacket) -> list[RtpPacket]:
        """Take one packet; return the packets now ready, in sequence order."""
        self.stats.received += 1
        out: list[RtpPacket] = []
        if packet.ssrc != self._ssrc:
            out = self._restart(packet)
        seq = packet.sequence_number
        delta = seq_diff(seq, self._next)
        if delta < -MAX_MISORDER or delta > MAX_DROPOUT:
            out = self._restart(packet)
            delta = 0
        if delta < 0:
            self._count_old(seq, -delta)
            return out
        if seq in self._slots:
            self.stats.duplicates += 1
            return out
        if delta >= self.capacity:
            out += self._skip_to(seq_add(seq, 1 - self.capacity))
        self._slots[seq] = packet
        out += self._release()
        return out

    def flush(self) -> list[RtpPacket]:
        """Return every held packet in order, giving up on the gaps between them."""
        if not self._slots:
            return []
        start = self._next
        last = max(self._slots, key=lambda seq: seq_diff(seq, start))
        return self._skip_to(seq_add(last, 1))

    def _restart(self, packet: RtpPacket) -> list[RtpPacket]:
        out = self.flush()
        if self._ssrc is not None:
            self.stats.resets += 1
        self._ssrc = packet.ssrc
        self._next = packet.sequence_number
        self._advanced = 0
        self._skipped.clear()
        return out

    def _count_old(self, seq: int, behind: int) -> None:
        if seq in self._skipped:
            self._skipped.remove(seq)
            self.stats.late += 1
        elif behind > self._advanced:
            self.stats.late += 1  # from before the first packet we saw
        else:
            self.stats.duplicates += 1  # it has already been played out

    def _skip_to(self, new_next: int) -> list[RtpPacket]:
        out = []
        while self._next != new_next:
            packet = self._slots.pop(self._next, None)
            if packet is None:
                self.stats.lost += 1
                self._skipped.append(self._next)
            else:
                out.append(packet)
            self._next = seq_add(self._next, 1)
            self._advanced += 1
        return out

    def _release(self) -> list[RtpPacket]:
        out = []
        while self._next in self._slots:
            out.append(self._slots.pop(self._next))
            self._next = seq_add(self._next, 1)
            self._advanced += 1
        return out
