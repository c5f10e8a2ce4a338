"""Fast protojson for the shapes Hubble captures contain, in both directions.

`google.protobuf.json_format` is pure Python and general: ParseDict spends about 180 us and
MessageToDict about 55 us on one flow, so a 100k-line `hubble observe -o jsonpb` capture took
20 s to open. These walk per-descriptor tables instead and handle what flows are made of:
integers (64-bit ones as strings), enums by name, bools, strings, nested and repeated
messages, Timestamp and the scalar wrappers.

- `parse_dict(document, message)`: anything else or anything doubtful (null, duplicate or
  oneof conflicts, unknown enum names, bytes, floats, maps, Any) makes it start over with
  ParseDict, so results and errors are exactly ParseDict's with ignore_unknown_fields=True.
- `message_to_dict(message)`: what MessageToDict(preserving_proto_field_name=True) returns;
  field types it does not handle itself are converted by json_format.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = ["parse_dict", "message_to_dict"]

M = TypeVar("M", bound=Message)

_INT_TYPES = {
    FieldDescriptor.CPPTYPE_INT32,
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32,
    FieldDescriptor.CPPTYPE_UINT64,
}
_WRAPPERS = {
    "google.protobuf.BoolValue",
    "google.protobuf.Int32Value",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.StringValue",
}
_TIMESTAMP = "google.protobuf.Timestamp"


class _Doubt(Exception):
    """Leave this document to ParseDict."""


def _integer(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str) and " " not in value:
        return int(value)  # ValueError -> doubt
    raise _Doubt


def _boolean(value: Any) -> bool:
    if type(value) is bool:
        return value
    raise _Doubt


def _string(value: Any) -> str:
    if type(value) is str and value.isprintable():  # control characters and surrogates: ParseDict decides
        return value
    raise _Doubt


def _enum(field: FieldDescriptor) -> Callable[[Any], int]:
    by_name = {v.name: v.number for v in field.enum_type.values}

    def convert(value: Any) -> int:
        if type(value) is str:
            number = by_name.get(value)
            if number is not None:
                return number
        elif type(value) is int:
            return value
        raise _Doubt

    return convert


def _scalar(field: FieldDescriptor) -> Callable[[Any], Any]:
    cpp = field.cpp_type
    if cpp in _INT_TYPES:
        return _integer
    if cpp == FieldDescriptor.CPPTYPE_BOOL:
        return _boolean
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        return _enum(field)
    if cpp == FieldDescriptor.CPPTYPE_STRING and field.type == FieldDescriptor.TYPE_STRING:
        return _string
    raise _Doubt  # floats, bytes: not in flows, let ParseDict handle them


# Per message type: JSON key -> (field name, oneof name or None, merge function).
_Entry = tuple[str, str | None, Callable[[Message, str, Any], None]]
_TABLES: dict[str, dict[str, _Entry] | None] = {}


def _table(descriptor: Descriptor) -> dict[str, _Entry] | None:
    """The merge table of a message type, or None when it holds something only ParseDict handles."""
    name = descriptor.full_name
    if name not in _TABLES:
        _TABLES[name] = None  # recursion guard; replaced below
        try:
            table: dict[str, _Entry] = {}
            for field in descriptor.fields:
                oneof = f"oneof {field.containing_oneof.name}" if field.containing_oneof else None
                entry = (field.name, oneof, _merger(field))
                table[field.name] = entry
                table[field.json_name] = entry
            _TABLES[name] = table
        except _Doubt:
            _TABLES[name] = None
    return _TABLES[name]


def _merger(field: FieldDescriptor) -> Callable[[Message, str, Any], None]:
    repeated = field.is_repeated
    if field.cpp_type != FieldDescriptor.CPPTYPE_MESSAGE:
        convert = _scalar(field)
        if repeated:
            def merge_scalars(message: Message, name: str, value: Any) -> None:
                if type(value) is not list:
                    raise _Doubt
                getattr(message, name).extend([convert(item) for item in value])
            return merge_scalars

        def merge_scalar(message: Message, name: str, value: Any) -> None:
            setattr(message, name, convert(value))
        return merge_scalar

    message_type = field.message_type
    if message_type.GetOptions().map_entry:
        raise _Doubt
    fill = _message_filler(message_type)
    if repeated:
        def merge_messages(message: Message, name: str, value: Any) -> None:
            if type(value) is not list:
                raise _Doubt
            container = getattr(message, name)
            for item in value:
                fill(container.add(), item)
        return merge_messages

    def merge_message(message: Message, name: str, value: Any) -> None:
        child = getattr(message, name)
        child.SetInParent()
        fill(child, value)
    return merge_message


def _message_filler(descriptor: Descriptor) -> Callable[[Message, Any], None]:
    full_name = descriptor.full_name
    if full_name == _TIMESTAMP:
        def fill_timestamp(message: Message, value: Any) -> None:
            if type(value) is not str:
                raise _Doubt
            message.FromJsonString(value)  # ValueError -> doubt
        return fill_timestamp
    if full_name in _WRAPPERS:
        convert = _scalar(descriptor.fields_by_name["value"])

        def fill_wrapper(message: Message, value: Any) -> None:
            message.value = convert(value)
        return fill_wrapper
    if full_name.startswith("google.protobuf."):
        # Any, Struct, Duration, FieldMask...: ParseDict's business, but only for a document
        # that holds one (Flow.extensions is an Any that flows almost never carry).
        def leave_to_parse_dict(message: Message, value: Any) -> None:
            raise _Doubt
        return leave_to_parse_dict

    def fill(message: Message, value: Any) -> None:
        table = _table(descriptor)
        if table is None or type(value) is not dict:
            raise _Doubt
        _fill(message, value, table)
    return fill


def _fill(message: Message, document: dict, table: dict[str, _Entry]) -> None:
    seen: set[str] = set()
    for key, value in document.items():
        entry = table.get(key)
        if entry is None:
            continue  # unknown field: skipped, as with ignore_unknown_fields
        name, oneof, merge = entry
        if value is None or name in seen or oneof in seen:
            raise _Doubt
        seen.add(name)
        if oneof is not None:
            seen.add(oneof)
        merge(message, name, value)


def parse_dict(document: Any, message: M) -> M:
    """Merge a decoded protojson document into `message` (ignoring unknown fields) and return
    it; raises json_format.ParseError exactly when ParseDict would."""
    table = _table(message.DESCRIPTOR)
    if table is not None and type(document) is dict:
        scratch = type(message)()
        try:
            _fill(scratch, document, table)
        except (_Doubt, ValueError, TypeError, OverflowError):
            pass
        else:
            message.MergeFrom(scratch)
            return message
    json_format.ParseDict(document, message, ignore_unknown_fields=True)
    return message


# ----- message -> dict ---------------------------------------------------------------------------

_LONG_TYPES = {FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT64}
_WRITERS: dict[FieldDescriptor, Callable[[Any], Any] | None] = {}


def _value_writer(field: FieldDescriptor) -> Callable[[Any], Any]:
    cpp = field.cpp_type
    if cpp in _LONG_TYPES:
        return str
    if cpp == FieldDescriptor.CPPTYPE_ENUM:
        names = {v.number: v.name for v in field.enum_type.values}
        return lambda number: names.get(number, number)
    if cpp == FieldDescriptor.CPPTYPE_MESSAGE:
        full_name = field.message_type.full_name
        if full_name == _TIMESTAMP:
            return lambda stamp: stamp.ToJsonString()
        if full_name in _WRAPPERS:
            inner = _value_writer(field.message_type.fields_by_name["value"])
            return lambda wrapper: inner(wrapper.value)
        if full_name.startswith("google.protobuf.") or field.message_type.GetOptions().map_entry:
            return None  # json_format's business
        return message_to_dict
    if cpp in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_BOOL):
        return _same
    if cpp == FieldDescriptor.CPPTYPE_STRING and field.type == FieldDescriptor.TYPE_STRING:
        return _same
    return None  # floats and bytes: json_format's business


def _same(value: Any) -> Any:
    return value


def _writer(field: FieldDescriptor) -> Callable[[Any], Any] | None:
    convert = _value_writer(field)
    if convert is not None and field.is_repeated:
        one = convert
        convert = list if one is _same else (lambda values: [one(v) for v in values])
    return convert


_MISSING = object()


def message_to_dict(message: Message) -> dict[str, Any]:
    """protojson of `message` as MessageToDict(preserving_proto_field_name=True) gives it."""
    out: dict[str, Any] = {}
    writers = _WRITERS
    for field, value in message.ListFields():
        convert = writers.get(field, _MISSING)  # descriptors are long-lived: key on them
        if convert is _MISSING:
            convert = writers[field] = _writer(field)
        if convert is None:
            return json_format.MessageToDict(message, preserving_proto_field_name=True)
        out[field.name] = value if convert is _same else convert(value)
    return out
