"""Argument types and options shared by several subcommands (argparse ``type=`` functions).

A bad value is an argparse error naming the flag (usage line, then
``hybridcim CMD: error: argument --limit: must be >= 1, got 0``; exit 2).
"""
from __future__ import annotations

import argparse

MAX_BATCH_SIZE = 4096
"""Largest ``--batch-size`` (images). Memory grows linearly with the batch while throughput does
not grow at all: the shipped ResNet-20 through the numpy emulator on 4,096 test images
(2026-12-02, 2 shared cores) ran at 28, 26, 24 and 22 images/s with batches of 64, 256, 1,024
and 4,096, at a peak RSS of 100, 151, 410 and 1,401 MiB (about 0.33 MiB per image; the torch
backend about 0.6 MiB). So 4,096 images, about 1.4 GB, is the most a user could want; a larger
batch only risks running out of memory (the default, 250-256, fits a 512 MB board)."""


def int_range(lo: int, hi: int | None = None, why: str = ""):
    """argparse type: an int in [lo, hi] (hi None: no upper bound); ``why`` is added to the message."""
    def parse(text: str) -> int:
        try:
            v = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"must be >= {lo}, got {v}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"must be <= {hi}{why}, got {v}")
        return v
    parse.__name__ = "int"  # argparse names the type in its fallback message
    return parse


positive_int = int_range(1)
non_negative_int = int_range(0)
batch_size = int_range(1, MAX_BATCH_SIZE, " images (memory grows with the batch; larger batches are not faster)")


def add_data_options(p, split: bool = False) -> None:
    """--data (and --split) of the commands that read CIFAR-10."""
    p.add_argument("--data", default=None, metavar="DIR",
                   help="CIFAR-10 folder (the python or binary layout; default: $CIFAR10_DIR)")
    if split:
        p.add_argument("--split", default="test", choices=["test", "train"],
                       help="which CIFAR-10 split to read: the 10,000 test or 50,000 training images (default: test)")


def add_batch_options(p, default_batch: int, what: str = "test images") -> None:
    """--limit and --batch-size."""
    p.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help=f"only the first N {what} (N >= 1; default: all)")
    p.add_argument("--batch-size", type=batch_size, default=default_batch, metavar="B",
                   help=f"images per batch, 1..{MAX_BATCH_SIZE} (memory grows with B; default: {default_batch})")


def add_offset_option(p, what: str = "images of the split") -> None:
    """--offset: skip the first N images; the global image index of the first image run is N
    (it keys the analog noise of hybrid layers, architecture.md §9.6)."""
    p.add_argument("--offset", type=non_negative_int, default=0, metavar="N",
                   help=f"skip the first N {what} (default 0); the global image index (the analog noise "
                        "key of hybrid layers) then starts at N, so a slice gives the same bits as a whole run")


def run_with_base(executor, images, image_base: int):
    """``executor.run(images, image_base=...)`` when its run takes ``image_base``, else ``run(images)``
    (an executor without hybrid noise support ignores the image index)."""
    import inspect
    try:
        takes = "image_base" in inspect.signature(executor.run).parameters
    except (TypeError, ValueError):
        takes = False
    return executor.run(images, image_base=image_base) if takes else executor.run(images)
