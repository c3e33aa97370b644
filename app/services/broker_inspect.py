"""Which jobs a Redis broker holds a run-job message for, so the reaper can tell a lost doorbell from a
job that is only waiting in line.

Kombu's Redis transport (kombu/transport/redis.py) keeps a queue as a list named after it, plus one
list per priority step (``<queue><sep><step>``), and moves a message a worker reserved into the
``unacked`` hash until it is acknowledged; every key may carry ``global_keyprefix``. The names come
from kombu's own defaults, overridden by the same transport options the broker connection gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import Celery
from kombu.serialization import loads as decode_body
from kombu.serialization import prepare_accept_content
from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Channel as VirtualChannel
from kombu.utils.json import loads

REDIS_SCHEMES = ("redis", "rediss")
JSON_ONLY = prepare_accept_content(["json"])  # what the workers accept (app/core/celery_client.py)


class UnreadableMessage(Exception):
    """A run-job message whose job id cannot be read: the broker's content cannot be trusted to say which
    doorbells were lost, so nothing is rung on its word."""


class RedisBrokerInspector:
    def __init__(self, url: str, transport_options: Mapping[str, Any], task_name: str) -> None:
        self.url = url
        self.task_name = task_name
        channel = kombu_redis.Channel
        self.prefix: str = transport_options.get("global_keyprefix", channel.global_keyprefix)
        self.sep: str = transport_options.get("sep", channel.sep)
        self.priority_steps: list[int] = transport_options.get("priority_steps", channel.priority_steps)
        self.unacked_key: str = transport_options.get("unacked_key", channel.unacked_key)
        timeouts = ("socket_timeout", "socket_connect_timeout")
        self.timeouts = {name: transport_options[name] for name in timeouts if name in transport_options}

    def queue_keys(self, queue: str) -> list[str]:
        # As kombu's Channel._q_for_pri: step 0 is the bare queue name.
        return [self.prefix + (f"{queue}{self.sep}{step}" if step else queue) for step in self.priority_steps]

    def job_ids_in_broker(self, queues: Iterable[str]) -> set[str]:
        """Ids of the jobs with a message waiting in ``queues`` or reserved by any worker, read in one
        transaction so a message moving between the two is not missed (except in the instant between a
        worker's BRPOP and its HSET into ``unacked``, which the caller allows for)."""
        keys = [key for queue in sorted(set(queues)) for key in self.queue_keys(queue)]
        # A client per call: a pass every few seconds needs no pool, and none outlives a broker restart or a fork.
        with redis.Redis.from_url(self.url, **self.timeouts) as client:
            pipe = client.pipeline(transaction=True)
            for key in keys:
                pipe.lrange(key, 0, -1)
            pipe.hvals(self.prefix + self.unacked_key)
            *waiting, reserved = pipe.execute()
        payloads = [loads(raw) for values in waiting for raw in values]
        payloads += [loads(raw)[0] for raw in reserved]  # each is [message, exchange, routing key]
        return {job_id for payload in payloads if (job_id := self._job_id(payload)) is not None}

    def _job_id(self, payload: dict[str, Any]) -> str | None:
        if payload.get("headers", {}).get("task") != self.task_name:
            return None  # another task's message, or not Celery's
        try:
            body = payload["body"]
            encoding = payload.get("properties", {}).get("body_encoding")
            if encoding:
                body = VirtualChannel.codecs[encoding].decode(body)
            # Celery's task protocol 2: the body is [args, kwargs, embed]; run_job's only argument is the id.
            args, _, _ = decode_body(body, payload["content-type"], payload["content-encoding"], accept=JSON_ONLY)
            return str(args[0])
        except Exception as exc:
            raise UnreadableMessage(f"cannot read the job id of a {self.task_name} message") from exc


def inspector_for(celery: Celery, task_name: str) -> RedisBrokerInspector | None:
    """An inspector of ``celery``'s broker, or None for one that cannot be inspected (the filesystem broker)."""
    url = str(celery.conf.broker_url or "")
    if urlsplit(url).scheme not in REDIS_SCHEMES or ";" in url:  # a failover list: which server holds them?
        return None
    return RedisBrokerInspector(url, celery.conf.broker_transport_options or {}, task_name)
