"""Recorded proxy runs as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.models import ProxyRun
from app.schemas.common import Page


class ProxyRunPublic(BaseModel):
    id: str
    dataset_id: str | None = Field(description="the dataset it was recorded on (null once that dataset is deleted)")
    job_id: str | None = Field(description="the job that trained it (null once that job is deleted)")
    proxy: dict[str, Any] = Field(description="the proxy model and schedule it was trained with")
    seed: int
    scores: dict[str, dict[str, Any]] = Field(description="every score it recorded, with the parameters it used")
    size_bytes: int
    created_at: datetime


class ProxyRunsPublic(Page[ProxyRunPublic]):
    pass


def proxy_run_public(run: ProxyRun) -> ProxyRunPublic:
    return ProxyRunPublic(
        id=run.id, dataset_id=run.dataset_id, job_id=run.job_id, proxy=run.summary["proxy"], seed=run.summary["seed"],
        scores=run.summary["scores"], size_bytes=run.size_bytes, created_at=run.created_at,
    )
