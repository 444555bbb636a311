"""RFC 3339 `date-time` as the wire accepts it, validated by pydantic-core without a Python call per value.

pydantic's own datetime parser takes more than RFC 3339 (epoch seconds, a numeric string, `+0100`, no seconds,
a space for `T`) and refuses a leap second. `Rfc3339DateTime` lets a string through only if it matches RFC 3339's
ABNF (section 5.6; `T` and `Z` may be lowercase), then parses it in Rust: a Python function runs only for a leap
second, which becomes the next second (a datetime cannot hold second 60).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import AwareDatetime, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

_DATE = r"\d{4}-\d\d-\d\d[Tt]"
_OFFSET = r"(\.\d+)?([Zz]|[+-]\d\d:\d\d)$"
PATTERN = rf"^{_DATE}\d\d:\d\d:\d\d{_OFFSET}"
_NOT_LEAP = rf"^{_DATE}\d\d:\d\d:[0-5]\d{_OFFSET}"
_LEAP_SECOND = rf"^{_DATE}\d\d:\d\d:60{_OFFSET}"
EXPECTED = "expected an RFC 3339 date-time with seconds and an offset, such as 2026-11-28T12:00:00Z"


def _leap_second(value: str) -> datetime:
    """`...:60` as the second after `...:59`."""
    return datetime.fromisoformat(f"{value[:17]}59{value[19:]}".upper()) + timedelta(seconds=1)


class _Rfc3339:
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        aware = core_schema.datetime_schema(tz_constraint="aware")
        from_text = core_schema.union_schema(
            [
                core_schema.chain_schema([core_schema.str_schema(pattern=_NOT_LEAP), aware]),
                core_schema.chain_schema(
                    [
                        core_schema.str_schema(pattern=_LEAP_SECOND),
                        core_schema.no_info_plain_validator_function(_leap_second),
                    ]
                ),
            ],
            custom_error_type="rfc3339_date_time",
            custom_error_message=EXPECTED,
        )
        # From Python (a datetime built in code), an aware datetime as is; from JSON, only the text above.
        in_python = core_schema.union_schema(
            [core_schema.datetime_schema(tz_constraint="aware", strict=True), from_text]
        )
        return core_schema.json_or_python_schema(
            json_schema=from_text, python_schema=in_python, serialization=core_schema.simple_ser_schema("datetime")
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "date-time", "pattern": PATTERN}


Rfc3339DateTime = Annotated[AwareDatetime, _Rfc3339]
