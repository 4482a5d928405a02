"""CIM-aware quantization-aware training (torch + brevitas): models, quantizers, trainer, export."""
