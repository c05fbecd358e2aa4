"""A Mesh agent in Python: the reference for agent authors in any language, in the
standard library plus `websockets`. It speaks docs/protocol.md — 12-byte frame headers,
gzip, batches — registers with `hello`, heartbeats, and serves five task kinds:

    py.echo      answers {"by": "python", "input": ...}
    py.slow      works until the mesh cancels it (task_cancel)
    py.delegate  delegates py.echo as a sub-task (task_submit) and answers its output
    py.note      appends input.line to the shared text document input.doc
    py.report    answers what it has seen, then the agent says goodbye and exits

Its document client is the minimal one for a language without a CRDT library: it
follows a document over the hub (doc_open, then every doc_update as it happens) and
edits it in plain terms through REST (/api/v1/shared-docs/{id}/edits). An agent that
holds a replica (mesh-crdt in Rust) sends its edits as doc_update instead.

    python agent.py ws://127.0.0.1:7070/ws API_KEY
"""

import asyncio
import gzip
import json
import struct
import sys
import urllib.request
import uuid

import websockets

VERSION, COMPRESSED, BATCH = 1, 0x01, 0x04
HEADER = struct.Struct(">BBHII")  # version, flags, type, payload size, reserved
TYPES = {
    0x0001: "hello", 0x0002: "welcome", 0x0003: "heartbeat", 0x0004: "error",
    0x0005: "goodbye", 0x0101: "task_assign", 0x0102: "task_accept",
    0x0103: "task_reject", 0x0104: "task_progress", 0x0105: "task_complete",
    0x0106: "task_fail", 0x0107: "task_cancel", 0x0108: "task_submit",
    0x0109: "task_submitted", 0x010A: "task_update",
    0x0201: "doc_open", 0x0202: "doc_sync", 0x0203: "doc_update", 0x0204: "doc_close",
}
CODES = {name: code for code, name in TYPES.items()}
MAX_PAYLOAD = 10 << 20  # the decompressed limit of section 2


def encode(name, body):
    """One frame, uncompressed (a sender may always send plain payloads)."""
    payload = json.dumps(body).encode()
    return HEADER.pack(VERSION, 0, CODES[name], len(payload), 0) + payload


def decode(data, seen, nested=False):
    """The messages in one WebSocket message: a frame, or a batch of frames."""
    messages, offset = [], 0
    while offset < len(data):
        version, flags, kind, size, _ = HEADER.unpack_from(data, offset)
        if version != VERSION or flags & ~(COMPRESSED | BATCH):
            raise ValueError("bad header")
        payload = data[offset + HEADER.size: offset + HEADER.size + size]
        if len(payload) != size:
            raise ValueError("cut short")
        offset += HEADER.size + size
        if flags & COMPRESSED:
            seen["gzipped"] += 1
            payload = gzip.decompress(payload)
            if len(payload) > MAX_PAYLOAD:
                raise ValueError("too large")
        if flags & BATCH:
            if nested or kind != 0:
                raise ValueError("bad batch")
            seen["batches"] += 1
            messages += decode(payload, seen, nested=True)
        elif kind in TYPES:
            messages.append((TYPES[kind], json.loads(payload)))
        if not nested:
            break  # exactly one frame per WebSocket message
    return messages


class Docs:
    """Shared documents through REST, beside the hub connection: read and edit."""

    def __init__(self, ws_url, key):
        self.base = ws_url.replace("ws://", "http://", 1).rsplit("/ws", 1)[0] + "/api/v1"
        self.key = key

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.key}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def append(self, doc, line):
        """Appends a line at the end of the text as the mesh holds it now."""
        end = len(self.call("GET", f"/shared-docs/{doc}")["content"])
        edit = {"op": "splice", "pos": end, "insert": line + "\n"}
        return self.call("POST", f"/shared-docs/{doc}/edits", {"edits": [edit]})["content"]


class Agent:
    def __init__(self, ws, docs):
        self.ws = ws
        self.docs = docs
        self.opened = set()  # documents followed over the hub
        self.seen = {"gzipped": 0, "batches": 0, "completed": 0,
                     "cancelled": [], "delegated": 0, "largest_input": 0,
                     "doc_syncs": 0, "doc_updates": 0}
        self.running = {}  # task id -> asyncio.Task
        self.delegations = {}  # request id -> (parent task id, future of its output)
        self.subtasks = {}  # sub-task id -> future of its output

    async def send(self, name, body):
        await self.ws.send(encode(name, body))

    async def heartbeat(self, every_ms):
        while True:
            await asyncio.sleep(every_ms / 2000)
            await self.send("heartbeat", {"active_tasks": len(self.running)})

    async def work(self, task):
        tid, kind, data = task["task_id"], task["kind"], task["input"]
        await self.send("task_accept", {"task_id": tid})
        size = len(json.dumps(data))
        self.seen["largest_input"] = max(self.seen["largest_input"], size)
        if kind == "py.echo":
            output = {"by": "python", "input": data}
        elif kind == "py.slow":
            await asyncio.sleep(3600)  # until task_cancel cancels this coroutine
            return
        elif kind == "py.delegate":
            request, answer = str(uuid.uuid4()), asyncio.get_running_loop().create_future()
            self.delegations[request] = (tid, answer)
            await self.send("task_submit", {"request_id": request, "kind": "py.echo",
                                            "input": data, "parent": tid})
            output = {"by": "python", "delegated": await answer}
            self.seen["delegated"] += 1
        elif kind == "py.note":
            if data["doc"] not in self.opened:  # follow it: doc_sync, then doc_update
                self.opened.add(data["doc"])
                await self.send("doc_open", {"doc_id": data["doc"]})
            content = await asyncio.to_thread(self.docs.append, data["doc"], data["line"])
            output = {"by": "python", "content": content}
        elif kind == "py.report":
            output = self.seen
        else:
            await self.send("task_fail", {"task_id": tid, "error": f"no {kind}", "retryable": False})
            return
        await self.send("task_progress", {"task_id": tid, "progress": 1.0})
        await self.send("task_complete", {"task_id": tid, "output": output})
        self.seen["completed"] += 1
        if kind == "py.report":
            await self.send("goodbye", {"reason": "reported"})
            await self.ws.close()

    def on(self, name, body):
        if name == "task_assign":
            task = asyncio.create_task(self.work(body))
            self.running[body["task_id"]] = task
            task.add_done_callback(lambda _: self.running.pop(body["task_id"], None))
        elif name == "task_cancel":
            self.seen["cancelled"].append(body["task_id"])
            if body["task_id"] in self.running:
                self.running[body["task_id"]].cancel()
        elif name == "task_submitted":
            _, answer = self.delegations.pop(body["request_id"])
            self.subtasks[body["task_id"]] = answer
        elif name == "task_update" and body["status"] in ("completed", "failed", "cancelled", "timed_out"):
            answer = self.subtasks.pop(body["task_id"], None)
            if answer is not None and not answer.done():
                answer.set_result(body.get("output"))
        elif name in ("doc_sync", "doc_update"):
            self.seen[name + "s"] += 1  # the bytes are mesh-crdt's, for a replica to apply
        elif name == "error":
            print("mesh says:", body, file=sys.stderr)


async def main(url, key):
    headers = {"Authorization": f"Bearer {key}"}
    async with websockets.connect(url, subprotocols=["mesh.v1"], additional_headers=headers,
                                  max_size=16 << 20) as ws:
        agent = Agent(ws, Docs(url, key))
        await agent.send("hello", {"name": "py-agent", "max_concurrency": 8,
                                   "capabilities": ["py.echo", "py.slow", "py.delegate", "py.note",
                                                    "py.report"]})
        beating = None
        try:
            async for data in ws:
                for name, body in decode(data, agent.seen):
                    if name == "welcome":
                        beating = asyncio.create_task(agent.heartbeat(body["heartbeat_ms"]))
                    else:
                        agent.on(name, body)
        except websockets.ConnectionClosed:
            pass
        if beating:
            beating.cancel()
    print(json.dumps(agent.seen))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
