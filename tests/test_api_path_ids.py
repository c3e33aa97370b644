"""Every id and name in a request path is checked before any query sees it: a NUL (which PostgreSQL refuses
inside text: a 500 before), an overlong or a malformed one answers 422 problem+json naming the parameter,
on both backends. The routes are read from the app, so a new route or path parameter is covered too."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from app.core.ids import DATASET, JOB, PROXY_RUN, new_id
from tests.service_fixtures import api_operations, assert_problem, backend, client, settings  # noqa: F401 - fixtures

# A well-formed value of each path parameter, naming nothing that exists.
WELL_FORMED = {"dataset_id": new_id(DATASET), "job_id": new_id(JOB), "run_id": new_id(PROXY_RUN), "name": "report.json"}


def bad_values(param: str) -> dict[str, str]:
    """Values that no object can have, as they appear in a URL (percent-encoded)."""
    good = WELL_FORMED[param]
    bad = {
        "NUL": f"{good[:4]}%00{good[4:]}",
        "overlong": good + "0" * 1000,
        "space": f"{good[:4]}%20{good[4:]}",
    }
    if param != "name":
        bad["other kind"] = next(v for k, v in WELL_FORMED.items() if k not in (param, "name"))
        bad["short"] = good[:-1]
        bad["upper case"] = good.upper()
    return bad


def path_operations(client: TestClient) -> list[tuple[str, str, list[str]]]:
    """(method, path template, its parameters) of every route with a path parameter, HEAD-only ones included."""
    return sorted(
        (method, path, re.findall(r"{(\w+)}", path))
        for method, path in api_operations(client.app)  # type: ignore[arg-type]
        if "{" in path
    )


def test_every_path_parameter_is_known_here(client: TestClient) -> None:
    params = {param for *_, names in path_operations(client) for param in names}
    assert params <= WELL_FORMED.keys(), f"add a well-formed value for {params - WELL_FORMED.keys()}"
    assert params == WELL_FORMED.keys()  # nothing listed here that no route has any more


@pytest.mark.parametrize("kind", ["NUL", "overlong", "space", "other kind", "short", "upper case"])
def test_a_bad_path_parameter_is_a_422_naming_it(client: TestClient, kind: str) -> None:
    checked = 0
    for method, template, params in path_operations(client):
        for param in params:
            if kind not in (values := bad_values(param)):
                continue
            path = template.format(**(WELL_FORMED | {param: values[kind]}))
            response = client.request(method, path)
            if method == "HEAD":  # no body to read
                assert response.status_code == 422, (method, path)
            else:
                assert_problem(response, 422, f"path.{param}")
            checked += 1
    assert checked


def test_a_well_formed_unknown_id_is_a_404(client: TestClient) -> None:
    for method, template, _ in path_operations(client):
        response = client.request(method, template.format(**WELL_FORMED))
        assert response.status_code == 404, (method, template, response.text)
        if method != "HEAD":
            assert_problem(response, 404)
