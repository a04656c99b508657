"""Errors of the caller and the environment. Malformed *traffic* never raises: it becomes
an anomaly event or a finding."""
from __future__ import annotations

__all__ = ["PcapSmtpError", "CaptureError", "ForeignCapture", "BackendUnavailable", "UsageError",
           "os_message"]


class PcapSmtpError(Exception):
    """Root of every exception pcapsmtp raises on purpose."""


class CaptureError(PcapSmtpError):
    """A capture cannot be read (any further). ``offset`` is the byte offset in the
    (decompressed) file where the damage was found, or None when it does not apply."""

    def __init__(self, path: str, offset: int | None, message: str) -> None:
        self.path = path
        self.offset = offset
        self.message = message
        where = f"{path}" if offset is None else f"{path}: at byte offset {offset}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[type, tuple[str, int | None, str]]:  # picklable for -j
        return (type(self), (self.path, self.offset, self.message))


class ForeignCapture(CaptureError):
    """A capture file in a format pcapsmtp's own reader does not read (Solaris snoop, Microsoft
    Network Monitor, ...) but Wireshark does: ``kind`` names the format. Raised at offset 0,
    before any record, so reading the file again with tshark loses nothing."""

    def __init__(self, path: str, offset: int | None, message: str, kind: str = "") -> None:
        super().__init__(path, offset, message)
        self.kind = kind

    def __reduce__(self) -> tuple[type, tuple[str, int | None, str, str]]:  # type: ignore[override]
        return (type(self), (self.path, self.offset, self.message, self.kind))


class BackendUnavailable(PcapSmtpError):
    """A tool or privilege the requested mode needs is missing (tshark, root, an interface)."""


class UsageError(PcapSmtpError):
    """The command line asks for something that cannot be done."""


def os_message(exc: OSError, what: str = "a capture file") -> str:
    """One wording, in every command, for an input that cannot be opened: the same words as
    the capture reader's (pcapsmtp/capture/pcapfile.py)."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return f"is a directory, not {what}"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot read: {exc.strerror or exc}"
