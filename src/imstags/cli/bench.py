"""``imstags bench ...``: workloads for the benchmarks in ``benchmarks/``."""

from __future__ import annotations

import random
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import click
import orjson

# Workload W: every image has 10 tags, keys drawn from 50 keys, each key's value from 20
# values: about 1,000 distinct (key, value) pairs whatever the number of images.
W_KEYS = 50
W_VALUES_PER_KEY = 20
W_TAGS_PER_IMAGE = 10
DEFAULT_PROJECT_ID = "bench0000000000000000000000000000"


def workload_w(images: int, seed: int, project_id: str) -> Iterator[dict[str, Any]]:
    """The seeded workload W, one import line (see ``imstags images import``) per image."""
    rng = random.Random(seed)  # noqa: S311  (a reproducible workload, not a secret)
    keys = [f"key{k:02d}" for k in range(W_KEYS)]
    values = [f"value{v:02d}" for v in range(W_VALUES_PER_KEY)]
    for number in range(images):
        chosen = rng.sample(keys, W_TAGS_PER_IMAGE)
        yield {
            "project_id": project_id,
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "name": f"image-{number:07d}",
            "tags": {key: rng.choice(values) for key in chosen},
        }


@click.group()
def bench() -> None:
    """Benchmark workloads."""


@bench.command("generate")
@click.option("--images", type=click.IntRange(0), required=True, help="Number of images.")
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option("--project-id", default=DEFAULT_PROJECT_ID, show_default=True)
def generate(images: int, seed: int, project_id: str) -> None:
    """Write workload W (10 tags an image from 50 keys x 20 values) as import lines to stdout."""
    out = sys.stdout.buffer
    chunk: list[bytes] = []
    for line in workload_w(images, seed, project_id):
        chunk.append(orjson.dumps(line))
        if len(chunk) >= 10_000:
            out.write(b"\n".join(chunk) + b"\n")
            chunk.clear()
    if chunk:
        out.write(b"\n".join(chunk) + b"\n")
    out.flush()
