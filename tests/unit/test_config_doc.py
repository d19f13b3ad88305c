"""docs/configuration.md against the configuration model: every key the model takes is
documented with its default, and the document names no key the model lacks."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from daemon.config import ChannelConfig, Config, DeviceConfig, RegisterConfig
from daemon.device_config import LineFieldConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
ROW = re.compile(r"^\| `([a-z_.]+)` \| `([^`]*)` \|", re.MULTILINE)


def sections() -> Iterator[tuple[str, type[BaseModel]]]:
    for name, field in Config.model_fields.items():
        if name == "device":
            yield "device", DeviceConfig
            yield "device.channels", ChannelConfig
            yield "device.registers", RegisterConfig
            yield "device.fields", LineFieldConfig
        else:
            assert isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
            yield name, field.annotation


def default_text(field: FieldInfo) -> str:
    """A key's default as the document writes it: as TOML would, or ``required``."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value)  # as a TOML basic string: "\r\n" escaped
    if isinstance(value, Path):
        return f'"{value}"'
    if isinstance(value, list):
        return "[]"
    if isinstance(value, dict):
        return "{}"
    return repr(value)


def test_every_key_is_documented_with_its_default() -> None:
    documented = dict(ROW.findall(DOC.read_text()))
    expected = {
        f"{table}.{name}": default_text(field)
        for table, model in sections()
        for name, field in model.model_fields.items()
    }
    assert set(documented) == set(expected), "keys documented and keys taken differ"
    wrong = {k: (documented[k], v) for k, v in expected.items() if documented[k] != v}
    assert not wrong, f"documented default, model default: {wrong}"
