"""Build measurements.npz and index.json (this folder) from a directory of GPU-INPUT.npz files.

Run once, by hand: ``python fmtlab/data/tc_validation/make_bundle.py ../shared/tc-validation``.
Each input file holds uint32 arrays a, b (float32 bits, 5000 x K), c, d_fp32 and/or d_fp16.
Many arrays are the same across GPUs (the same inputs were run on several of them), so each
distinct array is stored once, under the name of its first file in sorted order; index.json
maps every configuration's arrays to those names and records the SHA-256 of each array's
bytes as read from the input file, which the tests check the bundle against.  No value is
changed: the arrays are stored bit for bit, deflate-compressed (numpy.savez_compressed).
"""
import hashlib
import json
import pathlib
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def build(source_dir):
    source_dir = pathlib.Path(source_dir)
    stored, by_digest, configurations = {}, {}, {}
    for path in sorted(source_dir.glob("*-*.npz")):
        entry = {}
        with np.load(path) as data:
            for field in data.files:
                array = np.ascontiguousarray(data[field])
                if array.dtype != np.uint32:
                    raise SystemExit(f"{path}: {field} has dtype {array.dtype}, expected uint32")
                digest = hashlib.sha256(array.tobytes()).hexdigest()
                name = by_digest.setdefault(digest, f"{path.stem}.{field}")
                stored.setdefault(name, array)
                entry[field] = {"array": name, "shape": list(array.shape), "sha256": digest}
        configurations[path.stem] = entry
    np.savez_compressed(HERE / "measurements.npz", **stored)
    index = {"source": "model_validation data of github.com/north-numerical-computing/MATLAB-tensor-core "
                       "(BSD-2-Clause, see LICENCE), converted from its text files to uint32 arrays",
             "configurations": configurations}
    (HERE / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    print(f"{len(configurations)} configurations, {len(stored)} distinct arrays")


if __name__ == "__main__":
    build(sys.argv[1] if len(sys.argv) > 1 else "../shared/tc-validation")
