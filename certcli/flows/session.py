"""What one run shares: the store, the person at the terminal, a connection per CA."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from certcli.storage.protocol import Storage

if TYPE_CHECKING:
    from certcli.engine import Ca, CaSettings


class Session:
    """What one run shares: the store, how to ask the person at the terminal (if any),
    and one engine connection per CA, made on first use (so a renew with nothing due sends
    nothing) and shared by the run's threads."""

    def __init__(
        self,
        store: Storage,
        *,
        interactive: bool,
        accept_tos: Callable[[str], bool],
        pause: Callable[[str], None],
    ) -> None:
        self.store = store
        self.interactive = interactive
        self.accept_tos = accept_tos
        self.pause = pause  # shows a message and waits for Enter (manual DNS)
        self._cas: dict[CaSettings, Ca] = {}
        self._lock = threading.Lock()

    def get(self, settings: CaSettings) -> Ca:
        from certcli.engine import Ca  # the ACME stack: only once a CA is needed

        with self._lock:
            if settings not in self._cas:
                self._cas[settings] = Ca(self.store, settings, self.accept_tos)
            ca = self._cas[settings]
        ca.connect()  # outside the lock: a slow CA holds up only the threads that use it
        return ca
