"""One press, one key: the caller's keys as two sources report them, merged (sans-IO).

ARI reports each key the caller presses (ChannelDtmfReceived on the caller's channel), and so
does a media transport that carries the call's keys itself (chan_websocket's DTMF_END, as
the bridge passes the key on to its channel). The two reports of one press come a few ms to
~0.2 s apart, in either order; each source alone may also miss one. ``KeyMerge`` passes the
first report of a press and drops the other: a key is a repeat when the other source
reported the same key within ``window_s`` and that report has not been matched yet.
"""

from __future__ import annotations

from collections import deque

DEFAULT_WINDOW_S = 1.0


class KeyMerge:
    def __init__(self, window_s: float = DEFAULT_WINDOW_S) -> None:
        self.window_s = window_s
        # per source: keys it reported first, (key, when), that the other has not yet
        self._unmatched: dict[str, deque[tuple[str, float]]] = {}
        self.repeats = 0

    def accept(self, source: str, key: str, now: float) -> bool:
        """True: a new press (pass it on); False: another source's report of one passed."""
        for name, unmatched in self._unmatched.items():
            while unmatched and now - unmatched[0][1] > self.window_s:
                unmatched.popleft()
            if name == source:
                continue
            for index, (earlier, _) in enumerate(unmatched):
                if earlier == key:
                    del unmatched[index]
                    self.repeats += 1
                    return False
        self._unmatched.setdefault(source, deque()).append((key, now))
        return True
