"""Picks a frame source from a spec string such as `v4l2:0`, `picamera2`, `file:ticket.png`,
`dir:/tmp/tickets` or `synthetic`; the agent's config holds the spec, this module the meaning."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from hardware.fake_sources import DirSource, FileSource, SyntheticSource
from hardware.frames import CameraError, Frame, FrameSource, blank_frame
from hardware.live_sources import Picamera2Source, V4l2Source

logger = logging.getLogger(__name__)

__all__ = [
    "CameraError",
    "DirSource",
    "FileSource",
    "Frame",
    "FrameSource",
    "NoCamera",
    "Picamera2Source",
    "SyntheticSource",
    "V4l2Source",
    "blank_frame",
    "open_source",
]

SPEC_HELP = "expected v4l2:INDEX_OR_PATH, picamera2, file:PATH, dir:PATH, synthetic[:TEXT] or none"


class NoCamera(FrameSource):
    """A gate without a camera (codes come from a barcode scanner only): never a frame."""

    name = "none"

    def open(self) -> None:
        pass

    def read(self) -> Frame | None:
        time.sleep(0.1)  # like a camera, read() waits about a frame period
        return None

    def close(self) -> None:
        pass


def _none(arg: str, opts: dict[str, Any]) -> FrameSource:
    if arg:
        raise CameraError(f"camera spec 'none' takes no argument, got 'none:{arg}'")
    return NoCamera()


def _v4l2(arg: str, opts: dict[str, Any]) -> FrameSource:
    if not arg:
        raise CameraError("camera spec 'v4l2:' needs a device index or path, e.g. v4l2:0")
    device: int | str = int(arg) if arg.isdigit() else arg
    return V4l2Source(device, **opts)


def _picamera2(arg: str, opts: dict[str, Any]) -> FrameSource:
    if arg:
        raise CameraError(f"camera spec 'picamera2' takes no argument, got 'picamera2:{arg}'")
    return Picamera2Source(**opts)


def _file(arg: str, opts: dict[str, Any]) -> FrameSource:
    if not arg:
        raise CameraError("camera spec 'file:' needs a path, e.g. file:ticket.png")
    return FileSource(arg, **opts)


def _dir(arg: str, opts: dict[str, Any]) -> FrameSource:
    if not arg:
        raise CameraError("camera spec 'dir:' needs a folder, e.g. dir:/tmp/tickets")
    return DirSource(arg, **opts)


def _synthetic(arg: str, opts: dict[str, Any]) -> FrameSource:
    if arg:
        if "payload" in opts or "text" in opts:
            raise CameraError("camera spec 'synthetic:TEXT' already fixes the text")
        opts = {**opts, "text": arg}
    return SyntheticSource(**opts)


_SIZE = {"width", "height", "fps"}
# kind -> (builder, the options it accepts)
_KINDS: dict[str, tuple[Callable[[str, dict[str, Any]], FrameSource], set[str]]] = {
    "v4l2": (_v4l2, _SIZE),
    "picamera2": (_picamera2, _SIZE),
    "file": (_file, {"fps", "loop"}),
    "dir": (
        _dir,
        _SIZE | {"hold_frames", "skip_existing", "scan_interval_s", "settle_s"},
    ),
    "none": (_none, _SIZE),
    "synthetic": (_synthetic, _SIZE | {"payload", "text", "module_px", "position", "error"}),
}


def _check_opts(opts: dict[str, Any]) -> None:
    for key in ("width", "height", "hold_frames"):
        if key in opts and (not isinstance(opts[key], int) or opts[key] <= 0):
            raise CameraError(f"camera option {key} must be a positive integer, got {opts[key]!r}")
    if "fps" in opts and opts["fps"] is not None:
        fps = opts["fps"]
        if not isinstance(fps, int | float) or fps < 0:
            raise CameraError(f"camera option fps must be a number >= 0, got {fps!r}")


def open_source(spec: str, **opts: Any) -> FrameSource:
    """Build (not open) the source a spec names. Options not meant for that kind are an error,
    so a typo in the config is caught at start rather than silently ignored."""
    if not isinstance(spec, str) or not spec.strip():
        raise CameraError(f"empty camera spec; {SPEC_HELP}")
    kind, _, arg = spec.strip().partition(":")
    entry = _KINDS.get(kind.lower())
    if entry is None:
        raise CameraError(f"unknown camera source {kind!r} in spec {spec!r}; {SPEC_HELP}")
    build, allowed = entry
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise CameraError(
            f"camera source {kind!r} does not take option(s) {', '.join(unknown)};"
            f" it takes {', '.join(sorted(allowed))}"
        )
    _check_opts(opts)
    source = build(arg, dict(opts))
    logger.debug("camera source built", extra={"fields": {"spec": spec}})
    return source
