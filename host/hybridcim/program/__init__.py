"""The versioned CIM program image: model, builder, codec, validator (docs/program-format.md)."""
from .builder import ProgramBuilder
from .codec import decode, encode, manifest, read_program, write_program
from .errors import (BadMagicError, CapacityError, ChecksumError, InvalidProgramError, ManifestError,
                     PresetMismatchError, ProgramError, SectionError, TruncatedError, VersionError)
from .format import Op
from .model import Layer, Program, TensorSpec
from .validate import validate
from .weights import decode_weight_matrix

__all__ = ["ProgramBuilder", "decode", "encode", "manifest", "read_program", "write_program", "BadMagicError",
           "CapacityError", "ChecksumError", "ManifestError", "SectionError", "InvalidProgramError", "PresetMismatchError", "ProgramError", "TruncatedError",
           "VersionError", "Op", "Layer", "Program", "TensorSpec", "validate", "decode_weight_matrix"]
