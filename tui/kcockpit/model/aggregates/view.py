"""The aggregates' view of a flow: the few fields they count, read from its wire bytes.

The aggregates see every flow, so this is their hot path (the accumulator's loop reads the
fields; this module parses them and remembers what encodings mean). Reading a field of a
parsed message costs ~40 ns for a number and ~100 ns for a sub-message (a wrapper object is
made): a flow's worth of fields costs more than its parse. So:

- A trimmed schema (`wire.trimmed_schema`): the flows are parsed with copies of Hubble's
  messages that declare only the fields read here; the parser skips the others (labels,
  ethernet, interface, summary, ...) instead of building them.
- Sub-messages read as bytes. The endpoints, the event type, is_reply, the L7 record and the
  policies are declared `bytes`: reading one gives its encoding, and the encoding is the key
  its meaning is remembered by (an endpoint's name, an event's type, a policy's name).
- Batches: one parse call per `BATCH` responses instead of one each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from google.protobuf.message import DecodeError

from kcockpit.model.aggregates.naming import Endpoint, name_endpoint, own_name
from kcockpit.wire.trimmed_schema import trimmed_classes

L7_REQUEST = 1
L7_RESPONSE = 2
EVENT_DROP = 1
EVENT_POLICY_VERDICT = 5
POLICY_DROP_REASONS = frozenset({133, 181})  # POLICY_DENIED, POLICY_DENY
BATCH = 128  # responses per parse: fewer calls, and a batch's parse stays in the CPU's caches

# What is read of each message: "bytes" marks sub-messages read as their encoding.
_READ: dict[str, dict[str, str]] = {
    "Flow": {
        "time": "", "verdict": "", "drop_reason": "", "drop_reason_desc": "", "IP": "", "l4": "",
        "node_name": "", "source_names": "", "destination_names": "", "traffic_direction": "",
        "egress_allowed_by": "bytes", "ingress_allowed_by": "bytes", "egress_denied_by": "bytes",
        "ingress_denied_by": "bytes",
        "source": "bytes", "destination": "bytes", "event_type": "bytes", "is_reply": "bytes", "l7": "bytes",
    },
    "Endpoint": {"identity": "", "namespace": "", "pod_name": "", "workloads": ""},
    "Workload": {"name": ""},
    "IP": {"source": "", "destination": ""},
    "TCP": {"source_port": "", "destination_port": ""},
    "UDP": {"source_port": "", "destination_port": ""},
    "SCTP": {"source_port": "", "destination_port": ""},
    "Layer7": {"type": "", "latency_ns": "", "dns": "", "http": "", "kafka": ""},
    "DNS": {"query": "", "rcode": "", "qtypes": ""},
    "HTTP": {"code": ""},
    "Kafka": {},
    "Policy": {"name": "", "namespace": ""},
}


_CLASSES = trimmed_classes(_READ, "kcockpit.aggregates", "flow.Layer7", "flow.Endpoint", "flow.Policy",
                           "flow.CiliumEventType", "google.protobuf.BoolValue")
_parse_response = _CLASSES["kcockpit.aggregates.Response"].FromString
_parse_batch = _CLASSES["kcockpit.aggregates.Batch"].FromString
parse_layer7 = _CLASSES["flow.Layer7"].FromString
_parse_endpoint = _CLASSES["flow.Endpoint"].FromString
_parse_policy = _CLASSES["flow.Policy"].FromString
_parse_event_type = _CLASSES["flow.CiliumEventType"].FromString
_parse_bool = _CLASSES["google.protobuf.BoolValue"].FromString
ENCODED_TRUE = _CLASSES["google.protobuf.BoolValue"](value=True).SerializeToString()


def flows_of(raws: list) -> Iterable:
    """The flow view of each serialized GetFlowsResponse in `raws` (None for a response
    without a flow), in order."""
    try:
        batch = _parse_batch(b"".join(raws))
    except DecodeError:  # one at a time: those before the bad one count, and it raises
        return map(_flow_of, raws)
    flows = batch.flow
    # A response holds one member of its oneof, written once: as many flows as responses
    # and nothing else means one flow each, in order. Otherwise (lost events, node status),
    # one response at a time.
    if len(flows) == len(raws) and not batch.node_status and not batch.lost_events:
        return flows
    return map(_flow_of, raws)


def _flow_of(raw):
    response = _parse_response(raw)
    return response.flow if response.WhichOneof("response_types") == "flow" else None


def batches(raws: Iterable) -> Iterator[list]:
    """`raws` in lists of BATCH."""
    if isinstance(raws, list):
        for start in range(0, len(raws), BATCH):
            yield raws[start:start + BATCH]
        return
    batch = []
    for raw in raws:
        batch.append(raw)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


# --- what encodings mean, remembered: a stream repeats a few of each --------------------------

EVENT_TYPES: dict[bytes, int] = {}
NAMED: dict[bytes, Endpoint] = {}  # endpoints named by their own fields
_NAMED_PER_FLOW: dict[bytes, tuple] = {}  # the others' fields; the flow's DNS name and IP complete them
_POLICY_NAMES: dict[bytes, str] = {}
_LIMIT = 50_000  # entries per cache (endpoint encodings are ~0.5 KB: at most ~25 MB)


def event_type_of(encoded: bytes) -> int:
    """The type of an encoded CiliumEventType."""
    found = _parse_event_type(encoded).type
    _remember(EVENT_TYPES, encoded, found)
    return found


def bool_of(encoded: bytes) -> bool:
    """An encoded BoolValue (b"" is unset or false, ENCODED_TRUE the usual true)."""
    return encoded == ENCODED_TRUE or (bool(encoded) and _parse_bool(encoded).value)


def endpoint_of(encoded: bytes, flow, side: str) -> Endpoint:
    """The named endpoint of one side ("source" or "destination") of `flow`, from the
    encoding of its Endpoint message."""
    found = NAMED.get(encoded)
    if found is not None:
        return found
    fields = _NAMED_PER_FLOW.get(encoded)
    if fields is None:
        endpoint = _parse_endpoint(encoded)
        workloads = endpoint.workloads
        fields = (endpoint.namespace, workloads[0].name if workloads else "", endpoint.pod_name, endpoint.identity)
        found = own_name(*fields)
        if found is not None:
            _remember(NAMED, encoded, found)
            return found
        _remember(_NAMED_PER_FLOW, encoded, fields)
    names = getattr(flow, side + "_names")
    return name_endpoint(*fields, names[0] if names else "", getattr(flow.IP, side))


def _remember(cache: dict, key: bytes, value) -> None:
    if len(cache) >= _LIMIT:
        cache.clear()
    cache[key] = value


def _policy_name(encoded: bytes) -> str:
    """`namespace/name` of an encoded Policy, or `name` when clusterwide."""
    name = _POLICY_NAMES.get(encoded)
    if name is None:
        policy = _parse_policy(encoded)
        name = f"{policy.namespace}/{policy.name}" if policy.namespace else policy.name
        _remember(_POLICY_NAMES, encoded, name)
    return name


def deciding_policy(flow, direction: int) -> str:
    """Hubble's deciding policy on the flow's own direction (its traffic_direction): the
    first `*_denied_by` when there is one (drops, audit verdicts), else the first
    `*_allowed_by`; "" when none."""
    if direction == 1:
        denied, allowed = flow.ingress_denied_by, flow.ingress_allowed_by
    elif direction == 2:
        denied, allowed = flow.egress_denied_by, flow.egress_allowed_by
    else:
        return ""
    if denied:
        return _policy_name(denied[0])
    if allowed:
        return _policy_name(allowed[0])
    return ""
