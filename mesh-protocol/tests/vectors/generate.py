#!/usr/bin/env python3
"""Writes frames.json: byte-exact test vectors for the Mesh wire protocol, version 1.

Independent of the Rust code on purpose (struct + Python's gzip), so the Rust tests
that read the vectors check the codec against a second implementation.

    python3 mesh-protocol/tests/vectors/generate.py > mesh-protocol/tests/vectors/frames.json
"""
import gzip
import json
import struct
import sys

COMPRESSED, ENCRYPTED, BATCH = 1, 2, 4


def frame(msg_type, payload, flags=0, version=1, declared=None, reserved=0):
    size = len(payload) if declared is None else declared
    return struct.pack(">BBHII", version, flags, msg_type, size, reserved) + payload


def js(value):
    return json.dumps(value, separators=(",", ":")).encode()


def gz(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


vectors = []


def ok(name, data, frames, note):
    vectors.append({"name": name, "note": note, "hex": data.hex(),
                    "frames": [{"type": t, "json": j} for t, j in frames]})


def bad(name, data, code, note, at="frame"):
    vectors.append({"name": name, "note": note, "hex": data.hex(), "error": code, "at": at})


hello = {"name": "summarizer", "capabilities": ["summarize", "english"], "max_concurrency": 4}
ok("hello_plain", frame(0x0001, js(hello)), [(0x0001, hello)], "a plain hello")
hb = {"active_tasks": 2, "load": 0.5}
ok("heartbeat_plain", frame(0x0003, js(hb)), [(0x0003, hb)], "a plain heartbeat")
ok("heartbeat_reserved_word_ignored", frame(0x0003, js(hb), reserved=0xDEADBEEF), [(0x0003, hb)],
   "receivers ignore the reserved u32 at offset 8")
ok("heartbeat_unknown_field_ignored", frame(0x0003, js({"load": 0.25, "future": [1]})),
   [(0x0003, {"load": 0.25, "future": [1]})], "unknown JSON fields are ignored")
welcome = {"agent_id": "0192f5a4-6c1e-7cc3-9b7e-2a1d4c5e6f70",
           "session_id": "0192f5a4-6c1e-7cc3-9b7e-2a1d4c5e6f71", "heartbeat_ms": 10000}
ok("welcome_plain", frame(0x0002, js(welcome)), [(0x0002, welcome)], "a plain welcome")
assign = {"task_id": "0192f5a4-6c1e-7cc3-9b7e-2a1d4c5e6f72", "kind": "summarize",
          "input": {"text": "lorem ipsum dolor sit amet " * 80}, "attempt": 1, "deadline_ms": 30000}
ok("task_assign_compressed", frame(0x0101, gz(js(assign)), flags=COMPRESSED), [(0x0101, assign)],
   "a payload over 1024 bytes, gzip-compressed (COMPRESSED flag)")
rpc = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
ok("jsonrpc_request", frame(0x0301, js(rpc)), [(0x0301, rpc)], "MCP over a binary frame")
ext = {"anything": True}
ok("extension", frame(0x8001, js(ext)), [(0x8001, ext)], "the extension range is application-defined")
accept = {"task_id": "0192f5a4-6c1e-7cc3-9b7e-2a1d4c5e6f72"}
progress = {"task_id": "0192f5a4-6c1e-7cc3-9b7e-2a1d4c5e6f72", "progress": 0.5, "message": "half"}
inner = frame(0x0003, js(hb)) + frame(0x0102, js(accept)) + frame(0x0104, js(progress))
ok("batch_plain", frame(0x0000, inner, flags=BATCH),
   [(0x0003, hb), (0x0102, accept), (0x0104, progress)], "three frames in one batch")
ok("batch_compressed", frame(0x0000, gz(inner * 20), flags=BATCH | COMPRESSED),
   [(0x0003, hb), (0x0102, accept), (0x0104, progress)] * 20, "a compressed batch of 60 frames")
ok("batch_with_compressed_member", frame(0x0000, frame(0x0101, gz(js(assign)), flags=COMPRESSED) + frame(0x0003, js(hb)), flags=BATCH),
   [(0x0101, assign), (0x0003, hb)], "a member of a batch may itself be compressed")

# Shared documents: updates and versions are mesh-crdt bytes (docs/crdt-encoding.md),
# base64 in the JSON. The update is that document's text-update byte vector; the
# version is the version vector it leads to (replica 7 at 2, replica 300 at 1).
doc_id = "0192f5a4-6c1e-7cc3-9b7e-2a1d4c5e6f73"
text_update = bytes.fromhex("4d43524401090207ac020300000000000268690001000101000121010100 0001".replace(" ", ""))
version = bytes.fromhex("4d4352440101020702ac0201")
b64 = lambda b: __import__("base64").b64encode(b).decode()
doc_open = {"doc_id": doc_id, "version": b64(version)}
ok("doc_open", frame(0x0201, js(doc_open)), [(0x0201, doc_open)], "open a document, holding a version")
doc_open_new = {"doc_id": doc_id}
ok("doc_open_empty", frame(0x0201, js(doc_open_new)), [(0x0201, doc_open_new)],
   "open a document, holding nothing (no version field)")
doc_sync = {"doc_id": doc_id, "kind": "text", "update": b64(text_update), "version": b64(version)}
ok("doc_sync", frame(0x0202, js(doc_sync)), [(0x0202, doc_sync)], "what the agent lacks, and the mesh's version")
doc_update = {"doc_id": doc_id, "update": b64(text_update)}
ok("doc_update", frame(0x0203, js(doc_update)), [(0x0203, doc_update)], "edits as a text update")
doc_close = {"doc_id": doc_id}
ok("doc_close", frame(0x0204, js(doc_close)), [(0x0204, doc_close)], "stop receiving a document's edits")
bad("doc_update_not_base64", frame(0x0203, js({"doc_id": doc_id, "update": "not base64!"})), "bad_payload",
    "an update must be base64", at="message")

bad("bad_version", frame(0x0003, js(hb), version=2), "bad_version", "version byte is not 1")
bad("reserved_flags", frame(0x0003, js(hb), flags=0x08), "reserved_flags", "flag bit 3 set")
bad("encrypted", frame(0x0003, js(hb), flags=ENCRYPTED), "encryption_unsupported", "ENCRYPTED is reserved")
bad("size_mismatch_short", frame(0x0003, js(hb), declared=len(js(hb)) + 5), "size_mismatch",
    "declares more payload than the WebSocket message carries")
bad("size_mismatch_long", frame(0x0003, js(hb), declared=len(js(hb)) - 1), "size_mismatch",
    "declares less payload than the WebSocket message carries")
bad("truncated_header", frame(0x0003, b"")[:7], "size_mismatch", "shorter than a header")
bad("too_large_wire", frame(0x0003, b"", declared=16 * 1024 * 1024 + 1), "too_large",
    "declares more than the 16 MiB wire limit (rejected from the header alone)")
bad("too_large_inflated", frame(0x0003, gz(b" " * (10 * 1024 * 1024 + 1)), flags=COMPRESSED), "too_large",
    "inflates past the 10 MiB limit")
bad("bad_gzip_not_gzip", frame(0x0003, b"not gzip at all", flags=COMPRESSED), "bad_gzip", "COMPRESSED but not gzip")
corrupt = bytearray(gz(js(assign)))
corrupt[-8] ^= 0xFF
bad("bad_gzip_crc", frame(0x0101, bytes(corrupt), flags=COMPRESSED), "bad_gzip", "CRC-32 in the trailer is wrong")
bad("bad_gzip_truncated", frame(0x0101, gz(js(assign))[:-12], flags=COMPRESSED), "bad_gzip", "gzip member cut short")
bad("batch_flag_wrong_type", frame(0x0003, inner, flags=BATCH), "bad_batch", "BATCH flag with a type other than 0")
bad("type_zero_without_batch", frame(0x0000, inner), "bad_batch", "type 0 without the BATCH flag")
bad("batch_truncated_member", frame(0x0000, inner[:-3], flags=BATCH), "bad_batch", "the last member is cut short")
bad("nested_batch", frame(0x0000, frame(0x0000, inner, flags=BATCH), flags=BATCH), "nested_batch", "a batch inside a batch")
bad("unknown_type", frame(0x0200, js({})), "unknown_type", "0x0200 is not defined; the connection stays open", at="message")
bad("payload_not_json", frame(0x0001, b"{name: nope"), "bad_payload", "not JSON", at="message")
bad("payload_wrong_shape", frame(0x0001, js({"name": 5, "capabilities": []})), "bad_payload", "name must be a string", at="message")
bad("payload_not_object", frame(0x0003, js([1, 2])), "bad_payload", "a payload is a JSON object", at="message")
bad("progress_out_of_range", frame(0x0104, js({"task_id": accept["task_id"], "progress": 1.5})), "bad_payload",
    "progress must be within 0..1", at="message")
bad("bad_uuid", frame(0x0102, js({"task_id": "42"})), "bad_payload", "task_id must be a UUID", at="message")

json.dump({"protocol_version": 1,
           "about": "Mesh wire protocol test vectors; see docs/protocol.md. Each vector is one WebSocket binary message (hex). "
                    "'frames' lists what it decodes to (type and JSON payload after decompression); "
                    "'error' is the stable code a receiver reports, 'at' says whether framing ('frame') "
                    "or message decoding ('message') rejects it.",
           "vectors": vectors}, sys.stdout, indent=1)
sys.stdout.write("\n")
