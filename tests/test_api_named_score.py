"""The score a user names is the score used, or the job says plainly that it was not (issue 34.1), through the API."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.core.config import Settings
from tests.service_fixtures import (  # noqa: F401 - fixtures
    assert_problem,
    backend,
    client,
    db,
    run_to_success,
    settings,
    tiny_prune_spec,
)


def test_the_metrics_say_which_score_and_policy_decided(client: TestClient, settings: Settings) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    named = run_to_success(client, settings, tiny_prune_spec(dataset_id, method="forgetting", keep_fraction=0.1))
    assert named["metrics"]["score"] == "forgetting" and named["metrics"]["score_used"] is True
    assert named["metrics"]["policy"] == "ccs" and "forgetting was named" in named["metrics"]["reason"]
    ignored = run_to_success(client, settings, tiny_prune_spec(dataset_id, method="forgetting", mode="prototypes"))
    assert ignored["metrics"]["score_used"] is False and "not used" in ignored["metrics"]["reason"]
    default = tiny_prune_spec(dataset_id)
    del default["method"]
    chosen = run_to_success(client, settings, default)
    assert chosen["spec"]["method"] == "auto" and chosen["metrics"]["score_used"] is False
    assert "Condense chose" in chosen["metrics"]["reason"]


def test_score_parameters_with_method_auto_are_refused_naming_the_field(client: TestClient) -> None:
    dataset_id = client.post("/v1/datasets", json={"builtin": "digits"}).json()["id"]
    response = client.post("/v1/jobs", json=tiny_prune_spec(dataset_id, method="auto", score_params={"seeds": 2}))
    body = assert_problem(response, 422, "score_params.seeds")
    assert "name the score" in str(body)
