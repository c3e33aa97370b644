"""Distillation families are a registry (engine.distill.families): the pipeline builds each method's matcher
through it, and the API's schema, the CLI's options and the README's table are generated from each family's
option groups. A new family is its module plus a registration (tests/toy_family.py); loaded as a plugin
(``CONDENSE_PLUGINS``), it is offered everywhere and a job of it runs through the API and a real worker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.data.dataset import ImageDataset
from engine.distill.families import FAMILIES, options_with
from engine.distill.registry import METHODS, MethodSpec, families_table, register_method
from engine.pipeline.distill import run_distill
from engine.pipeline.distill_config import DistillConfig, InitConfig
from engine.registry import load
from tests import toy_family
from tests.service_fixtures import (  # noqa: F401 - fixtures
    LiveService,
    backend,
    follow_events,
    live_service,
    real_subset_npz,
    tiny_distill_spec,
    uploaded_dataset,
)

REPO = Path(__file__).resolve().parents[1]
README_TABLE = re.compile(r"<!-- families:start -->\n(.*?)\n<!-- families:end -->", re.DOTALL)
PLUGIN = {"CONDENSE_PLUGINS": "tests.toy_plugin"}


@pytest.fixture
def toy_method() -> Iterator[str]:
    toy_family.register()
    yield toy_family.METHOD
    toy_family.unregister()


def test_a_registered_family_runs_through_the_pipeline(digits: ImageDataset, toy_method: str) -> None:
    config = DistillConfig(method=toy_method, ipc=2, iterations=5, width=16, device="cpu", evaluation=None,
                           init=InitConfig(mode="real"),
                           options=options_with(mean_pixels=toy_family.MeanPixelConfig(batch_real=32)))
    result = run_distill(digits, config)
    assert result.report["method"]["family"] == "mean_pixels"
    assert result.report["config"]["options"]["mean_pixels"]["batch_real"] == 32
    losses = result.loss_curve
    assert len(losses) == 5 and losses[-1] < losses[0]  # matching each class's mean pixels moves towards it


def test_a_method_of_an_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown distillation family 'nope'; choose one of gradient"):
        register_method(MethodSpec("bad", "Bad", "a test", "nope"))
    assert "bad" not in METHODS


@pytest.mark.parametrize("family", FAMILIES.names())
def test_every_family_builds_from_its_registry_entry(family: str) -> None:
    entry = FAMILIES.get(family)
    assert callable(load(entry.build)) and entry.options
    assert all(group.name in DistillConfig().options for group in entry.options)


def test_the_readme_table_is_the_registry(toy_method: str) -> None:
    toy_row = f"| `{toy_family.FAMILY}` | `{toy_method}` |"
    assert toy_row in families_table() and "`mean_pixels.batch_real`" in families_table()
    toy_family.unregister()
    try:
        found = README_TABLE.search((REPO / "README.md").read_text())
        assert found, "README.md lacks the <!-- families:start --> ... <!-- families:end --> markers"
        assert found[1] == families_table(), f"put this table between the README's markers:\n{families_table()}"
    finally:
        toy_family.register()


# What the API process and the CLI offer once the plugin is loaded, before either lists a registry.
SHOWN = """
import json
from typer.testing import CliRunner
from app.main import app
from app.schemas.jobs import DistillJobCreate
from cli.main import app as cli
schema = app.openapi()["components"]["schemas"]
def refused(options):
    spec = {"kind": "distill", "dataset_id": "ds_x", "method": "toy", **options}
    try:
        DistillJobCreate.model_validate(spec)
    except Exception as exc:
        return [".".join(map(str, e["loc"])) for e in exc.errors()]
    return []
print(json.dumps({
    "methods": schema["DistillMethod"]["enum"],
    "options": schema.get("MeanPixelsOptions"),
    "help": CliRunner().invoke(cli, ["distill", "--help"]).output,
    "refused": {"too many": refused({"mean_pixels": {"batch_real": 5000}}),
                "another family's": refused({"trajectory": {"syn_steps": 3}}),
                "own": refused({"mean_pixels": {"batch_real": 8}})},
}))
"""


def test_a_plugin_family_is_offered_by_the_api_schema_and_the_cli() -> None:
    out = subprocess.run([sys.executable, "-c", SHOWN], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, **PLUGIN, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr[-2000:]
    shown = json.loads(out.stdout)
    assert toy_family.METHOD in shown["methods"]
    option = shown["options"]["properties"]["batch_real"]
    assert (option["default"], option["minimum"], option["maximum"]) == (64, 1, 4096)
    assert option["description"] == "real images per class whose mean each step matches"
    assert "--mean-pixels-batch-real" in shown["help"] and "Mean pixels options (toy)" in shown["help"]
    assert shown["refused"] == {"too many": ["mean_pixels.batch_real"], "another family's": ["trajectory"], "own": []}


@pytest.fixture(scope="module")
def service_overrides() -> dict[str, str]:
    return PLUGIN


@pytest.mark.slow
def test_a_job_of_a_plugin_family_runs_through_the_api_and_a_worker(
    live_service: LiveService, uploaded_dataset: dict
) -> None:
    spec = tiny_distill_spec(uploaded_dataset["id"], method=toy_family.METHOD, init="real",
                             mean_pixels={"batch_real": 16})
    submitted = live_service.client.post("/v1/jobs", json=spec)
    assert submitted.status_code == 202, submitted.text
    follow_events(live_service.client, submitted.json()["id"])
    job = live_service.client.get(f"/v1/jobs/{submitted.json()['id']}").json()
    assert job["status"] == "succeeded", job["error"]
    report = live_service.client.get(f"/v1/jobs/{job['id']}/artifacts/report.json").json()
    assert report["method"]["family"] == toy_family.FAMILY
    assert report["config"]["options"]["mean_pixels"]["batch_real"] == 16
