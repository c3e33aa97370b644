"""Service settings, read once from ``CONDENSE_*`` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every tunable of the API and the workers; see docs/settings.md for the full list.

    Defaults give the embedded mode (SQLite, local blob folder, filesystem broker), which needs
    no other process; production points the URLs at Postgres and Redis.
    """

    model_config = SettingsConfigDict(env_prefix="CONDENSE_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path(".condense")
    database_url: str = ""
    broker_url: str = ""
    blob_dir: Path | None = None
    work_dir: Path | None = None

    max_upload_bytes: int = Field(2 * 1024**3, ge=1)
    # Every request body that is not a multipart upload (job specs, JSON datasets); 413 past it.
    max_json_body_bytes: int = Field(64 * 1024, ge=1)
    dataset_test_fraction: float = Field(0.2, gt=0, lt=1)  # engine.data.split.TEST_FRACTION (test_single_source)
    dataset_split_seed: int = 0
    # Decoded datasets kept on each worker's disk (under data_dir/cache/datasets, or dataset_cache_dir) so a
    # job does not decode an archive another job decoded; least recently used first out; 0 turns it off.
    dataset_cache_bytes: int = Field(8 * 2**30, ge=0)
    dataset_cache_dir: Path | None = None
    # engine.data.LoadLimits, field by field (``dataset_`` + its name); None keeps the engine's
    # default, which stays written in one place (and config.py need not import the engine).
    dataset_max_samples: int | None = Field(None, ge=1)
    dataset_max_image_side: int | None = Field(None, ge=1)
    dataset_max_decoded_bytes: int | None = Field(None, ge=1)
    dataset_max_archive_members: int | None = Field(None, ge=1)
    dataset_max_uncompressed_bytes: int | None = Field(None, ge=1)
    dataset_max_compression_ratio: float | None = Field(None, gt=1)

    # "off" serves every request as the tenant "local": for a single user on one machine only.
    auth: Literal["keys", "off"] = "keys"
    tenant_max_active_jobs: int = Field(16, ge=1)
    tenant_max_stored_bytes: int = Field(50 * 1024**3, ge=1)
    quota_retry_after_s: int = Field(30, ge=1)

    gpu_worker_available: bool = False
    task_soft_time_limit_s: int = Field(6 * 3600, ge=1)
    task_time_limit_s: int = Field(6 * 3600 + 300, ge=1)
    lease_s: int = Field(60, ge=2)
    max_attempts: int = Field(3, ge=1)
    reaper_interval_s: float = Field(15.0, gt=0)
    progress_interval_s: float = Field(0.5, ge=0)
    cancel_check_interval_s: float = Field(1.0, ge=0)
    events_poll_interval_s: float = Field(0.5, gt=0)
    # A dead or unreachable database or broker must fail a request in seconds, not hang it.
    dependency_timeout_s: float = Field(5.0, gt=0)
    # Each statement on PostgreSQL: the server cancels one that runs longer, and a server that stops
    # answering (frozen, not down) has the connection closed 2 s later; either way the request gets 503.
    statement_timeout_s: float = Field(15.0, gt=0)
    retry_after_s: int = Field(5, ge=1)
    # How long the API and the workers wait at start-up for the database before they give up.
    startup_db_wait_s: float = Field(60.0, ge=0)
    # A queued job whose doorbell rang this long ago is rung again: the backstop for a lost message
    # where the broker's queues cannot be read (the filesystem broker), and for one a dead worker had
    # reserved. On Redis a message lost in a restart is found sooner: the reapers look for each waiting
    # job's message and ring again one missing on two passes in a row. Duplicates are no-ops (claim is a
    # compare-and-set), but each waiting job gets one extra message per period, so keep it well above
    # the time a job waits in line.
    doorbell_stale_s: float = Field(300.0, gt=0)

    @model_validator(mode="after")
    def _fill_paths_and_check(self) -> Settings:
        # Derived defaults live under data_dir so one variable moves the whole embedded service.
        self.data_dir = self.data_dir.resolve()
        if not self.database_url:
            if self.environment == "production":
                raise ValueError("CONDENSE_DATABASE_URL must be set in production (SQLite is for one host)")
            self.database_url = f"sqlite:///{self.data_dir / 'condense.db'}"
        if not self.broker_url:
            if self.environment == "production":
                raise ValueError(
                    "CONDENSE_BROKER_URL must be set in production (the filesystem broker is for one host)"
                )
            self.broker_url = "filesystem://"
        self.blob_dir = (self.blob_dir or self.data_dir / "blobs").resolve()
        self.work_dir = (self.work_dir or self.data_dir / "work").resolve()
        if self.environment == "production" and self.auth == "off":
            raise ValueError("CONDENSE_AUTH=off is refused in production: every caller would share one tenant")
        if self.task_time_limit_s <= self.task_soft_time_limit_s:
            raise ValueError("CONDENSE_TASK_TIME_LIMIT_S must exceed CONDENSE_TASK_SOFT_TIME_LIMIT_S")
        return self

    @classmethod
    def from_variables(cls, variables: Mapping[str, str]) -> Settings:
        """The settings a process started with these ``CONDENSE_*`` variables would read (a child's
        environment built by ``app.launch``, as opposed to this process's own)."""
        return cls(**{k.removeprefix("CONDENSE_").lower(): v for k, v in variables.items()})

    @property
    def blob_root(self) -> Path:
        assert self.blob_dir is not None  # filled by the validator
        return self.blob_dir

    @property
    def dataset_cache_root(self) -> Path:
        return (self.dataset_cache_dir or self.data_dir / "cache" / "datasets").resolve()

    @property
    def work_root(self) -> Path:
        assert self.work_dir is not None  # filled by the validator
        return self.work_dir

    @property
    def local_key_file(self) -> Path:
        """Where the embedded default keeps the local user's API key (mode 0600)."""
        return self.data_dir / "api-key"

    @property
    def broker_folder(self) -> Path:
        return self.data_dir / "broker"

    def broker_transport_options(self) -> dict[str, Any]:
        # Redis redelivers an unacknowledged task after visibility_timeout; it must outlast the
        # hard limit or a long job would run twice at once.
        options: dict[str, Any] = {"visibility_timeout": self.task_time_limit_s + 600}
        if self.broker_url.startswith(("redis://", "rediss://")):
            # The worker's BRPOP waits 1 s at a time, well inside the socket timeout.
            timeout = self.dependency_timeout_s
            options |= {"socket_connect_timeout": timeout, "socket_timeout": timeout}
        if self.broker_url.startswith("filesystem://"):
            folder = self.broker_folder
            options |= {
                "data_folder_in": str(folder / "queue"),
                "data_folder_out": str(folder / "queue"),
                "control_folder": str(folder / "control"),
                "processed_folder": str(folder / "processed"),
                "store_processed": False,
            }
        return options

    def ensure_folders(self) -> None:
        for folder in (self.data_dir, self.blob_root, self.work_root):
            folder.mkdir(parents=True, exist_ok=True)
        if self.broker_url.startswith("filesystem://"):
            for key in ("data_folder_in", "control_folder", "processed_folder"):
                Path(self.broker_transport_options()[key]).mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
