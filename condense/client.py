"""The Python client of the Condense API: ``from condense import Client``.

    client = Client()                                     # CONDENSE_URL / CONDENSE_API_KEY, or the local server
    dataset = client.datasets.upload("pets.zip", progress=True)
    job = client.jobs.submit({"kind": "prune", "dataset_id": dataset.id, "keep": 0.1})
    job.wait(progress=True)                               # a live bar in a terminal or a notebook
    job.download("out/")                                  # every file, resumed where a download stopped
    job.kept()                                            # the kept samples with their source files, as columns

Every call retries a 503 or 429 answer with backoff, waiting what ``Retry-After`` asks, and a dropped connection
for requests that are safe to repeat. A 4xx answer raises :class:`CondenseError` carrying the problem+json body
(its ``field`` names what to fix). Only httpx and rich are imported up front; numpy, safetensors and torch are
imported by the helpers that return arrays.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Self

import httpx

if TYPE_CHECKING:
    import numpy as np
    import torch
    from rich.console import Console

DEFAULT_URL = "http://127.0.0.1:8000"
TERMINAL = ("succeeded", "failed", "canceled")
_RETRY_STATUSES = (429, 503)
_IDEMPOTENT = ("GET", "HEAD", "DELETE", "OPTIONS")


class CondenseError(Exception):
    """An answer the API refused, with its RFC 9457 problem body (``field`` and ``hint`` where it gives them)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.title = str(problem.get("title", "error"))
        self.detail = str(problem.get("detail", ""))
        errors = problem.get("errors") or []
        self.errors: list[dict[str, Any]] = errors  # one per field: {"field", "message", ...}
        self.field = problem.get("field") or (errors[0].get("field") if errors else None)
        super().__init__(f"{status} {self.title}: {self.detail}" if self.detail else f"{status} {self.title}")


class JobFailed(Exception):
    """A job that ended failed or canceled when its caller waited for success."""

    def __init__(self, job: Job) -> None:
        self.job = job
        error = job.data.get("error") or {}
        super().__init__(f"job {job.id} {job.status}" + (f": {error.get('message')}" if error else ""))


def local_api_key(data_dir: str | os.PathLike[str] | None = None) -> str | None:
    """The key the embedded server writes for its local user (``$CONDENSE_DATA_DIR/api-key``, by default
    ``.condense/api-key`` in the working folder), or None where there is none."""
    folder = Path(data_dir or os.environ.get("CONDENSE_DATA_DIR", ".condense"))
    try:
        return (folder / "api-key").read_text().strip() or None
    except OSError:
        return None


def _is_local(url: str) -> bool:
    return httpx.URL(url).host in ("127.0.0.1", "localhost", "::1")


class Client:
    """A session with one Condense server.

    Args:
        url: the server (default ``CONDENSE_URL``, else ``http://127.0.0.1:8000``).
        api_key: the tenant's key (default ``CONDENSE_API_KEY``, else the embedded server's local key file when
            the server is on this machine).
        timeout: seconds per request (uploads and downloads stream: each read waits at most this).
        retries: how many times a 503/429 answer or a dropped connection is retried.
        transport: an httpx transport (tests hand one in; normally unset).
    """

    def __init__(self, url: str | None = None, api_key: str | None = None, *, timeout: float = 60.0, retries: int = 5,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = (url or os.environ.get("CONDENSE_URL") or DEFAULT_URL).rstrip("/")
        key = api_key or os.environ.get("CONDENSE_API_KEY") or (local_api_key() if _is_local(self.url) else None)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.retries = retries
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self.datasets = Datasets(self)
        self.jobs = Jobs(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One API call, retried as the module says; raises :class:`CondenseError` on a refusal."""
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError:
                if method not in _IDEMPOTENT or attempt == self.retries:
                    raise
                time.sleep(_backoff(attempt))
                continue
            if response.status_code in _RETRY_STATUSES and attempt < self.retries:
                time.sleep(_retry_after(response, attempt))
                continue
            return _checked(response)
        raise AssertionError("unreachable")

    def get_json(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def methods(self) -> dict[str, Any]:
        """Every score, selection policy, distillation family and method, model and format, with parameters."""
        return self.get_json("/v1/methods")

    def health(self) -> bool:
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.TransportError:
            return False


def _backoff(attempt: int) -> float:
    return min(30.0, 0.5 * 2**attempt)


def _retry_after(response: httpx.Response, attempt: int) -> float:
    value = response.headers.get("Retry-After", "")
    return min(60.0, float(value)) if value.replace(".", "", 1).isdigit() else _backoff(attempt)


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code < 400:
        return response
    try:
        problem = response.json()
    except ValueError:
        problem = {"title": response.reason_phrase, "detail": response.text[:500]}
    raise CondenseError(response.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)})


def _checked_stream(response: httpx.Response) -> None:
    if response.status_code >= 400:
        response.read()  # the problem body, which a streamed answer has not read yet
        _checked(response)


class _Record:
    """An API object: ``data`` is its JSON; the common fields are attributes."""

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self.client = client
        self.data = data

    @property
    def id(self) -> str:
        return self.data["id"]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.id!r})"


class Dataset(_Record):
    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def classes(self) -> list[str]:
        return [c["name"] for c in self.data["classes"]]

    def delete(self) -> None:
        self.client.datasets.delete(self.id)


class Datasets:
    def __init__(self, client: Client) -> None:
        self.client = client

    def upload(self, path: str | os.PathLike[str], name: str | None = None, progress: bool = False) -> Dataset:
        """Upload a dataset file (any format of ``condense formats``); the same bytes uploaded again return the
        record made the first time."""
        path = Path(path)
        with open(path, "rb") as f:
            stream: BinaryIO = _ProgressReader(f, path.stat().st_size, f"uploading {path.name}") if progress else f
            data = {"name": name} if name else None
            # One try: a multipart body is not replayed (a 503 here is the caller's to retry).
            response = _checked(self.client._http.post("/v1/datasets", files={"file": (path.name, stream)}, data=data,
                                                       timeout=None))
        return Dataset(self.client, response.json())

    def builtin(self, name: str = "digits") -> Dataset:
        """Register a dataset that ships with the server (``digits``)."""
        return Dataset(self.client, self.client.request("POST", "/v1/datasets", json={"builtin": name}).json())

    def list(self, limit: int = 200) -> list[Dataset]:
        """Every dataset of the tenant, newest first."""
        return [Dataset(self.client, d) for d in _pages(self.client, "/v1/datasets", limit)]

    def get(self, dataset_id: str) -> Dataset:
        return Dataset(self.client, self.client.get_json(f"/v1/datasets/{dataset_id}"))

    def delete(self, dataset_id: str) -> None:
        self.client.request("DELETE", f"/v1/datasets/{dataset_id}")


class Jobs:
    def __init__(self, client: Client) -> None:
        self.client = client

    def submit(self, spec: Mapping[str, Any], idempotency_key: str | None = None) -> Job:
        """Queue a job of ``spec`` (the body of ``POST /v1/jobs``). With an ``idempotency_key`` the call is
        retried on a dropped connection and a repeat returns the first job."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        if idempotency_key:
            response = self.client.request("POST", "/v1/jobs", json=dict(spec), headers=headers)
        else:
            response = _checked(self.client._http.post("/v1/jobs", json=dict(spec)))
        return Job(self.client, response.json())

    def list(self, status: str | None = None, kind: str | None = None, dataset_id: str | None = None,
             limit: int = 200) -> list[Job]:
        """The tenant's jobs, newest first, optionally filtered."""
        pages = _pages(self.client, "/v1/jobs", limit, status=status, kind=kind, dataset_id=dataset_id)
        return [Job(self.client, j) for j in pages]

    def get(self, job_id: str) -> Job:
        return Job(self.client, self.client.get_json(f"/v1/jobs/{job_id}"))

    def cancel(self, job_id: str) -> Job:
        return Job(self.client, self.client.request("POST", f"/v1/jobs/{job_id}/cancel").json())

    def delete(self, job_id: str) -> None:
        self.client.request("DELETE", f"/v1/jobs/{job_id}")

    def events(self, job_id: str, after: int = 0) -> Iterator[dict[str, Any]]:
        """The job's events (``status``, ``progress``, ``warning``) as they happen, until it has finished; a
        dropped stream is resumed from the last event seen."""
        cursor = after
        for attempt in range(self.client.retries + 1):
            try:
                with self.client._http.stream("GET", f"/v1/jobs/{job_id}/events", params={"after": cursor},
                                              headers={"Accept": "text/event-stream"}, timeout=None) as response:
                    _checked_stream(response)
                    for event in _server_sent(response.iter_lines()):
                        cursor = int(event["id"])
                        yield event
                return
            except httpx.TransportError:
                if attempt == self.client.retries:
                    raise
                time.sleep(_backoff(attempt))


def _pages(client: Client, path: str, limit: int, **filters: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while len(out) < limit:
        page = client.get_json(path, cursor=cursor, limit=min(200, limit - len(out)), **filters)
        out += page["data"]
        if not (cursor := page.get("next_cursor")):
            break
    return out


def _server_sent(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Events of a text/event-stream: each ``data:`` payload (JSON) with its ``id``."""
    data: list[str] = []
    event_id = None
    for line in lines:
        if not line:
            if data and event_id is not None:
                yield {**json.loads("\n".join(data)), "id": event_id}
            data, event_id = [], None
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif line.startswith("id:"):
            event_id = line[3:].strip()


class Job(_Record):
    @property
    def status(self) -> str:
        return self.data["status"]

    @property
    def kind(self) -> str:
        return self.data["kind"]

    @property
    def metrics(self) -> dict[str, Any]:
        return self.data.get("metrics") or {}

    @property
    def artifacts(self) -> dict[str, dict[str, Any]]:
        return {a["name"]: a for a in self.data["artifacts"]}

    def refresh(self) -> Job:
        self.data = self.client.get_json(f"/v1/jobs/{self.id}")
        return self

    def cancel(self) -> Job:
        self.data = self.client.jobs.cancel(self.id).data
        return self

    def delete(self) -> None:
        self.client.jobs.delete(self.id)

    def wait(self, progress: bool = False, raise_on_failure: bool = True) -> Job:
        """Follow the job to its end (over its event stream), with a live bar of its stage and progress if
        ``progress``; raises :class:`JobFailed` if it failed or was canceled, unless told not to."""
        bar = _JobBar(self) if progress else None
        try:
            for event in self.client.jobs.events(self.id):
                if bar is not None:
                    bar.update(event)
        finally:
            if bar is not None:
                bar.close()
        self.refresh()
        if raise_on_failure and self.status != "succeeded":
            raise JobFailed(self)
        return self

    def read(self, name: str) -> bytes:
        """One artifact's bytes."""
        return self.client.request("GET", f"/v1/jobs/{self.id}/artifacts/{name}").content

    def download(self, folder: str | os.PathLike[str], names: list[str] | None = None) -> list[Path]:
        """The job's files (or ``names``) into ``folder``: a file already there whole is skipped, a partial one is
        resumed with a Range request, and each is checked against its sha256."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, artifact in self.artifacts.items():
            if names is not None and name not in names:
                continue
            path = out / name
            have = path.stat().st_size if path.is_file() else 0
            if have != artifact["size_bytes"] or _sha256(path) != artifact["sha256"]:
                if have >= artifact["size_bytes"]:
                    have = 0  # a different file of that name: fetched again
                self._fetch(name, path, have)
                if _sha256(path) != artifact["sha256"]:
                    raise CondenseError(502, {"title": "download damaged", "detail": f"{name} does not match its sha256"})
            written.append(path)
        return written

    def download_zip(self, path: str | os.PathLike[str]) -> Path:
        """Every file of the job in one zip at ``path`` (members under a folder named after the job)."""
        path = Path(path)
        with self.client._http.stream("GET", f"/v1/jobs/{self.id}/artifacts.zip", timeout=None) as response:
            _checked_stream(response)
            with open(path, "wb") as f:
                f.writelines(response.iter_bytes())
        return path

    def _fetch(self, name: str, path: Path, start: int) -> None:
        headers = {"Range": f"bytes={start}-"} if start else {}
        with self.client._http.stream("GET", f"/v1/jobs/{self.id}/artifacts/{name}", headers=headers,
                                      timeout=None) as response:
            _checked_stream(response)
            resumed = response.status_code == 206
            with open(path, "ab" if resumed else "wb") as f:
                f.writelines(response.iter_bytes())

    def kept(self) -> dict[str, np.ndarray]:
        """A prune job's kept samples, most important first, as columns (``index``, ``source``, ``label``,
        ``class_name``, ``score``, ``rank``): ``pandas.DataFrame(job.kept())`` makes it a table."""
        import numpy as np

        rows = list(csv.DictReader(io.StringIO(self.read("kept.csv").decode())))
        kinds = {"index": np.int64, "label": np.int64, "rank": np.int64, "score": np.float64}
        names = ("index", "source", "label", "class_name", "score", "rank")
        return {name: np.array([r[name] for r in rows], dtype=kinds.get(name, str)) for name in names}

    def indices(self) -> np.ndarray:
        """A prune job's kept indices in the engine's training order."""
        import numpy as np

        return np.load(io.BytesIO(self.read("indices.npy")), allow_pickle=False)

    def synthetic(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A distill job's synthetic images (normalised, as models train on them) and labels (hard, or soft
        logits for the methods that learn them)."""
        from safetensors.torch import load as load_safetensors

        tensors = load_safetensors(self.read("synthetic.safetensors"))
        return tensors["images"], tensors["labels"]


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _progress_console() -> Console:
    """Bars go to stderr, so a script's stdout holds only what it prints (in a notebook rich draws them inline)."""
    from rich.console import Console

    return Console(stderr=True)


class _ProgressReader(io.RawIOBase):
    """A file read through a rich progress bar (an upload's body)."""

    def __init__(self, f: BinaryIO, total: int, label: str) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        self._f = f
        self._progress = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), console=_progress_console())
        self._task = self._progress.add_task(label, total=total)
        self._progress.start()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._progress.advance(self._task, len(data))
        if not data:
            self._progress.stop()
        return data


class _JobBar:
    """A job's stage and progress as a rich bar (rich draws it in a terminal and in a Jupyter notebook)."""

    def __init__(self, job: Job) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn, TimeRemainingColumn

        self._progress = Progress("[progress.description]{task.description}", BarColumn(), TaskProgressColumn(),
                                  TimeElapsedColumn(), TimeRemainingColumn(), console=_progress_console())
        self._task = self._progress.add_task(f"{job.id} {job.status}", total=1.0, completed=job.data.get("progress", 0.0))
        self._job = job
        self._progress.start()

    def update(self, event: dict[str, Any]) -> None:
        stage = event.get("stage") or ""
        if event.get("type") == "warning":
            self._progress.console.print(f"[yellow]warning[/] {event.get('message', '')}")
        label = f"{self._job.id} {stage}" + (f" - {event['message']}" if event.get("message") else "")
        fields: dict[str, Any] = {"description": label[:100]}
        if event.get("progress") is not None:
            fields["completed"] = event["progress"]
        self._progress.update(self._task, **fields)

    def close(self) -> None:
        self._progress.stop()
