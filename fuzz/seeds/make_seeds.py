#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/corpus/<target>/.

Seeds are small valid inputs (and a few near misses) so the fuzzers start
from the interesting part of each input space. Run from anywhere:
`python3 fuzz/seeds/make_seeds.py`. The output is committed.
"""
import json, os, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "corpus")


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, payload):
    if isinstance(payload, int):
        return varint(num << 3) + varint(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def timestamp(seconds, nanos=0):
    return field(1, seconds) + (field(2, nanos) if nanos else b"")


def event(org="org-1", user="alice@example.com", kind="login", metadata=None, ident="", created=None):
    md = json.dumps(metadata if metadata is not None else {"ip": "10.0.0.1", "note": "call +1 555 0100"})
    out = field(1, org) + field(2, user) + field(3, "dev-1") + field(4, "sess-1") + field(5, kind)
    out += field(6, "sdk") + field(7, md)
    if created is not None:
        out += field(8, timestamp(*created))
    if ident:
        out += field(9, ident)
    return out


SAMPLE = [
    {"orgId": "org-1", "userId": "u-1", "eventType": "login", "createdAt": "2026-01-01T00:00:00Z",
     "metadata": {"email": "alice@example.com", "card": "4111 1111 1111 1111", "nested": {"iban": "DE89370400440532013000"}}},
    {"orgId": "org-2", "eventType": "signup", "metadata": {"headers": {"authorization": "Bearer abc.def.ghi"},
     "phone": "+44 20 7946 0958", "list": [1, 2.5e10, "bob@example.org", None, True]}},
    {"orgId": "o", "eventType": "x", "metadata": {"dup": 1, "dup": 2, "u": "\u00e9\u4e2d\U0001F600", "esc": "a\"b\\c\n"}},
    {"eventType": "span", "metadata": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7"}},
]


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    # ingest_grpc: batch and single requests.
    write("ingest_grpc", "batch", field(1, event()) + field(1, event(kind="logout", ident="id-1", created=(1767225600, 5))))
    write("ingest_grpc", "single", field(1, event(metadata={"deep": [[[[{"a": "b"}]]]]})))
    write("ingest_grpc", "bad_nanos", field(1, event(created=(1, 2_000_000_000))))
    write("ingest_grpc", "not_object", field(1, event(metadata=[1, 2])))
    # ingest_http: bodies of POST /v1/events.
    write("ingest_http", "single", json.dumps({"event": "login", "org_id": "o", "payload": {"email": "a@b.co"}}))
    write("ingest_http", "array", json.dumps([{"event": "a", "id": "x-1"}, {"event": "b", "payload": None}]))
    write("ingest_http", "bad", '[{"event": ""}]')
    # redact_rules and redact_findings: JSON lines.
    lines = "\n".join(json.dumps(e) for e in SAMPLE)
    write("redact_rules", "sample", lines)
    write("redact_lines", "sample", lines)
    write("redact_lines", "shapes", "\n".join([
        '{"org_id":"o","created_at":"2026-01-02T03:04:05+02:00","metadata":{"n":1.50e3,"e":"a\\u0040b.co"}}',
        '{"userId":"jane@example.com","metadata":{"jane@example.com":"x","jane@example.com":"y"}}',
        '{"extra":{"card":4111111111111111},"metadata":{"list":[null,true,"+1 415 555 2671"]}}',
    ]))
    with open(os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "corpus", "pii.jsonl"), "rb") as f:
        corpus = f.read().splitlines()
    for i in range(0, min(len(corpus), 40), 8):
        write("redact_rules", f"pii_{i}", b"\n".join(corpus[i:i + 8]))
        write("redact_lines", f"pii_{i}", b"\n".join(corpus[i:i + 8]))
    # redact_findings takes arbitrary-crate input; raw JSON still seeds it.
    write("redact_findings", "sample", lines)
    # log_record: a framed event entry and a report entry.
    entry = bytes([1]) + struct.pack("<Q", 7)
    def s(text):
        b = text.encode()
        return varint(len(b)) + b
    entry += s("id-1") + struct.pack("<qI", 1767225600, 0)
    for text in ["org-1", "u-1", "d-1", "s-1", "login", "sdk"]:
        entry += s(text)
    entry += s('{"email":"a@b.co"}')
    write("log_record", "event_payload", entry)
    header = struct.pack("<IIQB", 0x31544C57, len(entry), 1, 1)
    crc = crc32c(header[4:17] + entry)
    write("log_record", "framed", header + struct.pack("<I", crc) + entry)
    # loki_answer: status (2 bytes LE) then a body.
    write("loki_answer", "ok", struct.pack("<H", 204))
    write("loki_answer", "refused", struct.pack("<H", 400) + b'entry for stream \'{job="wasmtel"}\' has timestamp too old')
    write("loki_answer", "labels", struct.pack("<H", 429) + b'{job="wasmtel", org_id="o\\"1"}')
    write("loki_answer", "event", struct.pack("<H", 500) + b"org\x00login\x00sdk")
    # receiver_request.
    base = field(1, "sys-1") + field(2, "v2.0.0") + field(3, field(1, "inst-1") + field(2, "a.example.com") + field(3, timestamp(1767225600)))
    write("receiver_request", "base", base)
    count = field(3, "inst-1") + field(4, 1) + field(5, "org-1") + field(6, "users") + field(7, "users") + field(8, timestamp(1767225600)) + field(9, 42)
    write("receiver_request", "counts", field(1, "sys-1") + field(2, "r-1") + field(3, count) + field(3, count))
    # config: the quickstart config and a few sections.
    root = os.path.dirname(os.path.dirname(HERE))
    with open(os.path.join(root, "examples", "quickstart.toml")) as f:
        write("config", "quickstart", f.read())
    write("config", "loki", '[[sinks]]\nkind = "loki"\nname = "l"\nurl = "http://127.0.0.1:3100"\nbatch_max_events = 0\n')
    write("config", "kafka", '[[sinks]]\nkind = "kafka"\nname = "k"\nbrokers = "127.0.0.1:9092"\ntopic = "t"\n[sinks.properties]\nacks = "1"\n')
    write("config", "receiver", 'listen = "127.0.0.1:0"\nreport_max_age_hours = 18446744073709551615\n')


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


if __name__ == "__main__":
    main()
