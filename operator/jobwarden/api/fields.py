"""What every model of the API shares: its pydantic base and the error naming a field.

A spec and a calendar report a bad value the same way, by the field path the
user wrote (``spec.yearly[2]``), so a condition can point at the line to fix.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel


class FieldError(ValueError):
    """A problem with one field, with its path as the user wrote it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ApiModel(BaseModel):
    """Fields by their camelCase names; unknown ones ignored; values frozen once parsed."""

    model_config = ConfigDict(
        populate_by_name=True, alias_generator=to_camel, extra="ignore", frozen=True
    )


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The path (``spec.every.times[1]``) and message of a validation's first error."""
    first = exc.errors()[0]
    path = "spec"
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{to_camel(str(part))}"
    message = "is required" if first["type"] == "missing" else str(first["msg"])
    return path, message.removeprefix("Value error, ")
