"""Celery delivery settings and queue routing (the parts a misconfiguration would silently break)."""

from __future__ import annotations

import pytest

from app.core.celery_client import RUN_JOB_TASK, create_celery
from app.core.config import Settings
from app.core.problems import ProblemError
from app.services.jobs import queue_for


def test_delivery_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, task_soft_time_limit_s=100, task_time_limit_s=200)
    conf = create_celery(settings).conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert (conf.task_soft_time_limit, conf.task_time_limit) == (100, 200)
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
    assert {q.name for q in conf.task_queues} == {"cpu", "gpu"}
    # The embedded broker keeps its folders under the data dir, and never runs tasks in-process.
    assert conf.broker_transport_options["data_folder_in"].startswith(str(tmp_path))
    assert not conf.task_always_eager


def test_a_dead_redis_cannot_hang_a_caller(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/0", dependency_timeout_s=3)
    conf = create_celery(settings).conf
    assert conf.broker_connection_timeout == 3
    options = conf.broker_transport_options
    assert options["socket_connect_timeout"] == options["socket_timeout"] == 3


def test_task_is_registered() -> None:
    import worker.tasks  # noqa: F401 - registers the task
    from worker.celery_app import celery_app

    assert RUN_JOB_TASK in celery_app.tasks


@pytest.mark.parametrize(
    ("device", "gpu_worker", "queue"),
    [("cpu", True, "cpu"), ("cuda", True, "gpu"), ("auto", False, "cpu"), ("auto", True, "gpu")],
)
def test_device_routing(tmp_path, device: str, gpu_worker: bool, queue: str) -> None:  # type: ignore[no-untyped-def]
    assert queue_for(device, Settings(data_dir=tmp_path, gpu_worker_available=gpu_worker)) == queue


def test_cuda_without_a_gpu_worker_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProblemError, match="CONDENSE_GPU_WORKER_AVAILABLE=true") as refused:
        queue_for("cuda", Settings(data_dir=tmp_path, gpu_worker_available=False))
    assert (refused.value.status, refused.value.errors[0]["field"]) == (422, "device")


def test_production_refuses_embedded_defaults(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="CONDENSE_DATABASE_URL"):
        Settings(data_dir=tmp_path, environment="production")
