"""hybridcim: bit-exact SRAM compute-in-memory (CIM) emulation for compressed CNNs.

Stages, one subpackage each: ``spec`` (hardware presets, number formats), ``cim`` (the
bit-level CIM arithmetic as pure numpy functions), ``program`` (the versioned program
image), ``emulator`` (golden executors), ``data`` (CIFAR-10), ``runtime`` (devices and
sessions), ``zoo`` (ready-made programs), ``cli``; ``train`` is the only one needing torch.
"""
__version__ = "0.1.0"
