"""A TensorFlow-only client of a pushed bundle's `fused_scores` signature.

Run as a script, never imported by the project: it imports TensorFlow and NumPy
only, as a deployment without this project's code would.

    python fused_scores_client.py SERVING_DIR INPUTS.npz OUT.npz [QUERY_BLOCK]

INPUTS.npz holds the signature's eight inputs; OUT.npz gets `fused`, `vision`,
`st_factor` [Q, G] (queries scored in blocks). The last stdout line is JSON: the
signatures found and the project modules loaded (none).
"""
import json
import sys

import numpy as np
import tensorflow as tf


def main(argv):
    serving, inputs, out = argv[:3]
    block = int(argv[3]) if len(argv) > 3 else 256
    model = tf.saved_model.load(serving)
    fn = model.signatures["fused_scores"]
    with np.load(inputs) as z:
        feed = {k: z[k] for k in z.files}
    q = feed["query_embedding"].shape[0]
    parts = {}
    for start in range(0, q, block):
        stop = min(q, start + block)
        args = {k: tf.constant(v[start:stop] if k.startswith("query_") else v)
                for k, v in feed.items()}
        for k, v in fn(**args).items():
            parts.setdefault(k, []).append(v.numpy())
    np.savez(out, **{k: np.concatenate(v) for k, v in parts.items()})
    ours = sorted(m for m in sys.modules
                  if m.split(".")[0] in ("st_model", "trainer", "pipeline", "synth"))
    print(json.dumps({"project_modules": ours, "signatures": sorted(model.signatures)}))


if __name__ == "__main__":
    main(sys.argv[1:])
