"""Workload W as import lines for ``imstags images import``, on standard output.

Every image has 10 tags, keys drawn from 50 keys, each key's value from 20 values: about 1,000
distinct (key, value) pairs whatever the number of images. The same ``--seed`` gives the same
lines, byte for byte.

    .venv/bin/python -m benchmarks.generate --images 1000000 --seed 1 > w.jsonl
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import orjson

W_KEYS = 50
W_VALUES_PER_KEY = 20
W_TAGS_PER_IMAGE = 10
DEFAULT_PROJECT_ID = "bench0000000000000000000000000000"


def workload_w(images: int, seed: int, project_id: str) -> Iterator[dict[str, Any]]:
    """The seeded workload W, one import line per image."""
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


def write_lines(images: int, seed: int, project_id: str) -> None:
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


def _count(text: str) -> int:
    number = int(text)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=_count, required=True, help="number of images")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--project-id", default=DEFAULT_PROJECT_ID)
    args = parser.parse_args()
    write_lines(args.images, args.seed, args.project_id)


if __name__ == "__main__":
    main()
