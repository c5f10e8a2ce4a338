"""Parsing only some fields of Hubble's messages, and many GetFlowsResponses in one call.

Reading a field of a parsed protobuf message costs ~40 ns for a number and ~100 ns for a
sub-message (a wrapper object is made), and parsing builds every field the message has: on
a hot path that reads a few fields of each flow, both cost more than the reading. So:

- A trimmed schema: copies of Hubble's messages (made at import from the generated
  descriptors, so every field number is Hubble's) that declare only the fields read; the
  parser skips the others (labels, ethernet, summary, ...) instead of building them. A field
  marked "bytes" is a sub-message read as its encoding: cheaper than a message and its
  fields, and a key what it means can be remembered by. An absent sub-message and an empty
  one both read b"". (A sub-message split in two on the wire, which no encoder writes, would
  be merged by the full parser and read as its last part here.)
- Batches: GetFlowsResponses laid end to end are one valid message whose repeated fields hold
  their members, so `Batch.FromString(b"".join(responses))` parses them all in one call. As
  a response holds one member of its oneof, a batch with as many flows as responses and
  nothing else is one flow per response, in order.

    classes = trimmed_classes({"Flow": {"time": "", "verdict": "", "source": "bytes"}}, "my.view")
    batch = classes["my.view.Batch"].FromString(b"".join(raws))
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from kcockpit.wire.hubble_pb import GetFlowsResponse, flow_pb

__all__ = ["trimmed_classes"]

Fields = dict[str, dict[str, str]]  # message name -> {field name: "" (as declared) or "bytes"}


def _file_proto(file_descriptor) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    file_descriptor.CopyToProto(proto)
    return proto


def _trimmed_flow_file(read: Fields) -> descriptor_pb2.FileDescriptorProto:
    proto = _file_proto(flow_pb.DESCRIPTOR)
    for message in proto.message_type:
        fields = read.get(message.name)
        if fields is None:
            continue
        kept = [field for field in message.field if field.name in fields]
        for field in kept:
            if fields[field.name] == "bytes":
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                field.ClearField("type_name")
        del message.field[:]
        message.field.extend(kept)
    return proto


def _responses_file(flow_file: str, package: str) -> descriptor_pb2.FileDescriptorProto:
    """`Response`: a GetFlowsResponse's kind (which member of its oneof), with its flow;
    `Batch`: responses laid end to end, each member repeated."""
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"{package.replace('.', '/')}/responses.proto", package=package, syntax="proto3",
        dependency=[flow_file])
    response = proto.message_type.add(name="Response")
    response.oneof_decl.add(name="response_types")
    batch = proto.message_type.add(name="Batch")
    Field = descriptor_pb2.FieldDescriptorProto
    for field in GetFlowsResponse.DESCRIPTOR.oneofs_by_name["response_types"].fields:
        if field.name == "flow":
            shape = {"type": Field.TYPE_MESSAGE, "type_name": "." + field.message_type.full_name}
        else:
            shape = {"type": Field.TYPE_BYTES}
        response.field.add(name=field.name, number=field.number, label=Field.LABEL_OPTIONAL, oneof_index=0, **shape)
        batch.field.add(name=field.name, number=field.number, label=Field.LABEL_REPEATED, **shape)
    return proto


def trimmed_classes(read: Fields, package: str, *names: str) -> dict[str, type]:
    """Message classes of a trimmed schema, in a pool of their own: `{package}.Response`,
    `{package}.Batch`, and any other full name asked for (e.g. "flow.Layer7")."""
    pool = descriptor_pool.DescriptorPool()
    for dependency in flow_pb.DESCRIPTOR.dependencies:  # google's well-known types
        pool.Add(_file_proto(dependency))
    flow_file = _trimmed_flow_file(read)
    pool.Add(flow_file)
    pool.Add(_responses_file(flow_file.name, package))
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        for name in (f"{package}.Response", f"{package}.Batch", *names)
    }
