"""Acceptance run of the trainer on SynthReID: source pretraining, then RankNet transfer
on the target from an *oracle* fused ranking (ranked by true identity).

    tfusion synth --preset demo --out S
    tfusion ingest S/source --output SRC ; tfusion ingest S/target --output TGT
    python benchmarks/bench_train_transfer.py --source SRC --target TGT --out OUT \
        [--pretrain-steps 250] [--transfer-steps 250]

Prints same-domain rank-1/mAP of the pretrained model (source query/gallery, with the
chance rank-1 for reference), target rank-1/mAP before and after transfer, the ratio,
and the minutes each stage took. The oracle ranking of a target train image lists the
other train images with the same pid first, then the rest, each group ordered by the
pretrained model's cosine similarity; fused score = cosine + [same pid]. It stands in
for `tfusion fuse` so that the RankNet stage is measured on its own.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from st_model import fused_ranking  # noqa: E402
from synth import baseline  # noqa: E402
from trainer import data, embed, pretrain, ranknet  # noqa: E402
from trainer.config import PretrainConfig, RankNetConfig  # noqa: E402


def write_oracle_ranking(path: str, train: dict, top: int = 50) -> str:
    """fused_ranking-*.tfrecord.gz ranking same-pid images first (see module doc)."""
    f, pid, names = train["features"], train["pid"], train["name"]
    sim = f @ f.T

    def records():
        for a in range(len(names)):
            score = sim[a] + ((pid == pid[a]) & (pid[a] > 0))
            score[a] = -np.inf
            order = np.argsort(-score)[:top]
            yield str(names[a]), [str(names[o]) for o in order], score[order].tolist()
    fused_ranking.write_ranking(path, records())
    return path


def evaluate(model: str, examples: str) -> dict:
    r = embed.evaluate(model, examples)
    return {k: round(float(v), 2) for k, v in r.items()}


def chance_rank1(examples: str) -> float:
    """Expected rank-1 of a random ranking (synth.baseline.chance_rank1)."""
    q = data.read_split(data.split_files(examples, "query"), images=False)
    g = data.read_split(data.split_files(examples, "gallery"), images=False)
    return round(baseline.chance_rank1({"query": q, "gallery": g}), 2)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pretrain-steps", type=int, default=250)
    ap.add_argument("--transfer-steps", type=int, default=250)
    ap.add_argument("--transfer-lr", type=float, default=1e-4)
    args = ap.parse_args(argv)
    res = {}
    src_model, tgt_model = os.path.join(args.out, "pretrained"), os.path.join(args.out, "ranknet")
    t0 = time.time()
    s = pretrain.pretrain(data.split_files(args.source, "train"),
                          PretrainConfig(steps=args.pretrain_steps, verification=True,
                                         epoch_steps=50),
                          export_dir=src_model, run_dir=os.path.join(args.out, "logs"))
    res["pretrain"] = {"steps": s["steps"], "minutes": s["minutes"],
                       "images_per_s": s["images_per_s"]}
    res["source_same_domain"] = evaluate(src_model, args.source)
    res["source_chance_rank1"] = chance_rank1(args.source)
    res["target_before"] = evaluate(src_model, args.target)
    res["target_chance_rank1"] = chance_rank1(args.target)
    train = embed.embed_split(src_model, args.target, "train")
    ranking = write_oracle_ranking(os.path.join(args.out, "oracle_ranking"), train)
    t1 = time.time()
    r = ranknet.transfer(data.split_files(args.target, "train"), ranking, src_model,
                         RankNetConfig(steps=args.transfer_steps, epoch_steps=50,
                                       learning_rate=args.transfer_lr),
                         export_dir=tgt_model, run_dir=os.path.join(args.out, "logs"))
    res["transfer"] = {"steps": r["steps"], "minutes": r["minutes"],
                       "images_per_s": r["images_per_s"], "triplets": r["triplets"],
                       "temperature": round(r["temperature"], 5)}
    res["target_after"] = evaluate(tgt_model, args.target)
    res["target_rank1_ratio_after_before"] = round(
        res["target_after"]["rank1"] / max(res["target_before"]["rank1"], 1e-9), 3)
    res["total_minutes"] = round((time.time() - t0) / 60, 2)
    print(json.dumps(res, indent=2))
    with open(os.path.join(args.out, "acceptance.json"), "w") as f:
        json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
