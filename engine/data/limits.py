"""Upper bounds that keep a hostile or mistaken upload from exhausting memory, disk or time."""

from __future__ import annotations

from dataclasses import dataclass

from engine.data.errors import DatasetTooLarge


@dataclass(frozen=True)
class LoadLimits:
    """Resource limits applied while loading; pass tighter values for untrusted or small deployments.

    Attributes:
        max_samples: most images in train and test together.
        max_image_side: largest allowed image height or width, checked from headers before decoding.
        max_decoded_bytes: largest size of the decoded float32 image arrays, train and test together.
        max_archive_members: most entries in a zip/tar archive or files in a directory.
        max_uncompressed_bytes: largest total size of the archive's members once decompressed.
        max_compression_ratio: largest uncompressed/compressed size ratio of a zip member or a
            compressed tar/gzip stream (zip bombs); only applied above 1 MiB, since small blank
            images legitimately compress very well and cannot exhaust anything.
    """

    max_samples: int = 2_000_000
    max_image_side: int = 1024
    max_decoded_bytes: int = 8 << 30
    max_archive_members: int = 200_000
    max_uncompressed_bytes: int = 4 << 30
    max_compression_ratio: float = 200.0

    def check_samples(self, count: int, field: str) -> None:
        """Raise if ``count`` images exceed :attr:`max_samples`."""
        if count > self.max_samples:
            raise DatasetTooLarge(
                f"{count:,} images exceed the limit of {self.max_samples:,}",
                field=field,
                hint="upload a subset of the data",
            )

    def check_side(self, height: int, width: int, field: str) -> None:
        """Raise if an image of ``width`` x ``height`` exceeds :attr:`max_image_side`; ``field`` names its source."""
        if max(height, width) > self.max_image_side:
            raise DatasetTooLarge(
                f"{field}: images of {width:,}x{height:,} pixels are larger than the limit of "
                f"{self.max_image_side:,} per side",
                field=field,
                hint="downscale the images before uploading",
            )

    def check_decoded(self, values: int, field: str) -> None:
        """Raise if ``values`` float32 pixel values would exceed :attr:`max_decoded_bytes`."""
        if values * 4 > self.max_decoded_bytes:
            raise DatasetTooLarge(
                f"the decoded images need {_size(values * 4)}, more than the limit of {_size(self.max_decoded_bytes)}",
                field=field,
                hint="use fewer or smaller images",
            )

    def check_ratio(self, uncompressed: int, compressed: int, field: str) -> None:
        """Raise if a compressed stream expands suspiciously (a decompression bomb)."""
        if uncompressed > 1 << 20 and uncompressed > self.max_compression_ratio * max(compressed, 1):
            raise DatasetTooLarge(
                f"{field} expands from {compressed:,} to {uncompressed:,} bytes, a ratio above "
                f"{self.max_compression_ratio:g}; this looks like a decompression bomb",
                field=field,
                hint="upload the real data; archives of real images do not compress this much",
            )

    def check_total(self, total: int, field: str) -> None:
        """Raise if ``total`` uncompressed bytes exceed :attr:`max_uncompressed_bytes`."""
        if total > self.max_uncompressed_bytes:
            raise DatasetTooLarge(
                f"the contents exceed {self.max_uncompressed_bytes:,} bytes once decompressed",
                field=field,
                hint="upload a smaller dataset",
            )


def _size(count: int) -> str:
    """Bytes in the unit a reader compares at a glance (a MiB-sized limit would read as "0.0 GiB")."""
    return f"{count / 2**30:,.1f} GiB" if count >= 1 << 30 else f"{count / 2**20:,.1f} MiB"
