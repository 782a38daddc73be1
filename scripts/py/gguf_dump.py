#!/usr/bin/env python3
"""Dump what the official `gguf` Python package (PyPI) reads from a GGUF file, as JSON.

The Rust cross-check test (crates/gguf/tests/crosscheck_python.rs) runs this and compares
every key, value and tensor info with our own reader. Output shape:

  {"version": 3, "alignment": 32, "data_offset": N,
   "kv": [{"key": "...", "type": "uint32", "value": ...}, ...],      # file order
   "tensors": [{"name": "...", "dims": [..], "type": 12, "offset": N}]}  # offset relative to data

Arrays are {"elem_type": "string", "len": N, "items": [...]}, nested arrays recursively.
"""
import json
import sys

import gguf
from gguf import GGUFValueType as T


def scalar(field, part_index):
    part = field.parts[part_index]
    return part.tobytes().decode("utf-8") if field.types[-1] == T.STRING else part.tolist()[0]


def value(field):
    kind = field.types[0]
    if kind != T.ARRAY:
        return T(kind).name.lower(), scalar(field, field.data[0])
    if len(field.types) > 2 and field.types[1] == T.ARRAY:
        # gguf-py does not descend into nested arrays; tell the test so it can skip the payload.
        return "array", {"elem_type": "array", "len": len(field.data), "items": None}
    elem = field.types[1] if len(field.types) > 1 else None
    items = []
    for idx in field.data:
        part = field.parts[idx]
        items.append(part.tobytes().decode("utf-8") if elem == T.STRING else part.tolist()[0])
    return "array", {"elem_type": T(elem).name.lower() if elem is not None else None,
                     "len": len(field.data), "items": items}


def main(path):
    r = gguf.GGUFReader(path)
    kv = []
    for key, field in r.fields.items():
        if key.startswith("GGUF."):
            continue  # header pseudo-fields
        kind, val = value(field)
        kv.append({"key": key, "type": kind, "value": val})
    tensors = [{"name": t.name, "dims": [int(d) for d in t.shape.tolist()],
                "type": int(t.tensor_type), "offset": int(t.data_offset) - int(r.data_offset)}
               for t in r.tensors]
    version = int(r.fields["GGUF.version"].parts[-1][0])
    json.dump({"version": version, "alignment": int(r.alignment), "data_offset": int(r.data_offset),
               "kv": kv, "tensors": tensors}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
