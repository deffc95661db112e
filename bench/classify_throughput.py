#!/usr/bin/env python
"""How many reviews per second does the classifier label on my CPU? One review at a time (`learn.predict`) vs batches (`predict_texts`).

fastai's `learn.predict` classifies one review per call. The package's `nlpbook_ch.predict.predict_texts` (what
`nlpbook-ch classify` and `classify` use) classifies in batches: one tokenising pass, then the classifier's modules on
sorted batches, in fp32 and, on a CPU that does bf16 natively (AMX or AVX512-BF16: `nlpbook_ch.core.native_bf16`),
under bf16 autocast, its default there. This script measures them, and fastai's own batch path, in one run, on the first 1, 100 and 1,000 reviews of the shipped `imdb_sample.csv` (real IMDB reviews,
1,000 of them), checks that they give the same probabilities, and times the parts of the batched path (tokenising,
the LSTM layers, the rest) at the largest size.

The classifier is trained by the script itself (once per configuration; reused from the cache afterwards) with quick
mode's preset (the project's pretrained AWD-LSTM, `SMALL_AWD_LSTM`) fine-tuned for one epoch per stage on a few hundred
reviews; the result file records its size. Its accuracy does not matter here, only its size does: the speed of
inference depends on the architecture, the vocabulary and the reviews, not on how well it was trained.

    python bench/classify_throughput.py           # 1, 100 and 1,000 reviews, quick-mode architecture (~3 min on 2 cores)
    python bench/classify_throughput.py --smoke   # 1 and 20 reviews, the TINY architecture: seconds

Writes bench/results/classify_throughput{.md,.json} (the --smoke run: classify_throughput_smoke.*).
"""
import argparse, hashlib, json, statistics, sys, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C   # sets the offline/cache environment defaults before torch and fastai are imported

SMALL = dict(n_per_label=100, lm_n_per_label=100, lm_n_unsup=200, lm_frozen=(1, 1e-2), lm_unfrozen=(1, 3e-3),
             stages=((-1, 1, 2e-2),))
"The bench classifier: quick mode's preset (the pretrained SMALL_AWD_LSTM) fine-tuned briefly on 400 labelled + 600 language-model reviews."

def trained_classifier(smoke=False, log=print) -> tuple:
    "(folder, training seconds or None) of a classifier trained with `SMALL` (or `TINY` with `smoke`): trained on the first call, then reused."
    from nlpbook_ch.core import cache_dir
    from nlpbook_ch.ulmfit import ulmfit_config, TINY
    from nlpbook_ch.job import run_ulmfit, read_state, config_to_json
    cfg = ulmfit_config('quick', **(TINY if smoke else SMALL))
    key = hashlib.sha1(json.dumps(config_to_json(cfg), sort_keys=True).encode()).hexdigest()[:10]
    out = cache_dir('bench')/f"classify_{'tiny' if smoke else 'small'}_{key}"   # a changed config (or preset) trains a new one
    if (out/'classifier.pkl').exists(): return out, None
    t0 = time.time()
    run_ulmfit(out, cfg, resume=read_state(out) is not None, log=lambda m: None)
    log(f'trained the bench classifier in {time.time() - t0:.0f} s: {out}')
    return out, round(time.time() - t0, 1)

def review_texts(n:int) -> list:
    "The first `n` reviews of the shipped IMDB sample."
    from nlpbook_ch.data import load_imdb_sample
    texts = load_imdb_sample()['text'].tolist()
    if n > len(texts): raise ValueError(f"the sample holds {len(texts)} reviews, not {n}")
    return texts[:n]

def plain_get_preds(learn, texts, bs:int=64):
    "fastai's own batch path, for comparison: one `test_dl` (a `SortedDL`) and one `get_preds` over all `texts`."
    dl = learn.dls.test_dl(texts, bs=bs, num_workers=0)
    with learn.no_bar(): return learn.get_preds(dl=dl)[0]

def time_parts(learn, texts, bs:int=64, amp:bool=False) -> dict:
    "Seconds of one `predict_texts` pass over `texts` (`amp`: bf16 autocast), of its tokenising (`text_ids`, timed on its own) and of its LSTM layers (hooks)."
    from nlpbook_ch.predict import predict_texts, text_ids
    lstm, t0s = [0.0], []
    def pre(m, args): t0s.append(time.perf_counter())
    def post(m, args, out): lstm[0] += time.perf_counter() - t0s.pop()
    hooks = [h for r in learn.model[0].module.rnns for h in (r.module.register_forward_pre_hook(pre), r.module.register_forward_hook(post))]
    try: t0 = time.perf_counter(); predict_texts(learn, texts, bs=bs, amp=amp); total = time.perf_counter() - t0
    finally:
        for h in hooks: h.remove()
    t0 = time.perf_counter(); text_ids(learn, texts); tok = time.perf_counter() - t0
    return dict(n=len(texts), total_s=round(total, 3), tokenise_s=round(tok, 3), lstm_s=round(lstm[0], 3),
                rest_s=round(total - tok - lstm[0], 3))

def time_methods(learn, texts, repeats:int=1, bs:int=64, mixed:bool=False) -> dict:
    "Seconds (median of `repeats`) to classify `texts` one by one with `learn.predict`, with `predict_texts` in fp32 and (with `mixed`) under bf16 autocast, and with plain fastai."
    import torch
    from nlpbook_ch.ulmfit import predict_text
    from nlpbook_ch.predict import predict_texts
    before, after, mixed_s, plain = [], [], [], []
    for _ in range(repeats):   # alternating, so that a change in the machine's load hits the methods alike
        t0 = time.perf_counter(); one = torch.stack([predict_text(learn, t)[2] for t in texts]); before.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); batch = predict_texts(learn, texts, bs=bs, amp=False)[1]; after.append(time.perf_counter() - t0)
        if mixed: t0 = time.perf_counter(); bf = predict_texts(learn, texts, bs=bs, amp=True)[1]; mixed_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); fa = plain_get_preds(learn, texts, bs=bs); plain.append(time.perf_counter() - t0)
    b, a, f = statistics.median(before), statistics.median(after), statistics.median(plain)
    bf16 = dict(mixed_s=(m := statistics.median(mixed_s)), mixed_per_s=len(texts) / m, mixed_speedup=b / m,
                mixed_all=[round(x, 4) for x in mixed_s], mixed_max_prob_diff=float((one - bf).abs().max()),
                mixed_same_labels=int((one.argmax(1) == bf.argmax(1)).sum())) if mixed else {}
    return dict(**bf16, n=len(texts), repeats=repeats, bs=bs, before_s=b, after_s=a, plain_s=f, before_per_s=len(texts) / b,
                after_per_s=len(texts) / a, plain_per_s=len(texts) / f, speedup=b / a, before_all=[round(x, 4) for x in before],
                after_all=[round(x, 4) for x in after], plain_all=[round(x, 4) for x in plain],
                max_prob_diff=float((one - batch).abs().max()), same_labels=bool((one.argmax(1) == batch.argmax(1)).all()),
                plain_max_prob_diff=float((one - fa).abs().max()), plain_same_labels=bool((one.argmax(1) == fa.argmax(1)).all()))

def run(sizes=(1, 100, 1000), smoke=False, threads:int=1, bs:int=64, log=print) -> dict:
    import torch
    warnings.filterwarnings('ignore')
    torch.set_num_threads(threads)
    info = C.machine_info()
    t_start = time.time()
    folder, train_s = trained_classifier(smoke, log=log)
    from nlpbook_ch.predict import load_trained, predict_texts
    t0 = time.perf_counter(); learn = load_trained(folder); load_s = time.perf_counter() - t0
    texts = review_texts(max(sizes))
    from nlpbook_ch.ulmfit import predict_text
    from nlpbook_ch.core import native_bf16
    mixed = native_bf16()   # bf16 autocast only where the CPU does it natively (elsewhere it is emulated, and off by default)
    predict_text(learn, texts[0]); predict_texts(learn, texts[:2], amp=False)   # warm-up: first-call costs out of the timings
    if mixed: predict_texts(learn, texts[:2], amp=True)
    ds = learn.dls.test_dl(texts, val_res=[0] * len(texts)).dataset
    tokens = [len(ds[i][0]) for i in range(len(texts))]   # fastai tokens (special tokens included) per review
    cases = []
    for n in sizes:
        r = time_methods(learn, texts[:n], repeats=5 if n == 1 else 1, bs=bs, mixed=mixed)
        r['tokens'] = sum(tokens[:n])
        cases.append(r)
        log(f"{n:5} reviews: per review {r['before_per_s']:8.1f}/s ({r['before_s']:.2f} s), batch {r['after_per_s']:8.1f}/s "
            f"({r['after_s']:.2f} s): x{r['speedup']:.1f}; max |Δp| {r['max_prob_diff']:.1e}, same labels: {r['same_labels']}; "
            f"plain fastai {r['plain_per_s']:.1f}/s, max |Δp| {r['plain_max_prob_diff']:.3f}"
            + (f"; bf16 {r['mixed_per_s']:.1f}/s: x{r['mixed_speedup']:.1f}, max |Δp| {r['mixed_max_prob_diff']:.1e}, "
               f"same labels {r['mixed_same_labels']}/{n}" if mixed else ''))
    parts = {k: time_parts(learn, texts, bs=bs, amp=k == 'bf16') for k in (('fp32', 'bf16') if mixed else ('fp32',))}
    for k, pt in parts.items():
        log(f"{pt['n']:5} reviews, batched {k}: {pt['total_s']:.2f} s = tokenising {pt['tokenise_s']:.2f} s + LSTM layers "
            f"{pt['lstm_s']:.2f} s + the rest {pt['rest_s']:.2f} s")
    info['native_bf16'] = mixed
    info.update(load_at_end=C.loadavg(), total_seconds=round(time.time() - t_start, 1))
    arch = learn.model[0].module
    model = dict(folder=str(folder), config='TINY' if smoke else 'SMALL (see bench/classify_throughput.py)',
                 emb_sz=arch.emb_sz, n_hid=arch.n_hid, n_layers=arch.n_layers, vocab=len(learn.dls.vocab[0]),
                 parameters=sum(p.numel() for p in learn.model.parameters()), load_s=round(load_s, 3),
                 train_s=train_s, accuracy=json.loads((folder/'report.json').read_text())['stage_accuracy'][-1])
    return dict(machine=info, model=model, cases=cases, parts=parts['fp32'], **({'parts_bf16': parts['bf16']} if mixed else {}))

def markdown(res:dict) -> str:
    m, md = res['machine'], res['model']
    bf = 'mixed_per_s' in res['cases'][-1]
    rows = [dict(reviews=c['n'], tokens=f"{c['tokens']:,}", **{'per review (learn.predict) reviews/s': f"{c['before_per_s']:.1f}",
                 'batch fp32 reviews/s': f"{c['after_per_s']:.1f}", 'fp32 speed-up': f"{c['speedup']:.1f}x",
                 'fp32: max prob. difference, same labels': f"{c['max_prob_diff']:.1e}, {c['same_labels']}",
                 **({'batch bf16 reviews/s': f"{c['mixed_per_s']:.1f}", 'bf16 speed-up': f"{c['mixed_speedup']:.1f}x",
                     'bf16: max prob. difference, same labels': f"{c['mixed_max_prob_diff']:.1e}, {c['mixed_same_labels']}/{c['n']}"} if bf else {}),
                 'seconds (per review / fp32' + (' / bf16)' if bf else ')'):
                     ' / '.join(f"{x:.2f}" for x in (c['before_s'], c['after_s'], *((c['mixed_s'],) if bf else ()))),
                 'plain fastai reviews/s': f"{c['plain_per_s']:.1f}",
                 'plain: max prob. difference, same labels': f"{c['plain_max_prob_diff']:.3f}, {c['plain_same_labels']}"}) for c in res['cases']]
    big = res['cases'][-1]
    previous = '; '.join(f"{c['after_per_s']:.1f} reviews/s at {c['n']:,}" for c in res.get('previous', {}).get('cases', []))
    def parts(pt, name): return (f"{name}: {pt['total_s']:.2f} s, of which tokenising (fastai's rules and spaCy, all reviews in one "
                                 f"call, timed on its own) {pt['tokenise_s']:.2f} s, the LSTM layers (timed by hooks) {pt['lstm_s']:.2f} s, "
                                 f"and the rest (embedding, pooling, head, batching) {pt['rest_s']:.2f} s")
    return '\n'.join([
        '# Classifier inference: one review at a time vs batches (CPU)', '',
        f"{m['date']}, {m['cpu']} ({m['usable_cores']} cores, {m['memory']}), torch {m['torch']}, fastai {m.get('fastai')}, "
        f"{m['torch_threads']} torch thread(s), load average {m['load_at_start']} at start / {m['load_at_end']} at end; "
        f"{m['total_seconds']} s in all. No GPU was used. Native bf16 (AMX or AVX512-BF16, `nlpbook_ch.core.native_bf16`): "
        f"{m.get('native_bf16', 'not recorded')}.", '',
        f"Classifier: AWD-LSTM with embedding {md['emb_sz']}, hidden {md['n_hid']}, {md['n_layers']} layers, vocabulary "
        f"{md['vocab']:,} ({md['parameters']:,} parameters), config {md['config']}; `load_learner` took {md['load_s']:.2f} s "
        f"(not in the timings); {'trained in this run in ' + str(md['train_s']) + ' s' if md.get('train_s') else 'trained in an earlier run (cached)'}, "
        f"validation accuracy {md.get('accuracy')} (irrelevant to speed). Reviews: the first n of the shipped `imdb_sample.csv`. Batch size 64; 'per review' is "
        f"`learn.predict` in a loop (fastai's way), 'batch' is `nlpbook_ch.predict.predict_texts` "
        f"(what `nlpbook-ch classify` uses) with `amp=False` (fp32)" + (" and with `amp=True` (bf16 autocast: its default on this CPU)" if bf else '')
        + ". Differences and labels are against `learn.predict`'s. n = 1: median of 5 alternating runs; n = 100 and 1,000: one run each.", '',
        C.md_table(rows), '',
        f"At {big['n']:,} reviews the batched path in fp32 is **{big['speedup']:.1f}x** the per-review throughput "
        f"({big['after_per_s']:.0f} vs {big['before_per_s']:.0f} reviews/s), with the same labels and probabilities equal to "
        f"{big['max_prob_diff']:.0e}"
        + (f"; under bf16 autocast it is **{big['mixed_speedup']:.1f}x** ({big['mixed_per_s']:.0f} reviews/s), probabilities within "
           f"{big['mixed_max_prob_diff']:.0e} of fp32's and {big['mixed_same_labels']:,} of {big['n']:,} labels the same" if bf else '')
        + ". 'Plain fastai' is one `test_dl` + `get_preds` over all the reviews, for comparison: "
        f"it tokenises every review twice (once to sort by length, once to batch) and its padding goes wrong for some mixes "
        f"of lengths (see `nbs/08_predict.ipynb`, 'Batch inference'), so its probabilities differ from `learn.predict`'s "
        f"(max {big['plain_max_prob_diff']:.3f} here).", '',
        *([f"Where the batched path's time goes, in one more pass over the {pt['n']:,} reviews: {parts(pt, 'fp32')}"
           + (f"; {parts(res['parts_bf16'], 'bf16')}" if 'parts_bf16' in res else '') + ". "
           f"The per-review path does the same tokenising and the same LSTM arithmetic, one review at a "
           f"time, plus a data loader per review. In fp32, with one thread, the LSTM layers' matrix products bound what batching can "
           f"gain: were tokenising and the rest free, the batched fp32 path would be at most "
           f"{res['cases'][-1]['before_s'] / pt['lstm_s']:.1f}x the per-review one ({res['cases'][-1]['before_s']:.1f} s / "
           f"{pt['lstm_s']:.2f} s)" + (f"; bf16 on the CPU's matrix units moves that bound to "
           f"{res['cases'][-1]['before_s'] / res['parts_bf16']['lstm_s']:.1f}x" if 'parts_bf16' in res else '')
           + ". Timings depend on the machine's load (see the load averages); compare the methods within this "
           f"run only.", ''] if (pt := res.get('parts')) else []),
        *([f"The package's batched path of an earlier version (fastai's `test_dl` + `get_preds`, one loader per chunk count), "
           f"measured on the same classifier on {pv['date']}: {previous} (`{pv['file']}`).", ''] if (pv := res.get('previous')) else [])])

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    C.add_smoke(p, '1 and 20 reviews with the TINY architecture')
    p.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    p.add_argument('--bs', type=int, default=64, help='batch size of the batched path')
    p.add_argument('--out', default=str(C.RESULTS), help='folder for the result files')
    a = p.parse_args(argv)
    res = run(sizes=(1, 20) if a.smoke else (1, 100, 1000), smoke=a.smoke, threads=a.threads, bs=a.bs)
    out = Path(a.out)
    name = 'classify_throughput' + ('_smoke' if a.smoke else '')
    prev = out/f'{name}_before.json'   # the earlier batched path's run, kept for comparison when its model is this one
    if prev.exists() and json.loads(prev.read_text())['model']['folder'] == res['model']['folder']:
        p = json.loads(prev.read_text())
        res['previous'] = dict(file=f'bench/results/{prev.name}', date=p['machine']['date'],
                               cases=[dict(n=c['n'], after_per_s=c['after_per_s']) for c in p['cases']])
    md = C.write_results(out, name, res, markdown(res))
    print(f"\n{markdown(res)}\nwritten: {md}, .json")
    return res

if __name__ == '__main__': main()
