"""What the fuzz tests share: their settings, hostile values, mutations, the memory check."""

from __future__ import annotations

import gc
import json
import os
import random
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

PROFILE_VARIABLE = "AEDFLEET_FUZZ_PROFILE"
# Growth of traced memory over two more rounds of a few thousand inputs that a test allows:
# a leak of a few bytes per input shows far above it, noise (free lists, warm caches) far below.
MEMORY_SLACK = 64 * 1024


def fuzzing(ci_examples: int | None = None) -> settings:
    """The settings of a fuzz property: the chosen profile, with `ci_examples` in the CI one."""
    name = os.environ.get(PROFILE_VARIABLE, "ci")
    profile = settings.get_profile(f"fuzz-{name}")  # registered in conftest.py
    if name == "ci" and ci_examples is not None:
        return settings(profile, max_examples=ci_examples)
    return profile


# --- hostile values -----------------------------------------------------------------------------

# Every code point, lone surrogates (valid in JSON as "\ud800", not in UTF-8), NUL and controls.
any_text = st.text(st.characters(exclude_categories=()), max_size=40)
# Integers beyond a float's range (1.8e308): JSON has no limit, Python's float() overflows.
huge_integers = st.integers(2**1024, 10**400) | st.integers(-(10**400), -(2**1024))
# NaN, ±Infinity, -0.0, subnormals and 1e308; json.dumps writes NaN and Infinity, as some
# senders do (Python's json.loads reads them).
any_float = st.floats()
utc_offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))
# RFC 3339-like times: every year 1-9999 with any offset (some lie outside 1-9999 in UTC),
# without an offset, or nearly in the format.
time_texts = st.one_of(
    st.datetimes(timezones=utc_offsets).map(datetime.isoformat),
    st.datetimes().map(datetime.isoformat),
    st.datetimes(timezones=st.just(UTC)).map(
        lambda moment: moment.isoformat().replace("+00:00", "Z")),
    st.text("0123456789-:.TZ+ ", max_size=32),
)
# Text with a lone surrogate in it, e.g. a time: valid JSON ("\ud800"), but not encodable as UTF-8.
with_lone_surrogate = st.tuples(time_texts | any_text, st.characters(categories=["Cs"])).map(
    lambda parts: parts[0][:len(parts[0]) // 2] + parts[1] + parts[0][len(parts[0]) // 2:])
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), huge_integers, any_float,
                         any_text, with_lone_surrogate, time_texts)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(any_text, children, max_size=4),
    max_leaves=8)
# For one member of a document: a scalar half of the time, else any JSON value.
member_values = json_scalars | json_values
# Nesting depths around and beyond what CPython's JSON parser takes (its recursion limit).
nesting_depths = st.integers(1, 2000)


def nested_json(depth: int, opener: str = "[") -> str:
    """JSON text nested `depth` deep, built as text (json.dumps itself would recurse)."""
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "{":
        return '{"a":' * depth + "0" + closer * depth
    return opener * depth + closer * depth


def with_raw_member(document: dict[str, Any], name: str, raw_json: str) -> bytes:
    """`document` as JSON with member `name` set to the JSON text `raw_json` (last one wins)."""
    text = json.dumps({key: value for key, value in document.items() if key != name})
    separator = ", " if len(text) > 2 else ""
    return f"{text[:-1]}{separator}{json.dumps(name)}: {raw_json}}}".encode()


# --- mutations ----------------------------------------------------------------------------------

EDITS = ("replace", "insert", "delete", "duplicate", "truncate")


@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes, max_edits: int = 4) -> bytes:
    """`original` with a few bytes replaced, inserted or deleted, a slice repeated, or cut."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, max_edits))):
        edit = draw(st.sampled_from(EDITS))
        at = draw(st.integers(0, len(data)))
        if edit == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif edit == "duplicate":
            data[at:at] = data[at:draw(st.integers(at, len(data)))]
        elif edit == "truncate":
            del data[at:]
    return bytes(data)


@st.composite
def mutated_text(draw: st.DrawFn, original: str, pieces: st.SearchStrategy[str],
                 max_edits: int = 4) -> str:
    """`original` with a few characters replaced, deleted or inserted (from `pieces`), or cut."""
    text = original
    for _ in range(draw(st.integers(1, max_edits))):
        edit = draw(st.sampled_from(EDITS))
        at = draw(st.integers(0, len(text)))
        if edit == "replace":
            text = text[:at] + draw(pieces) + text[at + 1:]
        elif edit == "insert":
            text = text[:at] + draw(pieces) + text[at:]
        elif edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 8)):]
        elif edit == "duplicate":
            text = text[:at] + text[at:draw(st.integers(at, len(text)))] + text[at:]
        else:
            text = text[:at]
    return text


# --- memory -------------------------------------------------------------------------------------

def memory_growth(run_once: Callable[[], object], rounds: int = 2) -> int:
    """Bytes of Python memory still held after `rounds` more runs than after a first run.

    The first run warms caches (regular expressions, lru_cache, lazily built tables); what the
    later runs add is what the parser keeps per input. Memory of native libraries is not traced.
    """
    gc.collect()
    tracemalloc.start()
    try:
        run_once()
        gc.collect()
        baseline = tracemalloc.get_traced_memory()[0]
        for _ in range(rounds):
            run_once()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()


def random_variants(originals: Sequence[bytes], count: int, seed: int = 0) -> list[bytes]:
    """`count` edited copies of `originals` (as `mutated_bytes` edits them), the same every run.

    The memory tests' inputs: thousands of them, faster made than by Hypothesis.
    """
    rng = random.Random(seed)
    variants = []
    for _ in range(count):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 4)):
            edit, at = rng.choice(EDITS), rng.randint(0, len(data))
            if edit == "replace" and at < len(data):
                data[at] = rng.randrange(256)
            elif edit == "insert":
                data[at:at] = rng.randbytes(rng.randint(1, 8))
            elif edit == "delete":
                del data[at:at + rng.randint(1, 8)]
            elif edit == "duplicate":
                data[at:at] = data[at:rng.randint(at, len(data))]
            elif edit == "truncate":
                del data[at:]
        variants.append(bytes(data))
    return variants
