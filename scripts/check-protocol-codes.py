#!/usr/bin/env python3
"""Checks that every error code a Mesh server can send an agent is documented in
docs/protocol.md: the transport's (`mesh_protocol::Error::code`) and the hub's and
engine's (`ErrorMessage::new("…")`, `tell(agent, "…")`), and the shared documents'
(`refuse(doc, "…")`, `DocError::wire_code`).

    scripts/check-protocol-codes.py
"""

import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def read(*path):
    return open(os.path.join(ROOT, *path)).read()


def main():
    codes = set()
    error = read("mesh-protocol", "src", "error.rs")
    body = error[error.index("pub fn code(&self)"):]
    body = body[: body.index("\n    }\n")]
    codes |= set(re.findall(r'=>\s*(?:\{\s*)?"([a-z_]+)"', body))
    for root, _, files in os.walk(os.path.join(ROOT, "mesh-core", "src")):
        for f in files:
            if f.endswith(".rs"):
                text = open(os.path.join(root, f)).read()
                codes |= set(re.findall(r'ErrorMessage::new\(\s*"([a-z_]+)"', text))
                codes |= set(re.findall(r'\.tell\(\s*\w+,\s*"([a-z_]+)"', text))
                codes |= set(re.findall(r'\.refuse\(\s*\w+,\s*"([a-z_]+)"', text))
                if "pub fn wire_code(&self)" in text:
                    body = text[text.index("pub fn wire_code(&self)"):]
                    body = body[: body.index("\n    }\n")]
                    codes |= set(re.findall(r'=>\s*"([a-z_]+)"', body))
    doc = read("docs", "protocol.md")
    missing = sorted(c for c in codes if f"`{c}`" not in doc)
    for code in missing:
        print(f"docs/protocol.md does not document the error code `{code}`", file=sys.stderr)
    print(f"{len(codes)} error codes, {len(missing)} undocumented")
    return 1 if missing or len(codes) < 15 else 0


if __name__ == "__main__":
    sys.exit(main())
