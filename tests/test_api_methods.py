"""``GET /v1/methods`` lists every registry's entries with their parameters, from the registries themselves:
a registration (a plugin's) is listed at once, and an option's default and bounds are the engine's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from engine.config_fields import offered
from engine.data.formats import FORMATS
from engine.distill.families import FAMILIES
from engine.distill.registry import METHODS
from engine.distill.trajectory_config import TrajectoryConfig
from engine.models.registry import MODELS
from engine.pipeline.prune_config import prune_method_names
from engine.scores import SCORES, get_score
from engine.select.registry import POLICIES
from tests import toy_family
from tests.service_fixtures import backend, client, settings  # noqa: F401 - fixtures


@pytest.fixture
def toy() -> Iterator[None]:
    toy_family.register()
    yield
    toy_family.unregister()


def names(entries: list[dict]) -> list[str]:
    return [entry["name"] for entry in entries]


def test_every_registered_entry_is_listed(client: TestClient) -> None:
    response = client.get("/v1/methods")
    assert response.status_code == 200, response.text
    listed = response.json()
    assert listed["prune_methods"] == prune_method_names()
    assert names(listed["scores"]) == SCORES.names()
    assert names(listed["selection_policies"]) == POLICIES.names()
    assert names(listed["distillation_families"]) == FAMILIES.names()
    assert names(listed["distillation_methods"]) == METHODS.names()
    assert names(listed["models"]) == MODELS.names()
    assert names(listed["dataset_formats"]) == FORMATS.names()
    for entry in [e for group in listed.values() if isinstance(group, list) for e in group if isinstance(e, dict)]:
        assert entry["description"], entry["name"]


def test_parameters_carry_the_engine_s_defaults_and_bounds(client: TestClient) -> None:
    listed = client.get("/v1/methods").json()
    trajectory = {f["name"]: f for f in listed["distillation_families"]}["trajectory"]
    assert trajectory["methods"] == ["mtt", "datm", "pad"] and trajectory["uses_experts"]
    options = {o["name"]: o for o in trajectory["options"]["trajectory"]}
    assert list(options) == [o.name for o in offered(TrajectoryConfig)]
    lr = options["lr"]  # the API's name for lr_init
    assert (lr["type"], lr["default"], lr["exclusive_minimum"], lr["maximum"]) == ("number", 0.01, 0, 10)
    assert options["max_start_epoch"]["nullable"] and options["max_start_epoch"]["default"] is None
    assert [o["name"] for o in trajectory["options"]["experts"]][0] == "count"
    el2n = {s["name"]: s for s in listed["scores"]}["el2n"]
    assert el2n["needs_training"] and el2n["higher_is_important"]
    assert {p["name"]: p["default"] for p in el2n["params"]} == {n: p.default for n, p in get_score("el2n").params.items()}
    assert not {s["name"]: s for s in listed["scores"]}["random"]["needs_training"]


def test_a_registration_is_listed(client: TestClient, toy: None) -> None:
    listed = client.get("/v1/methods").json()
    family = {f["name"]: f for f in listed["distillation_families"]}[toy_family.FAMILY]
    assert family["methods"] == [toy_family.METHOD]
    assert family["options"] == {toy_family.GROUP: [{
        "name": "batch_real", "type": "integer", "nullable": False, "default": 64,
        "description": "real images per class whose mean each step matches", "minimum": 1, "exclusive_minimum": None,
        "maximum": 4096, "exclusive_maximum": None}]}


def test_listing_needs_a_key(client: TestClient) -> None:
    assert client.get("/v1/methods", headers={"Authorization": ""}).status_code == 401
