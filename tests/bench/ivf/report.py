#!/usr/bin/env python3
"""Writes OUT/ivf.md (the section "## 8. Approximate vector search") and OUT/ivf.json from the
raw outputs of tests/bench/ivf/run.sh in OUT."""
import argparse
import json
import os
import platform

UNTUNED_SHARE = 0.4  # lib/store/ivf_index.h IvfProbe::share: an index built without tuning


def load(out, name):
    p = os.path.join(out, name)
    return json.load(open(p)) if os.path.exists(p) else None


def run_at(runs, share):
    for r in runs:
        if abs(r.get("share", -1) - share) < 1e-9:
            return r
    return None


def run_default(runs):
    """What a search without an nprobe probes: the share the build tuned (ivf_probe's `default`
    run); a run without one (an older ivf_probe) falls back to the untuned share."""
    for r in runs:
        if r.get("default"):
            return r
    return run_at(runs, UNTUNED_SHARE)


def first_reaching(runs, recall):
    for r in sorted((r for r in runs if not r.get("default")), key=lambda r: r["share"]):
        if r["recall"] >= recall:
            return r
    return None


def ms(us):
    return f"{us / 1000:.2f}"


def sweep_table(d, title):
    b = d.get("build", {})
    tuned = (f" From its own rows as queries the build estimated recall@10 "
             f"{b['target_recall']:.2f} at {b['tuned_share']:.3f} of the lists."
             if b.get("tuned_share") else "")
    learnt = d.get("learnt")
    if learnt:
        tuned += (f" {learnt['questions']} tuning questions were first checked against the exact "
                  f"scan (`--observe`): the index learnt a default probe of {learnt['share']:.3f} of "
                  f"the lists, which found {learnt['recall']:.3f} of their exact top 10.")
    rows = [f"**{title}**: {b.get('rows', 0):,} vectors, nlist {b.get('nlist')}, index built in "
            f"{b.get('seconds', 0):.1f} s (read {b.get('read_s', 0):.1f}, train {b.get('train_s', 0):.1f} on "
            f"{b.get('trained_on', 0):,} rows, assign {b.get('assign_s', 0):.1f}, write "
            f"{b.get('write_s', 0):.1f}, flip {b.get('flip_s', 0):.2f}; {b.get('threads')} threads); "
            f"exact scan p50 {ms(d['exact_p50_us'])} ms, p99 {ms(d['exact_p99_us'])} ms.{tuned}"
            if b else
            f"**{title}** (same index): exact scan p50 {ms(d['exact_p50_us'])} ms, "
            f"p99 {ms(d['exact_p99_us'])} ms.", "",
            "| share of lists | nprobe | recall@10 | with ties | p50 ms | p99 ms | rows scanned (mean) | p50 vs exact |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    default = run_default(d["approximate"])
    for r in d["approximate"]:
        mark = " (default)" if r is default else ""
        rows.append(f"| {r['share']:.3g}{mark} | {r['nprobe']} | {r['recall']:.3f} | "
                    f"{r.get('recall_ties', r['recall']):.3f} | {ms(r['p50_us'])} | "
                    f"{ms(r['p99_us'])} | {r['rows_scanned_mean']:,.0f} | "
                    f"{d['exact_p50_us'] / max(r['p50_us'], 1):.1f}x faster |")
    return "\n".join(rows) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--elapsed", type=int, default=0)
    ap.add_argument("--quick", default="0")
    ap.add_argument("--command", default="tests/bench/ivf/run.sh OUT")
    a = ap.parse_args()
    out = a.out
    corpus = load(out, "real_corpus.json") or {}
    tune, held = load(out, "real.tune.json"), load(out, "real.heldout.json")
    synth, big = load(out, "synth.json"), load(out, "big.json")
    sizes, big_sizes = load(out, "real.sizes.json") or {}, load(out, "big.sizes.json") or {}
    # The synthetic stores' index is built by their tuning run, which also taught it its default
    # probe; the held-out run's tables show both.
    for d, tune_name in ((synth, "synth.tune.json"), (big, "big.tune.json")):
        t = load(out, tune_name)
        if d is not None and t:
            for key in ("build", "learnt"):
                if key in t:
                    d[key] = t[key]
    faiss = load(out, "faiss.real.json")
    skipped = load(out, "big.skipped.json")
    targets = []

    def recall_target(name, d, size_note):
        r = run_default(d["approximate"]) if d else None
        targets.append({"name": f"recall@10 against exact at the default settings, {name}",
                        "target": ">= 0.95",
                        "measured": (f"{r['recall']:.3f} at share {r['share']:.3g} ({size_note})"
                                     if r else "not run"),
                        "met": bool(r and r["recall"] >= 0.95)})

    recall_target("~100k chunks of real text (held-out questions)", held,
                  f"{tune['build']['rows']:,} chunks" if tune else "")
    recall_target("100k chunks, topic-free synthetic text", synth,
                  f"{synth['build']['rows']:,} chunks" if synth else "")
    recall_target("1M chunks, topic-free synthetic text", big,
                  f"{big['build']['rows']:,} chunks" if big else "")

    md = ["## 8. Approximate vector search", ""]
    md.append(
        "**What.** The approximate index of issue 13 (`lib/store/ivf_index.h`): per tenant, k-means "
        "lists (nlist = 2 x sqrt(rows)) of int8 codes in the same LMDB environment; a search scores "
        "the query against the centroids, scans the int8 codes of the nearest lists, and rescores the "
        "best 4 x k exactly from the float vectors. Measured through `DocumentStore::SearchVectors` "
        "(what the retriever calls) on stores built by `ttft_store` (hash embedder, 384 dimensions, "
        "4 shards), one query at a time, top 10, against the exact scan of the same store in the same "
        "run (`ivf_probe`). recall@10 = |approximate top 10 ∩ exact top 10| / 10, the mean over the "
        "questions; *with ties* also counts a hit whose exact score reaches the exact 10th score "
        "(duplicate chunks -- a licence shipped by many packages -- score alike, and either copy is "
        "right). The default probe (rows marked *(default)*: what a search without an `nprobe` "
        "probes) is learnt from questions: a worker checks a sample of the questions its index "
        "answers against the exact scan in the background, and probes the smallest share of the "
        "lists that found 0.95 (`RAGSTREAM_IVF_RECALL`) of their exact top 10; until it has 20 "
        "such questions, the larger of 0.4 and the build's own estimate (its rows as queries, "
        "which comes out optimistic: rows are not questions). Here one set of questions is "
        "checked first (`ivf_probe --observe`: the tuning questions of the real text, seed 11 of "
        "the synthetic stores) and the default is judged on another (held out: seed 2, seed 12).")
    md.append("")
    md.append(f"**Machine.** {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"load average {open('/proc/loadavg').read().split()[0]} at the end; the cores are "
              "shared with other jobs, so latencies are indicative (recall is not affected).")
    md.append("")
    md.append(f"**Command.** `{a.command}` ({a.elapsed} s){' -- QUICK: small stores, not numbers' if a.quick == '1' else ''}.")
    md.append("")
    if tune:
        md.append(f"Real text: {corpus.get('documents', 0):,} documents, {corpus.get('text_mb', 0)} MB "
                  "from /usr/share/doc (changelogs, READMEs, copyright files; the corpus of part 7); "
                  "questions are runs of 5-9 words from a random line of a random document.")
        md.append("")
        md.append(sweep_table(tune, "Real text, tuning questions (seed 1)"))
        md.append(sweep_table(held, "Real text, held-out questions (seed 2)"))
        if sizes:
            md.append(f"Store: the approximate index takes {sizes['ivf_bytes'] / 1e6:.1f} MB (mdb_stat, "
                      f"the `ivf` database) beside {sizes['vector_bytes'] / 1e6:.1f} MB of float vectors "
                      f"({sizes['ivf_bytes'] / max(sizes['vector_bytes'], 1):.2f}x).")
            md.append("")
    if synth:
        md.append(sweep_table(synth, "Synthetic, topic-free (tests/bench/ttft/corpus.h), 700-character chunks"))
    if big:
        b = big["build"]
        md.append(sweep_table(big, "Synthetic, topic-free, 200-character chunks (the 1M store of part 3)"))
        md.append(f"Build time per million vectors: {b['seconds'] / max(b['rows'], 1) * 1e6:.0f} s "
                  f"on {b['threads']} threads; the index takes {big_sizes.get('ivf_bytes', 0) / 1e6:.0f} MB.")
        md.append("")
    elif skipped:
        md.append(f"The 1M store was not built in this run: {skipped['reason']}.")
        md.append("")
    if faiss:
        md.append("**FAISS on the same vectors** (the real store's, held-out questions; Debian's "
                  "libfaiss-dev 1.7.3, built without AVX2; one query at a time on one thread; "
                  f"`faiss_ann`): exact IndexFlatIP p50 {ms(faiss['exact_p50_us'])} ms.")
        md.append("")
        md.append("| nprobe | ragstream IVF recall / p50 ms | FAISS IVFFlat recall / p50 ms | FAISS IVF SQ8 recall / p50 ms |")
        md.append("| ---: | ---: | ---: | ---: |")
        ours = {r["nprobe"]: r for r in (held or {}).get("approximate", [])}
        flat = {r["nprobe"]: r for r in faiss.get("ivf_flat", {}).get("runs", [])}
        sq8 = {r["nprobe"]: r for r in faiss.get("ivf_sq8", {}).get("runs", [])}
        for n in sorted(set(ours) | set(flat)):
            def cell(r):
                return f"{r['recall']:.3f} / {ms(r['p50_us'])}" if r else "–"
            md.append(f"| {n} | {cell(ours.get(n))} | {cell(flat.get(n))} | {cell(sq8.get(n))} |")
        md.append("")
        f = faiss.get("ivf_flat", {})
        md.append(f"FAISS IVFFlat trained in {f.get('train_s', 0):.1f} s and added in {f.get('add_s', 0):.1f} s "
                  f"(nlist {f.get('nlist')}).")
        h = faiss.get("hnsw")
        if h and h.get("runs"):
            md.append("")
            md.append(f"The alternative design, HNSW (FAISS IndexHNSWFlat, M {h.get('m')}, efConstruction "
                      f"{h.get('ef_construction')}, built in {h.get('build_s', 0):.1f} s in memory):")
            md.append("")
            md.append("| efSearch | recall@10 | p50 ms | p99 ms |")
            md.append("| ---: | ---: | ---: | ---: |")
            for r in h.get("runs", []):
                md.append(f"| {r['ef']} | {r['recall']:.3f} | {ms(r['p50_us'])} | {ms(r['p99_us'])} |")
        md.append("")
    if held:
        r99 = first_reaching(held["approximate"], 0.99)
        md.append("Probe share for recall 0.99 (held-out, real text): " +
                  (f"{r99['share']:g} (nprobe {r99['nprobe']}, recall {r99['recall']:.3f}, p50 {ms(r99['p50_us'])} ms)."
                   if r99 else "not reached by the shares measured."))
        md.append("")
    md.append("**Targets.**")
    md.append("")
    for t in targets:
        md.append(f"- {t['name']}: {t['target']}: {t['measured']} -- {'met' if t['met'] else '**missed**'}")
    md.append("")
    md.append(
        "Why the topic-free corpus is hard: its chunks are bags of words drawn independently from one "
        "vocabulary, so no chunk is much nearer to one centroid than to the others and a question's "
        "nearest chunks fall in lists all over the space; a partition can only find them by probing "
        "most of it, so the tuned probe is large there and the index saves less time. Real text has topics (a package's changelog, a licence) that the lists follow. The "
        "hash embedder is the hard case of both: its vectors are word-overlap features with no meaning "
        "to cluster on; an embeddings model's vectors cluster by topic far more (the unit test's "
        "clustered data reaches 0.99 at an eighth of the lists), and `exact: true` on `/api/search` "
        "measures it on one's own data.")
    md.append("")
    open(os.path.join(out, "ivf.md"), "w").write("\n".join(md))
    json.dump({"part": 8, "title": "Approximate vector search", "elapsed_s": a.elapsed,
               "targets": targets}, open(os.path.join(out, "ivf.json"), "w"),
              indent=1)


if __name__ == "__main__":
    main()
