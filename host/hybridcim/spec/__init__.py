"""Hardware presets and number formats (docs/architecture.md §1, §2)."""
from .hardware import HOST_PRESETS, PRESETS, HardwarePreset, PresetError, get_preset
from .numformat import IntFormat, INT32, UINT8

__all__ = ["PRESETS", "HOST_PRESETS", "HardwarePreset", "PresetError", "get_preset", "IntFormat", "INT32", "UINT8"]
