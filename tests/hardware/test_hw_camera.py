"""Frame sources: file (image and video), dir, synthetic, and the spec parser's error messages."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from hardware.camera import CameraError, FrameSource, open_source
from hardware.decode import ZxingDecoder


@pytest.fixture(scope="module")
def zx() -> ZxingDecoder:
    return ZxingDecoder()


def texts(decoder: ZxingDecoder, frame: np.ndarray | None) -> list[str]:
    assert frame is not None
    return [c.text for c in decoder.decode(frame)]


def is_blank(frame: np.ndarray | None) -> bool:
    return frame is not None and int(frame.min()) == int(frame.max())


def read_n(source: FrameSource, n: int) -> list[np.ndarray | None]:
    return [source.read() for _ in range(n)]


# --- file: ---------------------------------------------------------------------------------------


def test_file_image_repeats_the_same_still(tmp_path, payload, render, zx):
    path = tmp_path / "ticket.png"
    cv2.imwrite(str(path), render(payload))
    with open_source(f"file:{path}", fps=0) as src:
        frames = read_n(src, 3)
    assert all(f is not None and f.shape == (480, 640) for f in frames)
    assert all(texts(zx, f) == [payload] for f in frames)
    assert not src.finished


def test_file_image_frames_are_independent_copies(tmp_path, payload, render):
    path = tmp_path / "ticket.png"
    cv2.imwrite(str(path), render(payload))
    src = open_source(f"file:{path}", fps=50)
    src.open()
    frames = read_n(src, 2)
    src.close()
    # A consumer drawing on one frame must not change the next.
    assert frames[0] is not None and frames[1] is not None
    frames[0][:] = 0
    assert int(frames[1].max()) == 255


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    writer.release()


def test_file_video_plays_frames_in_order_and_loops(tmp_path, payloads, render, zx):
    blank = np.full((480, 640), 230, np.uint8)
    a, b = payloads(1), payloads(2)
    path = tmp_path / "walkup.avi"
    write_video(path, [blank, render(a), render(a), blank, render(b)])
    with open_source(f"file:{path}", fps=0, loop=True) as src:
        seen = [texts(zx, f) for f in read_n(src, 10)]
        assert not src.finished
    assert seen[:5] == [[], [a], [a], [], [b]]
    assert seen[5:] == seen[:5]  # second pass after rewinding


def test_file_video_without_loop_finishes(tmp_path, payload, render, zx):
    path = tmp_path / "once.avi"
    write_video(path, [render(payload)] * 2)
    with open_source(f"file:{path}", fps=0, loop=False) as src:
        first, second, third, fourth = read_n(src, 4)
        assert texts(zx, first) == [payload] and texts(zx, second) == [payload]
        assert third is None and fourth is None
        assert src.finished


def test_file_missing_raises_from_open(tmp_path):
    src = open_source(f"file:{tmp_path / 'nope.png'}")
    with pytest.raises(CameraError, match="no such file"):
        src.open()


def test_file_not_an_image_raises_from_open(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not a png at all")
    with pytest.raises(CameraError, match="not a readable image"):
        open_source(f"file:{path}").open()


# --- dir: ----------------------------------------------------------------------------------------


def dir_source(folder: Path, **opts):
    opts = {"fps": 0, "hold_frames": 3, "scan_interval_s": 0, "settle_s": 0, **opts}
    return open_source(f"dir:{folder}", **opts)


def test_dir_shows_existing_then_each_new_file_once_then_blank(tmp_path, payloads, render, zx):
    a, b, c = payloads(1), payloads(2), payloads(3)
    cv2.imwrite(str(tmp_path / "a.png"), render(a))
    with dir_source(tmp_path, width=320, height=240) as src:
        frames = read_n(src, 5)
        assert [texts(zx, f) for f in frames[:3]] == [[a]] * 3
        assert all(is_blank(f) for f in frames[3:])
        assert frames[4] is not None and frames[4].shape == (240, 320)

        # write-then-rename, the way a test harness or a phone sync drops a ticket in
        tmp = tmp_path / "b.png.part"
        ok, png = cv2.imencode(".png", render(b))
        assert ok
        tmp.write_bytes(png.tobytes())  # written under a temporary name …
        frames = read_n(src, 2)
        assert all(is_blank(f) for f in frames)  # … and not shown while it has a non-image suffix
        os.replace(tmp, tmp_path / "b.png")
        cv2.imwrite(str(tmp_path / "c.jpg"), render(c))
        frames = read_n(src, 8)
    seen = [texts(zx, f) for f in frames]
    # b and c, each held for 3 frames, then blank: nothing is shown twice
    assert seen[:6] in ([[b]] * 3 + [[c]] * 3, [[c]] * 3 + [[b]] * 3)
    assert all(is_blank(f) for f in frames[6:])


def test_dir_skip_existing_ignores_files_present_at_open(tmp_path, payloads, render, zx):
    cv2.imwrite(str(tmp_path / "old.png"), render(payloads(1)))
    with dir_source(tmp_path, skip_existing=True) as src:
        assert all(is_blank(f) for f in read_n(src, 4))
        cv2.imwrite(str(tmp_path / "new.png"), render(payloads(2)))
        assert texts(zx, src.read()) == [payloads(2)]


def test_dir_same_name_rewritten_is_shown_again(tmp_path, payloads, render, zx):
    path = tmp_path / "ticket.png"
    cv2.imwrite(str(path), render(payloads(1)))
    with dir_source(tmp_path, hold_frames=1) as src:
        assert texts(zx, src.read()) == [payloads(1)]
        assert is_blank(src.read())
        cv2.imwrite(str(path), render(payloads(2)))
        os.utime(path, ns=(0, 10**18))  # make sure the mtime differs even on coarse clocks
        assert texts(zx, src.read()) == [payloads(2)]
        assert is_blank(src.read())


def test_dir_partially_written_file_is_retried_not_skipped(tmp_path, payload, render, zx):
    ok, png = cv2.imencode(".png", render(payload))
    assert ok
    data = png.tobytes()
    path = tmp_path / "slow.png"
    with dir_source(tmp_path, hold_frames=2) as src:
        path.write_bytes(data[: len(data) // 3])  # a writer that has not finished yet
        assert all(is_blank(f) for f in read_n(src, 3))
        path.write_bytes(data)
        frames = read_n(src, 4)
    assert [texts(zx, f) for f in frames[:2]] == [[payload], [payload]]
    assert all(is_blank(f) for f in frames[2:])


def test_dir_waits_for_a_file_to_settle(tmp_path, payload, render, zx):
    with dir_source(tmp_path, hold_frames=1, settle_s=3600) as src:
        cv2.imwrite(str(tmp_path / "fresh.png"), render(payload))
        # first sighting of a just-written file: not read yet, its size might still change
        assert is_blank(src.read())
        # unchanged on the next scan: now it is shown
        assert texts(zx, src.read()) == [payload]


def test_dir_missing_folder_raises_from_open(tmp_path):
    with pytest.raises(CameraError, match="no such folder"):
        open_source(f"dir:{tmp_path / 'absent'}").open()


# --- synthetic -----------------------------------------------------------------------------------


def test_synthetic_renders_what_the_provider_hands_out(payloads, zx):
    current: list[str | None] = [None]
    with open_source("synthetic", payload=lambda: current[0], fps=0) as src:
        blank = src.read()
        current[0] = payloads(1)
        first = src.read()
        current[0] = payloads(2)
        second = src.read()
        current[0] = None
        after = src.read()
    assert is_blank(blank) and is_blank(after)
    assert blank is not None and blank.shape == (480, 640)
    assert texts(zx, first) == [payloads(1)]
    assert texts(zx, second) == [payloads(2)]


def test_synthetic_fixed_text_size_and_position(payload, zx):
    src = open_source(
        "synthetic", text=payload, width=1280, height=720, module_px=3, position=(10, 20), fps=0
    )
    src.open()
    frame = src.read()
    src.close()
    assert frame is not None and frame.shape == (720, 1280)
    codes = zx.decode(frame)
    assert [c.text for c in codes] == [payload]
    # version 6 = 41 modules + 2x4 quiet zone at 3 px; the symbol starts after the quiet zone
    x0, y0 = codes[0].corners[0]
    assert abs(x0 - (10 + 12)) <= 2 and abs(y0 - (20 + 12)) <= 2


def test_synthetic_text_in_spec(zx):
    with open_source("synthetic:TR1:HELLO", fps=0) as src:
        assert texts(zx, src.read()) == ["TR1:HELLO"]


def test_synthetic_code_that_does_not_fit_is_a_camera_error(payload):
    with open_source("synthetic", text=payload, width=100, height=100, module_px=4) as src:
        with pytest.raises(CameraError, match="does not fit"):
            src.read()


def test_read_before_open_is_an_error(payload):
    with pytest.raises(CameraError, match="not open"):
        open_source("synthetic", text=payload).read()


# --- specs and missing hardware ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "opts", "message"),
    [
        ("", {}, "empty camera spec"),
        ("webcam:0", {}, "unknown camera source 'webcam'"),
        ("v4l2:", {}, "needs a device index or path"),
        ("file:", {}, "needs a path"),
        ("dir:", {}, "needs a folder"),
        ("picamera2:0", {}, "takes no argument"),
        ("file:x.png", {"width": 640}, "does not take option(s) width"),
        ("v4l2:0", {"hold_frames": 3}, "does not take option(s) hold_frames"),
        ("v4l2:0", {"width": -1}, "width must be a positive integer"),
        ("dir:/tmp", {"fps": "fast"}, "fps must be a number"),
        ("synthetic:ABC", {"text": "DEF"}, "already fixes the text"),
        ("synthetic", {"payload": "not callable"}, "payload must be a callable"),
    ],
)
def test_bad_specs_name_the_problem(spec, opts, message):
    with pytest.raises(CameraError) as info:
        open_source(spec, **opts)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_v4l2_camera_raises_from_open_not_from_build(tmp_path):
    src = open_source(f"v4l2:{tmp_path / 'video99'}", width=320, height=240)
    with pytest.raises(CameraError, match="could not be opened"):
        src.open()
    src.close()  # closing a source that never opened is harmless


def test_picamera2_missing_is_a_clear_camera_error(monkeypatch):
    # A None entry makes `import picamera2` fail exactly as on a machine without it.
    monkeypatch.setitem(sys.modules, "picamera2", None)
    src = open_source("picamera2", width=640, height=480)
    with pytest.raises(CameraError, match="picamera2 is not installed"):
        src.open()
