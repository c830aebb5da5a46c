"""The one validation language: each spec validates decoded JSON *and* emits its JSON Schema.

API request bodies, query parameters and flow actions are declared with it, so the published
contract (the OpenAPI document, the flow-action schema) and the enforced one are the same
object. Errors are ``ValidationError`` naming the field path (``actions[0].agent_id``);
unknown fields are rejected. Sans-IO, and below api/ and flows/: it imports neither.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ari_offload.errors import ValidationError

# One-line text: no control characters (they break logs, CDRs and the dialplan).
ONE_LINE = r"^[^\u0000-\u001f\u007f]*$"
NO_NUL = r"^[^\u0000]*$"
# A TTS voice's name: the API accepts only these, so the server offers no voice beyond them.
VOICE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$"
# An agent's speaking rate, times its voice's normal pace (1.0): the API's bounds, which the
# speech side also holds a stored rate to. Past them piper's speech stops being intelligible.
MIN_SPEAKING_RATE, MAX_SPEAKING_RATE = 0.5, 2.0


def primary_language(tag: str) -> str:
    """Engines know languages, not regions: "en-US" counts as "en" (the API and whisper)."""
    return tag.split("-", 1)[0].lower()


Schema = dict[str, Any]
_INTEGER = re.compile(r"-?[0-9]{1,18}")


class Spec:
    nullable: bool = False
    description: str = ""

    def validate(self, value: object, path: str) -> object:
        if value is None:
            if self.nullable:
                return None
            raise ValidationError(path, "must not be null")
        return self.check(value, path)

    def check(self, value: object, path: str) -> object:
        raise NotImplementedError

    def schema(self, components: dict[str, Schema]) -> Schema:
        out = self.base_schema(components)
        if self.nullable:
            if "type" in out:
                out["type"] = [out["type"], "null"]
                if "enum" in out:
                    out["enum"] = [*out["enum"], None]
            else:
                out = {"oneOf": [out, {"type": "null"}]}
        if self.description:
            out["description"] = self.description
        return out

    def base_schema(self, components: dict[str, Schema]) -> Schema:
        raise NotImplementedError


@dataclass(frozen=True)
class Str(Spec):
    max_length: int
    min_length: int = 0
    pattern: str | None = None
    enum: tuple[str, ...] = ()
    nullable: bool = False
    description: str = ""
    format: str | None = None  # documentation only (date-time)
    also: Callable[[str], str | None] | None = None  # a further check: error message or None
    any_text: bool = False  # responses only: may echo what a client sent, NUL included

    def check(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            raise ValidationError(path, "expected a string")
        if self.enum and value not in self.enum:
            raise ValidationError(path, f"expected one of {', '.join(self.enum)}")
        if len(value) < self.min_length:
            raise ValidationError(
                path,
                "must not be empty"
                if self.min_length == 1
                else f"at least {self.min_length} characters",
            )
        if len(value) > self.max_length:
            raise ValidationError(path, f"at most {self.max_length} characters")
        if self.pattern is not None and not matches_pattern(self.pattern, value):
            raise ValidationError(path, f"must match {self.pattern}")
        if not self.any_text and not is_storable(value):
            raise ValidationError(path, "must be valid Unicode without NUL characters")
        problem = self.also(value) if self.also else None
        if problem:
            raise ValidationError(path, problem)
        return value

    def base_schema(self, components: dict[str, Schema]) -> Schema:
        out: Schema = {"type": "string"}
        if self.enum:
            out["enum"] = list(self.enum)
        else:
            out["maxLength"] = self.max_length
            if self.min_length:
                out["minLength"] = self.min_length
        # Every string refuses NUL (is_storable); say so where no pattern already does.
        if self.pattern or not (self.any_text or self.enum):
            out["pattern"] = self.pattern or NO_NUL
        if self.format:
            out["format"] = self.format
        return out


@dataclass(frozen=True)
class Int(Spec):
    minimum: int
    maximum: int
    nullable: bool = False
    description: str = ""

    def check(self, value: object, path: str) -> int:
        # bool is an int in Python, not in JSON; JSON Schema counts 1.0 as an integer.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(path, "expected an integer")
        if not self.minimum <= value <= self.maximum:
            raise ValidationError(path, f"must be between {self.minimum} and {self.maximum}")
        return value

    def base_schema(self, components: dict[str, Schema]) -> Schema:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}


@dataclass(frozen=True)
class Num(Spec):
    """A finite number (a latency in responses, a pause in flow actions), returned as float."""

    nullable: bool = False
    description: str = ""
    exclusive_minimum: float | None = None
    maximum: float | None = None
    minimum: float | None = None

    def check(self, value: object, path: str) -> float:
        # bool is an int in Python but not a number in JSON.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(path, "expected a number")
        if not math.isfinite(value):
            raise ValidationError(path, "must be finite")
        if self.exclusive_minimum is not None and value <= self.exclusive_minimum:
            raise ValidationError(path, f"must be greater than {self.exclusive_minimum:g}")
        if self.minimum is not None and value < self.minimum:
            raise ValidationError(path, f"must be at least {self.minimum:g}")
        if self.maximum is not None and value > self.maximum:
            raise ValidationError(path, f"must be at most {self.maximum:g}")
        return float(value)

    def base_schema(self, components: dict[str, Schema]) -> Schema:
        out: Schema = {"type": "number"}
        if self.exclusive_minimum is not None:
            out["exclusiveMinimum"] = self.exclusive_minimum
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


@dataclass(frozen=True)
class Const(Spec):
    """Exactly one value (a flow action's ``type``)."""

    value: str
    nullable: bool = False
    description: str = ""

    def check(self, value: object, path: str) -> str:
        if value != self.value:
            raise ValidationError(path, f"expected {self.value!r}")
        return self.value

    def base_schema(self, components: dict[str, Schema]) -> Schema:
        return {"const": self.value}


@dataclass(frozen=True)
class Bool(Spec):
    nullable: bool = False
    description: str = ""

    def check(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            raise ValidationError(path, "expected true or false")
        return value

    def base_schema(self, components: dict[str, Schema]) -> Schema:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Arr(Spec):
    items: Spec
    max_items: int
    min_items: int = 0
    nullable: bool = False
    description: str = ""

    def check(self, value: object, path: str) -> list[object]:
        if not isinstance(value, list):
            raise ValidationError(path, "expected a list")
        if not self.min_items <= len(value) <= self.max_items:
            raise ValidationError(path, f"expected {self.min_items} to {self.max_items} items")
        return [self.items.validate(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def base_schema(self, components: dict[str, Schema]) -> Schema:
        out: Schema = {
            "type": "array",
            "items": self.items.schema(components),
            "maxItems": self.max_items,
        }
        if self.min_items:
            out["minItems"] = self.min_items
        return out


@dataclass(frozen=True)
class Custom(Spec):
    """Validation delegated to a function that raises ``ValidationError`` (a flow's actions)."""

    json_schema: Schema
    parse: Callable[[object, str], object]
    nullable: bool = False
    description: str = ""

    def check(self, value: object, path: str) -> object:
        return self.parse(value, path)

    def base_schema(self, components: dict[str, Schema]) -> Schema:
        return dict(self.json_schema)


@dataclass(frozen=True)
class Obj(Spec):
    """A JSON object with known fields; named objects become ``components/schemas`` refs."""

    name: str | None
    fields: Mapping[str, Spec]
    required: tuple[str, ...] = ()
    nullable: bool = False
    description: str = ""
    extra_fields: bool = False  # responses may grow fields; requests may not
    unknown_field: str = "unknown field"  # the error for a field not in ``fields``

    def check(self, value: object, path: str) -> dict[str, object]:
        if not isinstance(value, dict):
            raise ValidationError(path or "body", "expected a JSON object")
        for key in value:
            if key not in self.fields and not self.extra_fields:
                raise ValidationError(_join(path, key), self.unknown_field)
        for key in self.required:
            if key not in value:
                raise ValidationError(_join(path, key), "required")
        return {
            k: spec.validate(value[k], _join(path, k))
            for k, spec in self.fields.items()
            if k in value
        }

    def base_schema(self, components: dict[str, Schema]) -> Schema:
        if self.name is None:
            return self.inline_schema(components)
        if self.name not in components:
            components[self.name] = {}  # placeholder first: allows self-reference
            components[self.name] = self.inline_schema(components)
        return {"$ref": f"#/components/schemas/{self.name}"}

    def inline_schema(self, components: dict[str, Schema]) -> Schema:
        out: Schema = {
            "type": "object",
            "properties": {k: s.schema(components) for k, s in self.fields.items()},
            "additionalProperties": self.extra_fields,
        }
        if self.required:
            out["required"] = list(self.required)
        return out


@dataclass(frozen=True)
class Param:
    """A query parameter; arrays are comma-separated (``?status=ringing,active``)."""

    name: str
    spec: Spec
    description: str = ""
    required: bool = False
    default: Any = None

    def parse(self, raw: list[str]) -> object:
        if isinstance(self.spec, Arr):
            items = [part for value in raw for part in value.split(",")]
            return self.spec.validate(items, self.name)
        if len(raw) > 1:
            raise ValidationError(self.name, "give this parameter once")
        value: object = raw[0]
        if isinstance(self.spec, Int):
            # int() would also take " 5", "1_0" and non-ASCII digits.
            if not _INTEGER.fullmatch(raw[0]):
                raise ValidationError(self.name, "expected an integer")
            value = int(raw[0])
        return self.spec.validate(value, self.name)

    def schema(self, components: dict[str, Schema]) -> Schema:
        out: Schema = {
            "name": self.name,
            "in": "query",
            "required": self.required,
            "schema": self.spec.schema(components),
        }
        if self.description:
            out["description"] = self.description
        if isinstance(self.spec, Arr):
            out["style"] = "form"
            out["explode"] = False
        return out


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def matches_pattern(pattern: str, value: str) -> bool:
    # JSON Schema's "$" is the end of input; Python's also matches before a final newline.
    return (
        re.search(pattern.removesuffix("$") + r"\Z" if pattern.endswith("$") else pattern, value)
        is not None
    )


def is_storable(value: str) -> bool:
    """False for text no database can hold: NUL (PostgreSQL) or lone surrogates (UTF-8)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Ids we issue (UUIDs) and ids the controller brings: anything else cannot name a resource.
ID = Str(64, 1, r"^[A-Za-z0-9_.-]+$")
