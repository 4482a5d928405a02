"""Ready-made programs: random-weight benchmark networks and random valid programs for fuzzing."""
from .fuzz import random_images, random_program
from .resnet import random_resnet20

__all__ = ["ZOO", "load_program", "random_images", "random_program", "random_resnet20"]

ZOO = {"resnet20-random": random_resnet20}


def load_program(spec: str, preset: str | None = None):
    """A program from a path to a .cim image, or ``zoo:NAME`` for a zoo network built in memory."""
    from ..program import read_program
    from ..spec.hardware import get_preset
    if spec.startswith("zoo:"):
        name = spec[4:]
        if name not in ZOO:
            raise ValueError(f"unknown zoo program {name!r}; known: {sorted(ZOO)}")
        return ZOO[name](**({"preset": preset} if preset else {}))
    return read_program(spec, get_preset(preset) if preset else None)
