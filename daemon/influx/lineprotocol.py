"""InfluxDB line protocol, written by hand for the hot path.

influxdb-client's ``Point(...).to_line_protocol()`` is the reference (tests check
byte equality on the same records, escapes and special floats included) but costs
about 6 us a line. Here the measurement and tags of a series are escaped once into
a prefix, each field layout (the set of channel names a device sends) gets an
encoder generated once, an f-string over pre-escaped pieces, and the text of each
float value is remembered: about a tenth of Point's cost.

Point's rules, followed exactly: tags and fields sorted by key; a tag with an
empty value dropped; a float written as ``repr`` with a trailing ``.0`` trimmed;
NaN and infinities omitted (the field, not the line); ints suffixed ``i``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from math import isnan

TEXT_CACHE_SIZE = 50_000
"""Float texts remembered per series: a few MB at most; cleared when full."""

SampleEncoder = Callable[[Mapping[str, float], int, int, int], str]
ColumnEncoder = Callable[..., list[str] | None]
"""(time_ns, seq, flags, *value columns in layout order) -> lines, or None if a value
is one Point omits (then the samples go one by one)."""

_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t", "\r": r"\r"})
_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})


def escape_key(key: str) -> str:
    """A tag key, tag value or field key."""
    return key.translate(_KEY)


def escape_tag_value(value: str) -> str:
    out = value.translate(_KEY)
    # A value ending in a backslash would escape the separator that follows it.
    return out + " " if out.endswith("\\") else out


def format_float(value: float) -> str | None:
    """Point's float text, or None for a value line protocol cannot carry."""
    if not math.isfinite(value):
        return None
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def series_prefix(measurement: str, tags: Mapping[str, str]) -> str:
    """``measurement,k=v,... `` with Point's escaping and ordering, trailing space included."""
    parts = [measurement.translate(_MEASUREMENT)]
    for key in sorted(tags):
        k, v = escape_key(key), escape_tag_value(tags[key])
        if k and v:
            parts.append(f"{k}={v}")
    return ",".join(parts) + " "


def encode_fields(fields: Mapping[str, float | int | str | bool | None]) -> str:
    """The general field encoder: any mix of types, Point's rules. Not for the hot path."""
    out = []
    for key in sorted(fields):
        value = fields[key]
        if value is None:
            continue
        k = escape_key(key)
        if isinstance(value, bool):
            out.append(f"{k}={str(value).lower()}")
        elif isinstance(value, int):
            out.append(f"{k}={value}i")
        elif isinstance(value, float):
            text = format_float(value)
            if text is not None:
                out.append(f"{k}={text}")
        else:
            out.append(f'{k}="{value.translate(_STRING)}"')
    return ",".join(out)


def encode_line(prefix: str, fields: Mapping[str, float | int | str | bool | None], t: int) -> str:
    """One line from a prefix and any fields; empty when no field survives (as Point)."""
    text = encode_fields(fields)
    return f"{prefix}{text} {t}" if text else ""


class SampleLines:
    """Encodes ``pv_sample`` lines of one series: values by channel, plus seq and flags.

    ``lines.encode(values, seq, flags, time_ns)`` returns one line. ``encode`` is the
    encoder generated for the layout (channel names) last seen; when a sample comes
    with another layout, it switches to that layout's encoder, generated on first
    sight and cached. A device sends one or two layouts (a sensor fault drops
    pressure), so the switch is rare and the common call is one generated function.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._encoders: dict[frozenset[str], SampleEncoder] = {}
        self._column_encoders: dict[tuple[str, ...], tuple[ColumnEncoder, list[int]] | None] = {}
        self._texts: dict[float, str] = {}
        self.encode: SampleEncoder = self._switch

    def encode_columns(
        self,
        time_ns: list[int],
        seq: list[int],
        flags: list[int],
        fields: tuple[str, ...],
        columns: Sequence[list[float]],
    ) -> list[str]:
        """Samples given as columns (NaN: no reading), one line each: the same lines
        ``encode`` writes for them one by one, a column of texts at a time."""
        if fields not in self._column_encoders:
            self._column_encoders[fields] = self._compile_columns(fields)
        entry = self._column_encoders[fields]
        if entry is not None:
            encoder, order = entry
            lines = encoder(time_ns, seq, flags, *[columns[i] for i in order])
            if lines is not None:
                return lines
        # A missing reading (NaN) or a value Point omits: one by one (``encode``
        # switches layout as it goes, so it is looked up each time).
        return [
            self.encode({f: v for f, v in zip(fields, vs, strict=True) if not isnan(v)}, s, fl, t)
            for t, s, fl, *vs in zip(time_ns, seq, flags, *columns, strict=True)
        ]

    def _compile_columns(self, fields: tuple[str, ...]) -> tuple[ColumnEncoder, list[int]] | None:
        """Generate the column encoder for one field layout: a list comprehension of
        texts per column (remembered texts, as ``encode``), then one f-string a line.

        Zero is not remembered (0.0 and -0.0 are one key, "0" and "-0" two texts), and
        a device sends a lot of it (no volume before an inflation): its text is made
        in the comprehension, ``repr`` trimmed of ".0", without a call to ``fill``."""
        if not fields or {"seq", "flags"} & set(fields) or len(set(fields)) != len(fields):
            return None
        layout = sorted(fields)
        slots = [(key, f"a{i}", True) for i, key in enumerate(layout)]
        slots += [("seq", "s", False), ("flags", "fl", False)]
        slots.sort()
        env: dict[str, object] = {"P": self.prefix, "get": self._texts.get, "fill": self._fill}
        pieces = []
        for n, (key, var, is_float) in enumerate(slots):
            env[f"K{n}"] = ("," if n else "") + escape_key(key) + "="
            pieces.append(f"{{K{n}}}{{{var}}}" + ("" if is_float else "i"))
        columns = ", ".join(f"c{i}" for i in range(len(layout)))
        texts = "".join(
            f"    x{i} = [get(v) or (fill(v) if v else repr(v)[:-2]) for v in c{i}]\n"
            f"    if None in x{i}:\n"
            "        return None\n"
            for i in range(len(layout))
        )
        names = ", ".join(f"a{i}" for i in range(len(layout)))
        src = (
            f"def encode(time_ns, seq, flags, {columns}):\n"
            f"{texts}"
            f'    return [f"{{P}}{"".join(pieces)} {{t}}"'
            f" for t, s, fl, {names} in zip(time_ns, seq, flags, "
            f"{', '.join(f'x{i}' for i in range(len(layout)))})]\n"
        )
        exec(compile(src, f"<pv_sample column encoder {layout}>", "exec"), env)  # noqa: S102
        encoder: ColumnEncoder = env["encode"]  # type: ignore[assignment]
        return encoder, [fields.index(key) for key in layout]

    def _switch(self, values: Mapping[str, float], seq: int, flags: int, time_ns: int) -> str:
        layout = frozenset(values)
        if not layout or {"seq", "flags"} & layout:
            # No channel, or one named like a fixed field: Point's semantics, uncached.
            return self._general(values, seq, flags, time_ns)
        encoder = self._encoders.get(layout)
        if encoder is None:
            encoder = self._encoders[layout] = self._compile(tuple(sorted(layout)))
        self.encode = encoder
        return encoder(values, seq, flags, time_ns)

    def _fill(self, value: float) -> str | None:
        """Point's text for ``value``, remembered: a device repeats its quantised readings.

        Formatting a float is most of a line's cost; a dict hit is a tenth of it.
        Zero is not remembered (0.0 and -0.0 are equal keys but Point writes "0"
        and "-0"), nor what Point omits (NaN and infinities: None sends the line
        to the general path).
        """
        text = format_float(value)
        if text is not None and value:
            if len(self._texts) >= TEXT_CACHE_SIZE:
                self._texts.clear()
            self._texts[value] = text
        return text

    def _general(self, values: Mapping[str, float], seq: int, flags: int, time_ns: int) -> str:
        return encode_line(self.prefix, {**values, "seq": seq, "flags": flags}, time_ns)

    def _compile(self, layout: tuple[str, ...]) -> SampleEncoder:
        """Generate ``encode(values, seq, flags, time_ns)`` for one channel layout.

        Only generated names are pasted into the source; every literal piece of
        the line (escaped keys, the prefix, channel names) is passed in as a
        constant, so no configured text can change the code. Values that Point
        omits (non-finite) take the general path.
        """
        slots = [(key, f"t{i}", True) for i, key in enumerate(layout)]
        slots += [("seq", "seq", False), ("flags", "flags", False)]
        slots.sort()
        env: dict[str, object] = {"switch": self._switch, "general": self._general}
        env.update(P=self.prefix, get=self._texts.get, fill=self._fill)
        pieces = []
        for n, (key, var, is_float) in enumerate(slots):
            env[f"K{n}"] = ("," if n else "") + escape_key(key) + "="
            pieces.append(f"{{K{n}}}{{{var}}}" + ("" if is_float else "i"))
        loads = ""
        for i, key in enumerate(layout):
            env[f"C{i}"] = key
            loads += f"        v{i} = values[C{i}]\n"
        texts = "".join(f"    t{i} = get(v{i}) or fill(v{i})\n" for i in range(len(layout)))
        missing = " or ".join(f"t{i} is None" for i in range(len(layout)))
        src = (
            "def encode(values, seq, flags, time_ns):\n"
            f"    if len(values) != {len(layout)}:\n"
            "        return switch(values, seq, flags, time_ns)\n"
            "    try:\n"
            f"{loads}"
            "    except KeyError:\n"
            "        return switch(values, seq, flags, time_ns)\n"
            f"{texts}"
            f"    if {missing}:\n"
            "        return general(values, seq, flags, time_ns)\n"
            f'    return f"{{P}}{"".join(pieces)} {{time_ns}}"\n'
        )
        exec(compile(src, f"<pv_sample encoder {layout}>", "exec"), env)  # noqa: S102
        encoder: SampleEncoder = env["encode"]  # type: ignore[assignment]
        return encoder
