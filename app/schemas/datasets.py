"""Dataset records as the API shows them, and the body that registers a built-in dataset."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.models import Dataset, DatasetStatus
from app.schemas.common import Page, StrictModel


class BuiltinDatasetCreate(StrictModel):
    """``POST /v1/datasets`` with a JSON body registers a dataset that ships with the engine."""

    builtin: str = Field(description="name of a built-in dataset, e.g. 'digits'", examples=["digits"])


class ClassCount(BaseModel):
    name: str
    train: int
    test: int


class SplitPublic(BaseModel):
    train: int
    test: int
    source: str = Field(description="'provided' by the file, or 'held_out' from the training data")
    test_fraction: float | None = None
    seed: int | None = None


class DatasetPublic(BaseModel):
    id: str
    name: str
    format: str
    status: DatasetStatus
    builtin: str | None
    num_samples: int = Field(description="training plus test images")
    num_classes: int
    classes: list[ClassCount]
    image_shape: list[int] = Field(description="channels, height, width")
    splits: SplitPublic
    size_bytes: int
    content_hash: str
    created_at: datetime


class DatasetsPublic(Page[DatasetPublic]):
    pass


class SamplePublic(BaseModel):
    class_name: str
    source: str = Field(description="the sample's file in the upload, or FILE[ROW] for a file holding many")
    image: str = Field(description="the image as a PNG data URL")


class DatasetSamplesPublic(BaseModel):
    data: list[SamplePublic]


def dataset_public(record: Dataset) -> DatasetPublic:
    counts = zip(record.classes, record.class_counts, record.test_class_counts, strict=True)
    return DatasetPublic(
        id=record.id,
        name=record.name,
        format=record.format,
        status=record.status,
        builtin=record.builtin,
        num_samples=record.num_train + record.num_test,
        num_classes=len(record.classes),
        classes=[ClassCount(name=str(n), train=tr, test=te) for n, tr, te in counts],
        image_shape=record.image_shape,
        splits=SplitPublic(train=record.num_train, test=record.num_test, **record.split),
        size_bytes=record.size_bytes,
        content_hash=record.content_hash,
        created_at=record.created_at,
    )
