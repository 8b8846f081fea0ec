"""RCC-1 serial line: hostile bytes, cut into reads anywhere, through the source's line reader.

The reader (`SerialSource._read_lines`) is the code under test: it joins reads into lines, drops
noise and hands each line to `rcc1.parse_line`. It reads from a `ScriptedLine`, which hands over
chosen bytes in chosen reads as pyserial's `read(size)` does, so that every cut point is tried
and a failure replays exactly; a pty would cut the stream wherever its timing fell.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st
from strategies import readings

from device_agents import rcc1
from device_agents.errors import FrameError
from device_agents.reading import ControllerReading
from device_agents.sources.serial_line import SerialSource

from .hostile import MEMORY_SLACK, any_text, fuzzing, memory_growth, random_variants

READ_SIZE = 256  # what the source asks pyserial for at a time
FRAME_ERROR_CODES = {"noise", "framing", "checksum", "field_count", "bad_value", "not_status"}
UNLOCK_ACK = rcc1.encode("ACK,UNLK")


class ScriptedLine:
    """The controller's side of the line: `chunks`, one per `read`, then tell the reader to stop."""

    def __init__(self, source: SerialSource, chunks: Sequence[bytes]) -> None:
        self.source = source
        self.chunks = [chunk for chunk in chunks if chunk]

    def read(self, size: int) -> bytes:
        if not self.chunks:
            self.source._stop.set()
            return b""
        chunk = self.chunks.pop(0)
        if len(chunk) > size:
            self.chunks.insert(0, chunk[size:])
        return chunk[:size]


def read_line(chunks: Sequence[bytes], source: SerialSource | None = None) -> SerialSource:
    """A serial source that has read `chunks` off its line, as its reader thread would."""
    source = source or SerialSource("/dev/ttyFUZZ")
    source._port = ScriptedLine(source, chunks)
    source._stop.clear()
    source._read_lines()
    return source


def cut(stream: bytes, points: list[int]) -> list[bytes]:
    """`stream` cut at `points` into the reads that bring it in."""
    edges = [0, *sorted({p for p in points if 0 < p < len(stream)}), len(stream)]
    return [stream[start:end] for start, end in zip(edges, edges[1:], strict=False)]


def reads(stream: bytes) -> st.SearchStrategy[list[bytes]]:
    """The reads that bring `stream` in: cut anywhere, or in reads of one size (a steady line)."""
    anywhere = st.lists(st.integers(0, len(stream)), max_size=12).map(
        lambda points: cut(stream, points))
    steady = st.integers(1, READ_SIZE).map(
        lambda size: cut(stream, list(range(size, len(stream), size))))
    return anywhere | steady


def status_frame(seq: int, reading: ControllerReading) -> tuple[bytes, ControllerReading]:
    """The line a controller sends for `reading`, and the reading."""
    return rcc1.encode(rcc1.status_body(seq, reading)), reading


status_frames = st.builds(status_frame, st.integers(0, 2**32 - 1), readings)


@st.composite
def garbled_frames(draw: st.DrawFn) -> bytes:
    """A status frame with one byte changed before its line end: never a good frame."""
    frame, _ = draw(status_frames)
    at = draw(st.integers(0, len(frame) - 3))
    byte = draw(st.integers(0, 255).filter(lambda b: b != frame[at]))
    return frame[:at] + bytes([byte]) + frame[at + 1:]


@st.composite
def truncated_frames(draw: st.DrawFn) -> bytes:
    """A status frame cut before its checksum, then a line end (a controller reset mid-frame)."""
    frame, _ = draw(status_frames)
    return frame[:draw(st.integers(0, frame.index(b"*")))] + draw(st.sampled_from([b"\n", b"\r\n"]))


overlong_lines = st.integers(rcc1.MAX_LINE, 600).map(
    lambda length: rcc1.encode("AEDC," + "1" * length))
# A burst of line noise: the same byte many times, without a line end.
bursts = st.builds(lambda byte, length: byte * length,
                   st.sampled_from([b"\x00", b"\xff", b"U", b"$", b"*"]), st.integers(1, 600))
noise = st.one_of(st.binary(max_size=300), bursts, garbled_frames(), truncated_frames(),
                  overlong_lines,
                  st.sampled_from([b"\r\n", b"$", b"*", b"$AEDC,", b"\x00" * 8, b"\xff" * 8]))


def limit_unended_noise(noise_bytes: bytes) -> bytes:
    """Noise whose last run without a line end is at most one line long: the reader holds at
    most two lines' worth of unended input, so a frame after a longer run may be cut."""
    line_start = noise_bytes.rfind(b"\n") + 1
    return noise_bytes[:line_start + rcc1.MAX_LINE]


@fuzzing(ci_examples=300)
@given(items=st.lists(st.tuples(st.lists(noise, max_size=3).map(b"".join).map(limit_unended_noise),
                                st.one_of(status_frames, st.just((UNLOCK_ACK, None)))),
                      min_size=1, max_size=8),
       data=st.data())
def test_garbage_between_frames_never_loses_a_valid_frame(
        items: list[tuple[bytes, tuple[bytes, ControllerReading | None]]],
        data: st.DataObject) -> None:
    stream = b"".join(garbage + frame for garbage, (frame, _) in items)
    source = read_line(data.draw(reads(stream), label="reads"))
    statuses = [reading for _, (_, reading) in items if reading is not None]
    assert source.good_frames == len(statuses)
    assert source._unlock_acks == len(items) - len(statuses)
    if statuses:
        assert source._fresh_reading(max_age=60) == statuses[-1]


@fuzzing(ci_examples=300)
@given(chunks=st.lists(st.binary(max_size=READ_SIZE + 40), max_size=20))
def test_arbitrary_bytes_in_arbitrary_reads_are_counted_as_bad_lines_never_raised(
        chunks: list[bytes]) -> None:
    source = read_line(chunks)  # returns: the reader thread would have lived on
    assert set(source.bad_frames) <= FRAME_ERROR_CODES
    assert source.good_frames == 0 or source._fresh_reading(max_age=60) is not None


@fuzzing(ci_examples=300)
@given(frame=status_frames, chunks=st.lists(noise, min_size=1, max_size=6))
def test_a_good_frame_after_any_noise_and_a_line_end_is_read(
        frame: tuple[bytes, ControllerReading], chunks: list[bytes]) -> None:
    source = read_line([*chunks, b"\n", frame[0]])
    assert source.good_frames == 1
    assert source._fresh_reading(max_age=60) == frame[1]


@fuzzing(ci_examples=300)
@given(text=any_text | st.text("$*,\r\n0123456789ACDEFPUX-", max_size=80))
def test_any_text_line_parses_or_raises_frame_error_with_a_documented_code(text: str) -> None:
    # parse_line takes text as well as bytes; its unit tests feed it bytes.
    try:
        rcc1.parse_status_line(text)
    except FrameError as exc:
        assert exc.code in FRAME_ERROR_CODES


def test_a_frame_split_across_reads_after_200_bytes_of_noise_is_read() -> None:
    # The unfinished line (noise and the frame's first bytes) stays under the reader's 256 bytes.
    frame = rcc1.encode("AEDC,17,87,20270501,0,1,125,P")
    source = read_line(cut(b"\x00" * 200 + frame, [64, 128, 192, 210]))
    assert source.good_frames == 1


def test_a_frame_whose_first_bytes_follow_a_long_noise_burst_in_one_read_is_read() -> None:
    frame = rcc1.encode("AEDC,17,87,20270501,0,1,125,P")
    source = read_line([b"\x00" * 250, frame[:10], frame[10:]])
    assert source.good_frames == 1


def test_the_reader_keeps_no_memory_per_hostile_line() -> None:
    seeds = [rcc1.encode("AEDC,17,87,20270501,0,1,125,P"), UNLOCK_ACK, b"\xff\x00$*,\r\n" * 8]
    chunks = random_variants(seeds, 3000, seed=1)
    source = SerialSource("/dev/ttyFUZZ")
    assert memory_growth(lambda: read_line(chunks, source)) < MEMORY_SLACK
