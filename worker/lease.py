"""Background threads that keep the database's view of workers honest.

``LeaseKeeper`` renews the lease of the job this process runs; if it cannot (the reaper gave the job
to someone else) it raises the ``lost`` flag and the job stops at its next cancellation check.
``Reaper`` runs in each worker's main process and recovers jobs whose worker died or whose doorbell was
lost. It keeps one ``Doorbell`` for its life, since on Redis a message counts as lost only once two of
its passes in a row missed it. Each pass also deletes this host's decoded-cache entries of datasets that
were deleted (``app.services.decoded.purge_decoded_cache``).
"""

from __future__ import annotations

import logging
import threading

from app.core.config import Settings
from app.core.db import Database
from app.core.periodic import Periodic
from app.services import decoded, jobs
from app.services.doorbell import Doorbell

log = logging.getLogger(__name__)


class LeaseKeeper(Periodic):
    def __init__(self, db: Database, job_id: str, worker_id: str, lease_s: float) -> None:
        super().__init__(self.renew, lease_s / 3, name=f"lease-{job_id}")
        self.db = db
        self.job_id = job_id
        self.worker_id = worker_id
        self.lease_s = lease_s
        self.lost = threading.Event()

    def renew(self) -> bool:
        """One renewal; False once the job is no longer this worker's (``lost`` is then set)."""
        try:
            with self.db.session() as session:
                owned = jobs.renew_lease(session, self.job_id, self.worker_id, self.lease_s)
        except Exception:
            log.warning("could not renew the lease of job %s", self.job_id, exc_info=True)
            return True
        if not owned:
            log.warning("job %s is no longer leased to %s; stopping it", self.job_id, self.worker_id)
            self.lost.set()
        return owned


class Reaper:
    def __init__(self, doorbell: Doorbell, interval_s: float, settings: Settings) -> None:
        self.doorbell = doorbell
        self.interval_s = interval_s
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reaper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            try:
                rung = self.doorbell.reap()
                if rung:
                    log.info("reaper re-rang the doorbell for %s", ", ".join(rung))
                with self.doorbell.db.session() as session:
                    if purged := decoded.purge_decoded_cache(session, self.settings):
                        log.info("deleted the decoded-cache entries of %d deleted datasets", len(purged))
            except Exception:
                log.warning("reaper pass failed", exc_info=True)
            if self._stop.wait(self.interval_s):
                return
