#!/usr/bin/env python3
"""Runs the dump test with BUSMAP_JSON_OUT set and checks the JSON it wrote parses."""
import json
import os
import subprocess
import sys
import tempfile

with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "dump.json")
    env = dict(os.environ, BUSMAP_JSON_OUT=out)
    subprocess.run([sys.argv[1]], env=env, check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        doc = json.load(f)
    assert doc["space"] == "memory", doc["space"]
    assert isinstance(doc["flat"], list) and doc["flat"], "empty flat view"
    assert all(int(r["start"], 16) <= int(r["end"], 16) for r in doc["flat"])
    assert doc["tree"]["children"], "empty tree"
print("1 passed, 0 failed")
