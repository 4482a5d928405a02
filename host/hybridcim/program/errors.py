"""Typed errors of the program image; each message names the problem and where it is."""


class ProgramError(ValueError):
    """Base class: the program image or its content is unusable."""


class BadMagicError(ProgramError):
    """Not a hybridcim program image."""


class VersionError(ProgramError):
    """The image's format version is not supported by this reader."""


class TruncatedError(ProgramError):
    """The image is shorter than its header says (or than a section needs)."""


class ChecksumError(ProgramError):
    """The CRC-32 of the image body does not match the header."""


class PresetMismatchError(ProgramError):
    """The image was compiled for another hardware preset than the device's."""


class InvalidProgramError(ProgramError):
    """The image decodes but breaks a rule of the spec (shape, range, packing, overflow)."""
