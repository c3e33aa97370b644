"""Dataset formats are one registry: detection and loading dispatch through it, and the help texts, the upload
route's description and the README's table are rendered from it, so that a new format is its module plus a
registration and nothing else changes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from engine.data import DatasetError, inspect_dataset, load_dataset
from engine.data.detect import accepted_sources
from engine.data.formats import FORMATS, accepted_formats, formats_table
from engine.registry import load
from tests.service_fixtures import backend, client, settings  # noqa: F401 - fixtures
from tests.toy_format import SIDE, TOY, write_toy

REPO = Path(__file__).resolve().parents[1]
ToyFile = tuple[Path, np.ndarray, np.ndarray]  # the file, its (N, 4, 4) images and their labels
README_TABLE = re.compile(r"<!-- formats:start -->\n(.*?)\n<!-- formats:end -->", re.DOTALL)


@pytest.fixture
def toy() -> Iterator[None]:
    FORMATS.register(TOY)
    yield
    FORMATS.unregister(TOY.name)


@pytest.fixture
def toy_file(tmp_path: Path) -> ToyFile:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, SIDE, SIDE), dtype=np.uint8)
    labels = np.repeat([0, 1], 10)
    return write_toy(tmp_path / "pixels.zip", images, labels), images, labels


def test_every_format_names_a_detector_and_loader_that_exist() -> None:
    for fmt in FORMATS:
        assert callable(load(fmt.loader)), fmt.name
        assert fmt.detect is None or callable(load(fmt.detect)), fmt.name
    # The fallback reads what no detector claims; a second one would never be reached.
    assert [fmt.name for fmt in FORMATS if fmt.detect is None] == ["imagefolder"]


def test_a_registered_format_is_detected_and_loaded(toy: None, toy_file: ToyFile) -> None:
    path, images, labels = toy_file
    ds = load_dataset(path)
    assert ds.format == "toy" and ds.name == "pixels" and ds.image_shape == (1, SIDE, SIDE)
    assert len(ds.y_train) + len(ds.y_test) == len(labels) and ds.split.source == "held_out"
    # Every image comes back with its own label, on the engine's 0..1 scale.
    loaded = np.concatenate([ds.x_train, ds.x_test])[:, 0] * 255
    loaded_labels = np.concatenate([ds.y_train, ds.y_test])
    for image, label in zip(loaded, loaded_labels, strict=True):
        match = np.flatnonzero((np.abs(images - image) < 1e-3).all(axis=(1, 2)))
        assert len(match) == 1 and labels[match[0]] == label
    assert inspect_dataset(path).format == "toy"


def test_an_unregistered_format_is_not_read(toy_file: ToyFile) -> None:
    # Without the registration the same file falls to the image-folder loader, which refuses it.
    with pytest.raises(DatasetError, match="is not an image"):
        load_dataset(toy_file[0])


def test_the_help_phrase_lists_every_format_and_builtin(toy: None) -> None:
    sources = accepted_sources()
    assert sources.startswith(accepted_formats())
    for fmt in FORMATS:
        assert fmt.accepts in sources
    assert sources.endswith("or builtin:digits")


def test_the_readme_table_is_the_registry() -> None:
    found = README_TABLE.search((REPO / "README.md").read_text())
    assert found, "README.md lacks the <!-- formats:start --> ... <!-- formats:end --> markers"
    assert found[1] == formats_table(), f"put this table between the README's markers:\n{formats_table()}"


def test_a_registered_format_is_uploaded_through_the_api(toy: None, client: TestClient, toy_file: ToyFile) -> None:
    content = toy_file[0].read_bytes()
    response = client.post("/v1/datasets", files={"file": ("pixels.zip", content, "application/zip")})
    assert response.status_code == 201, response.text
    assert response.json()["format"] == "toy" and response.json()["num_samples"] == 20


# A registration made before the CLI and the app are built (as a plugin's import would) shows in their help.
SHOWN = """
import json
from engine.data.formats import FORMATS
from tests.toy_format import TOY
FORMATS.register(TOY)
from typer.testing import CliRunner
from app.main import app
from cli.main import app as cli
from engine.data.detect import accepted_sources
print(json.dumps({
    "help": {command: CliRunner().invoke(cli, [command, "--help"]).output for command in ("prune", "distill")},
    "upload": app.openapi()["paths"]["/v1/datasets"]["post"]["requestBody"]["description"],
    "sources": accepted_sources(),
}))
"""


def test_a_registered_format_shows_in_the_cli_help_and_the_upload_description() -> None:
    out = subprocess.run([sys.executable, "-c", SHOWN], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr[-2000:]
    shown = json.loads(out.stdout)
    assert TOY.accepts in shown["sources"]
    for command, text in shown["help"].items():
        # Rich wraps the help in a box; the words and their order are what matter.
        assert f"Dataset: {shown['sources']}." in " ".join(text.replace("│", " ").split()), command
    assert TOY.accepts in shown["upload"]


LIGHT = """
import sys
from engine.data.detect import accepted_sources
from engine.data.formats import formats_table
accepted_sources(), formats_table()
print(" ".join(sys.modules))
"""


def test_listing_the_formats_imports_no_loader() -> None:
    out = subprocess.run([sys.executable, "-c", LIGHT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    imported = set(out.stdout.split())
    heavy = {"torch", "sklearn", "PIL"} | {fmt.loader.partition(":")[0] for fmt in FORMATS}
    assert not heavy & imported
