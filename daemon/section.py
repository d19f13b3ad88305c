"""The base of every configuration table: unknown keys are errors, values are frozen."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""A device's name: it becomes a tag and a file name."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
