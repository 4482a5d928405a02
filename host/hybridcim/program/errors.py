"""Typed errors of the program image; each message names the problem and where it is.

The classes follow the reader checks of docs/program-format.md, which every reader (host
decoder, HLS kernel) applies in the same order, so an image with several defects gets the
same class from every reader. ``host_only`` is True on an error raised by a rule the HLS
kernel deliberately leaves to the host (packing, overflow bound, manifest, ...): the kernel
may accept such an image, and no executor ever runs it.
"""


class ProgramError(ValueError):
    """Base class: the program image or its content is unusable."""

    host_only: bool = False


class BadMagicError(ProgramError):
    """Not a hybridcim program image."""


class VersionError(ProgramError):
    """The image's format version is not supported by this reader."""


class TruncatedError(ProgramError):
    """The image is shorter than its header says (or than a section needs), or not a multiple of 8 bytes."""


class ChecksumError(ProgramError):
    """The CRC-32 of the image body does not match the header."""


class PresetMismatchError(ProgramError):
    """The image was compiled for another hardware preset than the device's."""


class InvalidProgramError(ProgramError):
    """The image decodes but breaks a rule of the spec (shape, range, packing, overflow)."""


class SectionError(InvalidProgramError, TruncatedError):
    """A table or section lies outside the image, overlaps the header or is misaligned.

    A malformed record (the kernel's LAYER / TENSOR status) that also reads as truncation.
    """


class ManifestError(ProgramError):
    """The embedded manifest JSON breaks its schema (program-format.md "Embedded manifest")."""

    host_only = True


class CapacityError(ProgramError):
    """The program is valid but exceeds the kernel's on-chip capacity (hls/presets/*.h limits)."""


class UnsupportedModeError(ProgramError):
    """A valid program uses a layer mode (hybrid, architecture.md §9) this executor does not implement;
    the message names the layer and the executors that do."""
