"""Annotation cost: end-to-end ``Annotator.annotate_many`` vs the sentence encoder alone, on CPU.

On MELD test conversations (default: all 280, 2610 utterances), in one process, after a warm-up pass (model,
KB, ATOMIC index and concept embeddings loaded; reported separately):

* encoder only — the input pipeline's ``encode`` on the same chunks of conversations the annotator encodes (the
  packaged MiniLM on each text; a fine-tuned encoder on "speaker: text" + its past turns, as the annotator does);
* annotate — ``annotate_many`` end to end (encode, graphs, model + attention, concept evidence, ATOMIC events,
  result objects), with the time of each step measured inside the same pass;
* annotate, no events — the same without ATOMIC retrieval;
* annotate, occlusion on batched copies — the occlusion evidence on batched copies of the graph, the path before
  the model's two-stage ``occluded_logits`` (KET), for the before/after ratio in one run.

Overhead = (annotate − encoder only) / encoder only, on wall and CPU time (the machine is shared; CPU time is the
steadier of the two). Long conversations: one synthetic 1,000- and one 10,000-utterance conversation (MELD test
utterances in a cycle, two alternating speakers), each in a fresh child process, reporting time and the peak
resident memory added by the annotation (``ru_maxrss`` after minus before).

Cold start (``--cold-start N``, the README command): ``kgemo annotate examples/conversation.json`` as a fresh
process, from process start to the printed table, best of N (wall and CPU of the child), with warm caches; beside
it, in the same run, the imports it cannot avoid (``import torch``; ``import torch_geometric`` as kgemo imports it)
and what the sentence-transformers path used to add (``import sentence_transformers``).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="default")
    parser.add_argument("--conversations", type=int, default=None, help="first N MELD test conversations")
    parser.add_argument("--batch-size", type=int, default=16, help="conversations per chunk")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the fastest of each mode is kept")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: kgemo's choice)")
    parser.add_argument("--long", type=int, nargs="*", default=[1000, 10000],
                        help="lengths of the synthetic long conversations (none: skip)")
    parser.add_argument("--cold-start", type=int, default=3, help="fresh-process runs of the README command (0: skip)")
    parser.add_argument("--cold-only", action="store_true", help="only the cold-start section")


class _CopiesOnly:
    """A model without ``occluded_logits``: occlusion then runs ``forward`` on batched copies of the graph."""

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        if name == "occluded_logits":
            raise AttributeError(name)
        return getattr(self._model, name)

    def __call__(self, *args, **kwargs):
        return self._model(*args, **kwargs)


def _setup_threads(threads):
    import torch

    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def _timer():
    return time.perf_counter(), time.process_time()


def _since(t):
    return time.perf_counter() - t[0], time.process_time() - t[1]


class StepTimes:
    """Wraps the annotator's steps to add up their wall time within a pass. A step called inside another (the
    occlusion evidence runs the feature transform and the model again; the concept selection encodes concept names)
    counts as part of the outer one, so no second is counted twice."""

    def __init__(self, ann):
        self.totals: dict[str, float] = {}
        self._depth = 0
        self._wrap(ann.pipeline.encoder, "encode", "encoder")
        if hasattr(ann.pipeline.encoder, "encode_conversations"):  # what the pipeline calls (a fine-tuned encoder
            self._wrap(ann.pipeline.encoder, "encode_conversations", "encoder")  # reads speaker + past turns)
        self._wrap(ann.pipeline, "graphs", "graph build")
        self._wrap(ann.model, "forward_explain", "model (forward + attention)")
        self._wrap(ann, "_concepts", "concept evidence")
        self._wrap(ann, "_by_effect", "concept evidence: occlusion (perturbed forward passes)")
        self._wrap(ann, "_events", "ATOMIC events")
        self._wrap(ann, "_labels", "labels + probabilities")
        if ann.transform is not None:
            self._wrap(ann, "transform", "concept features", call=True)

    def _wrap(self, obj, name, label, call=False):
        fn = getattr(obj, name)
        totals = self.totals

        def timed(*a, **k):
            if self._depth:
                return fn(*a, **k)
            self._depth += 1
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self._depth -= 1
                totals[label] = totals.get(label, 0.0) + time.perf_counter() - t

        setattr(obj, name, timed)

    def reset(self):
        self.totals.clear()


def _long_conversation(n: int):
    """n real utterances (MELD train, dev, test in order, cycled if needed), two alternating speakers."""
    from kgemo.data import load_dataset

    texts = [t for split in ("train", "dev", "test") for c in load_dataset("meld", split) for t in c.texts]
    return [("A" if i % 2 else "B", texts[i % len(texts)]) for i in range(n)]


def child(n: int, model: str, threads: int | None) -> dict:
    """Annotate one n-utterance conversation in this (fresh) process; time and peak-memory increment."""
    _setup_threads(threads)
    import warnings

    from kgemo.annotate import Annotator

    conv = _long_conversation(n)
    ann = Annotator.from_pretrained(model, device="cpu")
    ann.annotate(conv[:50])  # load everything before measuring
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = _timer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ann.annotate(conv)
    wall, cpu = _since(t)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert len(res) == n
    return {"utterances": n, "distinct_texts": len({t for _, t in conv}), "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "utt_per_s": round(n / wall, 1),
            "rss_before_mb": round(before / 1024, 1), "rss_peak_mb": round(after / 1024, 1),
            "peak_increase_mb": round((after - before) / 1024, 1)}


def _child_time(cmd: list[str], repeat: int) -> tuple[float, float]:
    """Best-of-``repeat`` wall and CPU seconds of a fresh process running ``cmd`` (output discarded)."""
    best = (float("inf"), float("inf"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if out.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, (wall, cpu))
    return best


def cold_start(repeat: int) -> tuple[list[dict], list[str]]:
    """The README annotate command from a fresh process, and the imports it cannot avoid, in one run."""
    kgemo = str(Path(sys.executable).with_name("kgemo"))
    py = sys.executable
    cases = [("kgemo annotate examples/conversation.json (cold start, warm caches)",
              [kgemo, "annotate", "examples/conversation.json"]),
             ("python -c 'import torch'", [py, "-c", "import torch"]),
             ("python -c 'import torch_geometric' (as kgemo imports it)", [py, "-c", "import kgemo._pyg"]),
             ("python -c 'import sentence_transformers' (the former encoder path)",
              [py, "-c", "import sentence_transformers"])]
    _child_time(cases[0][1], 1)  # warm the caches (concept table, ATOMIC index, .pyc files) outside the timing
    rows, times = [], {}
    for label, cmd in cases:
        wall, cpu = _child_time(cmd, repeat)
        times[label] = wall
        rows.append({"mode": label, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3)})
    total = rows[0]["wall_s"]
    floor = rows[2]["wall_s"]
    notes = [f"Cold start: {total:.2f} s from process start to the printed table (best of {repeat}; goal ≤ 2.5 s); "
             f"importing torch and PyG alone takes {floor:.2f} s of it ({floor / total:.0%}), so kgemo's own part "
             f"(CLI, model and KB load, encoding, graph, prediction, table) is {total - floor:.2f} s. PyG 2.8 imports "
             "torch._dynamo (and with it sympy, pandas, networkx) for every user; kgemo keeps it from also importing "
             "transformers, and runs the packaged MiniLM without sentence-transformers, whose import alone took "
             f"{rows[3]['wall_s']:.2f} s here."]
    return rows, notes


def run(args) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.cold_only:
        rows, notes = cold_start(args.cold_start or 3)
        notes.append(f"Load average: {os.getloadavg()[0]:.1f} (shared 2-core machine).")
        return {"description": (__doc__ or "").strip().splitlines()[0], "rows": rows, "notes": notes}
    _setup_threads(args.threads)
    import warnings

    import torch

    from kgemo.annotate import Annotator
    from kgemo.data import load_dataset

    convs = load_dataset("meld", "test")[: args.conversations]
    n = sum(len(c) for c in convs)
    chunks = [convs[i:i + args.batch_size] for i in range(0, len(convs), args.batch_size)]

    t = _timer()
    ann = Annotator.from_pretrained(args.model, device="cpu", batch_size=args.batch_size)
    load_s = _since(t)[0]
    warnings.simplefilter("ignore")  # MELD has a few over-long utterances; the warnings are not the point here
    t = _timer()
    list(ann.annotate_many(convs))  # warm-up: concept embeddings, ATOMIC index, first-call costs
    warm_s = _since(t)[0]
    steps = StepTimes(ann)
    events, evidence = ann.events, ann.evidence

    best: dict[str, tuple[float, float]] = {}
    breakdown: dict[str, float] = {}
    copies_breakdown: dict[str, float] = {}

    def keep(mode, wall, cpu):
        if mode not in best or wall < best[mode][0]:
            best[mode] = (wall, cpu)
            return True
        return False

    load_before = round(os.getloadavg()[0], 1)
    for _ in range(args.repeat):
        t = _timer()
        for chunk in chunks:  # the encoder's inputs as the annotator makes them (a fine-tuned one reads past turns)
            ann.pipeline.encode(chunk)
        keep("encoder only", *_since(t))

        ann.events = events
        steps.reset()
        t = _timer()
        list(ann.annotate_many(convs))
        if keep("annotate_many", *_since(t)):
            breakdown = dict(steps.totals)

        ann.events = None
        t = _timer()
        list(ann.annotate_many(convs))
        keep("annotate_many, no ATOMIC", *_since(t))
        ann.events = events

        if evidence == "occlusion" and hasattr(ann.model, "occluded_logits"):
            # The same pass with occlusion on batched copies of the graph (the path before the two-stage one).
            model, ann.model = ann.model, _CopiesOnly(ann.model)
            steps.reset()
            t = _timer()
            list(ann.annotate_many(convs))
            if keep("annotate_many, occlusion on batched copies", *_since(t)):
                copies_breakdown = dict(steps.totals)
            ann.model = model

        if evidence == "occlusion":  # the cheaper ranking, one forward pass (--evidence attention)
            ann.evidence = "attention"
            t = _timer()
            list(ann.annotate_many(convs))
            keep("annotate_many, attention evidence", *_since(t))
            ann.evidence = evidence
    ann.events = events
    load_after = round(os.getloadavg()[0], 1)

    enc_wall, enc_cpu = best["encoder only"]
    rows = []
    for mode, (wall, cpu) in best.items():
        rows.append({"mode": mode, "utterances": n, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                     "utt_per_s": round(n / wall, 1),
                     "overhead_vs_encoder_wall": round((wall - enc_wall) / enc_wall, 3),
                     "overhead_vs_encoder_cpu": round((cpu - enc_cpu) / enc_cpu, 3)})
    total = best["annotate_many"][0]
    enc_in_pass = breakdown.get("encoder", float("nan"))
    for step, secs in sorted(breakdown.items(), key=lambda kv: -kv[1]):
        rows.append({"mode": f"  step: {step}", "wall_s": round(secs, 3), "share_of_annotate": round(secs / total, 3),
                     "vs_encoder_in_pass": round(secs / enc_in_pass, 3)})
    # The encoder's own time varies from pass to pass on a shared machine; kgemo's steps measured inside the same
    # pass as the encoder give the steadier overhead.
    steps_s = sum(v for k, v in breakdown.items() if k != "encoder")
    in_pass = steps_s / enc_in_pass
    occlusion_s = sum(v for k, v in breakdown.items() if "occlusion" in k)
    copies_s = sum(v for k, v in copies_breakdown.items() if "occlusion" in k)
    copies_enc = copies_breakdown.get("encoder", float("nan"))

    long_rows = []
    for length in args.long or []:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(length), "--model", args.model]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False,
                             env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if out.returncode:
            raise RuntimeError(f"long-conversation child failed:\n{out.stderr[-2000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        long_rows.append(r)
        rows.append({"mode": f"one {length}-utterance conversation ({r['distinct_texts']} distinct texts)",
                     "utterances": length, "wall_s": r["wall_s"],
                     "cpu_s": r["cpu_s"], "utt_per_s": r["utt_per_s"], "peak_rss_mb": r["rss_peak_mb"],
                     "peak_increase_mb": r["peak_increase_mb"]})

    over_wall = (best["annotate_many"][0] - enc_wall) / enc_wall
    over_cpu = (best["annotate_many"][1] - enc_cpu) / enc_cpu
    notes = [
        (f"{len(convs)} MELD test conversations, {n} utterances; chunks of {args.batch_size} conversations; "
         f"torch threads {torch.get_num_threads()}; fastest of {args.repeat} passes per mode."),
        (f"Overhead of kgemo (knowledge + graph + model + evidence + ATOMIC) over the encoder: {in_pass:.1%} — the "
         f"time of every step but the encoder ({steps_s:.2f} s) over the encoder's time ({enc_in_pass:.2f} s) within "
         f"the same annotate_many pass (goal ≤ 25%, never above 50%). Between separate passes (end-to-end vs "
         f"encoder-only, which also carries the encoder's pass-to-pass variance on this shared machine): "
         f"{over_wall:.1%} wall, {over_cpu:.1%} CPU."
         + (f" Of the steps, the occlusion evidence (a perturbed forward per concept) takes "
            f"{occlusion_s:.2f} s, {occlusion_s / enc_in_pass:.1%} of the encoder's time; without it the rest is "
            f"{(steps_s - occlusion_s) / enc_in_pass:.1%}. `--evidence attention` skips it "
            f"(mode 'annotate_many, attention evidence')." if occlusion_s else "")),
        *([f"Occlusion in two stages (the model's occluded_logits: knowledge once, then only what each removal "
           f"touches) vs on batched copies of the graph, in the same run: {occlusion_s:.2f} s vs {copies_s:.2f} s "
           f"({copies_s / occlusion_s:.2f}x faster); against the encoder in the same pass: "
           f"{occlusion_s / enc_in_pass:.2f}x vs {copies_s / copies_enc:.2f}x."] if copies_s and occlusion_s else []),
        (f"Model + KB + ATOMIC load: {load_s:.1f} s; first pass (concept embeddings encoded or loaded, ATOMIC index "
         f"built or loaded): {warm_s:.1f} s."),
        f"Load average during the timed passes: {load_before} → {load_after} (shared 2-core machine).",
    ]
    if len(long_rows) >= 2:
        a, b = long_rows[0], long_rows[-1]
        ratio = b["utterances"] / a["utterances"]
        notes.append(f"Long conversations: {b['utterances']} utterances take {b['wall_s'] / a['wall_s']:.1f}× the "
                     f"time of {a['utterances']} ({ratio:.0f}× the utterances); peak memory rises by "
                     f"{b['peak_increase_mb']} MB vs {a['peak_increase_mb']} MB over the process's peak after loading "
                     f"(context edges are windowed, so the graph is linear in the length; most of the 10k peak is "
                     f"KET's per-edge [edges × 384] gathers for the concept cosine).")
    if args.cold_start:
        cold_rows, cold_notes = cold_start(args.cold_start)
        rows += cold_rows
        notes += cold_notes
    return {"description": (__doc__ or "").strip().splitlines()[0], "rows": rows, "notes": notes}


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--child", type=int, required=True)
    p.add_argument("--model", default="default")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    sys.path.insert(0, str(ROOT))
    print(json.dumps(child(a.child, a.model, a.threads)))
