#!/usr/bin/env python
"""ULMFiT on a CUDA GPU through the package's fastai path: LM tokens/s, classifier reviews/s, memory per batch item,
one epoch's perplexity at a small and a large batch, and batched classification of 1,000 reviews (issue 11, items 1-2).

Everything runs through fastai's `Learner` as the package builds it (`language_model_learner` / `text_classifier_learner`,
`to_fp16()`, the package's loaders), at the chapter's model size (fastai's AWD-LSTM: embedding 400, hidden 1152,
3 layers). The LM throughput uses a synthetic token stream over a 60,000-token vocabulary (fastai's `max_vocab`: the
full-IMDB vocabulary the chapter's LM has); speed does not depend on which tokens they are. The perplexity check and
the classifier use the real 3,000-review subset.

    python bench/gpu_ulmfit.py --out DIR            # on a GPU (about 2 minutes)
    python bench/gpu_ulmfit.py --out DIR --smoke    # a seconds-long run of every code path (CPU or GPU), tiny sizes
    python bench/gpu_ulmfit.py --markdown DIR/gpu_ulmfit.json   # bench/results/gpu_ulmfit.md from a run's JSON

Writes DIR/gpu_ulmfit.json as it goes (each part is saved when done, so a run stopped by its time budget keeps what it measured).
"""
import argparse, json, math, random, statistics, sys, time, traceback, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C   # offline/cache defaults before torch and fastai are imported

CHAPTER_ARCH = dict(emb_sz=400, n_hid=1152, n_layers=3)   # fastai's AWD_LSTM defaults: the chapter's model

def full_imdb_tokens() -> dict:
    "The fastai token count of the shipped AWD-LSTM's corpus (75,000 reviews) from its model card, scaled to all 100,000."
    card = json.loads((C.ROOT/'pretrained'/'awd_lstm_imdb_small'/'model_card.json').read_text())
    c = card['corpus']
    n_docs, tokens = c['n_docs'], c['n_tokens']
    return dict(card_docs=n_docs, card_tokens=tokens, full_docs=100_000, full_tokens=round(tokens * 100_000 / n_docs) if n_docs else None)

sync = C.sync

def timer_cb(warm:int, n:int):
    "A fastai callback that times `n` training batches after `warm` ones, counting the tokens (or items) they held, then stops the fit."
    from fastai.callback.core import Callback, CancelFitException
    class TimeBatches(Callback):
        order = 100
        def before_fit(self): self.i, self.t0, self.items, self.tokens, self.dt = 0, None, 0, 0, None
        def after_batch(self):
            if not self.training: return
            self.i += 1
            if self.i == warm: sync(); self.t0 = time.perf_counter()
            elif self.i > warm: self.items += self.xb[0].shape[0]; self.tokens += self.xb[0].numel()
            if self.i == warm + n: sync(); self.dt = time.perf_counter() - self.t0; raise CancelFitException
    return TimeBatches()

def synthetic_docs(n_tokens:int, vocab:int, seed:int=0):
    "Texts of IMDB-like lengths (fastai tokens: lognormal around 230, 10..2,500) of random token ids, totalling about `n_tokens`."
    import numpy as np, torch
    from fastai.text.all import TensorText
    rng = np.random.default_rng(seed)
    docs, total = [], 0
    while total < n_tokens:
        n = int(np.clip(rng.lognormal(math.log(230), 0.6), 10, 2500))
        docs.append(TensorText(torch.from_numpy(rng.integers(8, vocab, n))))   # ids 0-7: fastai's special tokens
        total += n
    return docs

def lm_learner(dls, arch=CHAPTER_ARCH, fp16=True):
    from fastai.text.all import language_model_learner, AWD_LSTM, awd_lstm_lm_config, accuracy, Perplexity
    learn = language_model_learner(dls, AWD_LSTM, config=dict(awd_lstm_lm_config, **arch), pretrained=False,
                                   metrics=[accuracy, Perplexity()], wd=0.1)
    return learn.to_fp16() if fp16 else learn

def lm_throughput(bss, loaders=('stream', 'fastai'), fastai_bss=(64, 512), vocab=60_000, arch=CHAPTER_ARCH, warm=3, n=20, seq_len=72, log=print, deadline=None):
    "Training tokens/s of the chapter-size LM through `Learner.fit` for each batch size and loader; peak GPU memory."
    import torch
    from fastai.text.all import DataLoaders, LMDataLoader
    from nlpbook_ch.ulmfit import StreamLMDataLoader, free_memory
    from nlpbook_ch.core import get_device
    dev = get_device()
    vocab_list = ['xxunk', 'xxpad', 'xxbos', 'xxeos', 'xxfld', 'xxrep', 'xxwrep', 'xxup'] + [f'w{i}' for i in range(vocab - 8)]
    docs = synthetic_docs(max(bss) * seq_len * (warm + n + 2), vocab)
    rows = []
    for bs in bss:
        for kind in loaders:
            if deadline and time.time() > deadline: rows.append(dict(bs=bs, loader=kind, skipped='time budget')); continue
            if kind == 'fastai' and bs not in fastai_bss: continue   # the stock loader at the chapter's and a large batch only
            cls = StreamLMDataLoader if kind == 'stream' else LMDataLoader
            row = dict(bs=bs, loader=kind, vocab=vocab, seq_len=seq_len, **arch)
            try:
                free_memory()
                if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
                train = cls(docs, bs=bs, seq_len=seq_len, shuffle=True, num_workers=0, device=dev)
                valid = cls(docs[:50], bs=8, seq_len=seq_len, num_workers=0, device=dev)
                dls = DataLoaders(train, valid, device=dev); dls.vocab = vocab_list
                learn = lm_learner(dls, arch)
                base = torch.cuda.memory_allocated() if dev.type == 'cuda' else 0
                cb = timer_cb(warm, n)
                with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3, cbs=cb)
                row.update(tokens=cb.tokens, seconds=round(cb.dt, 3), tok_s=round(cb.tokens / cb.dt), ms_per_batch=round(1000 * cb.dt / n, 1))
                if dev.type == 'cuda':
                    row.update(peak_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2), model_gb=round(base / 2**30, 2))
                log(f"LM bs {bs:5} {kind:6}: {row['tok_s']:>9,} tok/s, {row['ms_per_batch']} ms/batch, peak {row.get('peak_gb')} GB")
            except torch.cuda.OutOfMemoryError as e:
                row.update(error='CUDA out of memory'); log(f'LM bs {bs} {kind}: out of memory')
            except Exception as e:
                row.update(error=f'{type(e).__name__}: {e}'[:300]); log(f'LM bs {bs} {kind}: {row["error"]}')
            finally:
                learn = dls = train = valid = None; free_memory()
            rows.append(row)
    return rows

def subset_paths(smoke=False):
    "The classifier and LM working copies of the IMDB subset, tokenised (the package's `imdb_paths`)."
    from nlpbook_ch.ulmfit import ulmfit_config, imdb_paths, TINY
    cfg = ulmfit_config('quick', **(TINY if smoke else dict(n_per_label=None, lm_n_per_label=None, lm_n_unsup=None)))
    return cfg, imdb_paths(cfg)

def perplexity_check(cfg, lm_path, runs, arch=CHAPTER_ARCH, epochs=1, log=print, deadline=None):
    "Validation perplexity after `epochs` of `fit_one_cycle` from random weights on the subset's LM data, for each (bs, lr)."
    import torch
    from dataclasses import replace
    from nlpbook_ch.ulmfit import lm_dataloaders, free_memory
    res = []
    for bs, lr, rule in runs:
        if deadline and time.time() > deadline: res.append(dict(bs=bs, lr=lr, rule=rule, skipped='time budget')); continue
        free_memory()
        dls = lm_dataloaders(lm_path, replace(cfg, max_vocab=60000), bs=bs)
        learn = lm_learner(dls, arch)
        sync(); t0 = time.perf_counter()
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, lr)
        sync(); dt = time.perf_counter() - t0
        vals = learn.recorder.values
        n_tok = len(dls.train) * bs * cfg.lm_seq_len * epochs
        row = dict(bs=bs, lr=lr, rule=rule, epochs=epochs, vocab=len(dls.vocab), train_batches=len(dls.train),
                   valid_loss=[round(float(v[1]), 4) for v in vals], perplexity=[round(float(v[3]), 2) for v in vals],
                   seconds=round(dt, 2), tok_s_with_valid=round(n_tok / dt))
        log(f"subset LM bs {bs} lr {lr:.2e} ({rule}): perplexity {row['perplexity']} in {dt:.1f} s")
        res.append(row); learn = dls = None; free_memory()
    return res

def clf_throughput(cfg, clf_path, bss, workers=(0,), arch=CHAPTER_ARCH, log=print, deadline=None):
    "Classifier training reviews/s (chapter size, fp16) on the subset's 1,000 training reviews for each batch size and worker count."
    import torch
    from dataclasses import replace
    from nlpbook_ch.ulmfit import clf_dataloaders, make_classifier, free_memory
    from fastai.text.all import TextDataLoaders
    res = []
    c = replace(cfg, pretrained=False, arch=dict(arch))
    for bs in bss:
        for nw in workers:
            if deadline and time.time() > deadline: res.append(dict(bs=bs, num_workers=nw, skipped='time budget')); continue
            row = dict(bs=bs, num_workers=nw)
            try:
                free_memory()
                if torch.cuda.is_available(): torch.cuda.reset_peak_memory_stats()
                dls = TextDataLoaders.from_folder(clf_path, valid='test', seq_len=c.seq_len, bs=bs, num_workers=nw, seed=c.seed)
                learn = make_classifier(dls, c)
                n = max(1, len(dls.train) - 1)
                cb = timer_cb(1, n)
                with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3, cbs=cb)
                row.update(reviews=cb.items, seconds=round(cb.dt, 3), reviews_s=round(cb.items / cb.dt, 1),
                           tokens_s=round(cb.tokens / cb.dt))
                if torch.cuda.is_available(): row['peak_gb'] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
                log(f"classifier bs {bs} workers {nw}: {row['reviews_s']} reviews/s, peak {row.get('peak_gb')} GB")
            except Exception as e:
                row.update(error=f'{type(e).__name__}: {e}'[:300]); log(f'classifier bs {bs}: {row["error"]}')
            res.append(row); learn = dls = None
    return res

def classify_check(cfg, clf_path, n_reviews=1000, arch=CHAPTER_ARCH, log=print, n_single=50):
    "Seconds to classify `n_reviews` of imdb_sample.csv with `predict_texts` (fp16 autocast and fp32) and per review with `learn.predict`."
    import torch, tempfile
    from dataclasses import replace
    from fastai.text.all import load_learner
    from nlpbook_ch.ulmfit import clf_dataloaders, make_classifier, predict_text, ensure_fp32
    from nlpbook_ch.cli import predict_texts
    from nlpbook_ch.data import load_imdb_sample
    texts = load_imdb_sample()['text'].tolist()[:n_reviews]
    c = replace(cfg, pretrained=False, arch=dict(arch))
    learn = make_classifier(clf_dataloaders(clf_path, c), c)
    with tempfile.TemporaryDirectory() as d:      # the load time of an exported classifier, reported apart
        ensure_fp32(learn); learn.export(Path(d)/'clf.pkl')
        t0 = time.perf_counter(); learn = load_learner(Path(d)/'clf.pkl', cpu=not torch.cuda.is_available()); load_s = time.perf_counter() - t0
    out = dict(n=len(texts), load_s=round(load_s, 2), device=str(next(learn.model.parameters()).device))
    predict_texts(learn, texts[:8])   # warm-up (cuDNN, allocator)
    probs = {}
    for amp in ((True, False) if torch.cuda.is_available() else (False,)):   # autocast is CUDA's
        key = 'amp' if amp else 'fp32'
        try:
            sync(); t0 = time.perf_counter()
            labels, p = predict_texts(learn, texts, amp=amp)
            sync(); dt = time.perf_counter() - t0
            probs[key] = p
            out[key] = dict(seconds=round(dt, 3), reviews_s=round(len(texts) / dt, 1))
            log(f'classify {len(texts)} reviews ({key}): {dt:.2f} s')
        except Exception as e:
            out[key] = dict(error=f'{type(e).__name__}: {e}'[:300]); log(f'classify ({key}): {out[key]["error"]}')
    if 'amp' in probs and 'fp32' in probs:
        out['amp_vs_fp32'] = dict(max_prob_diff=float((probs['amp'] - probs['fp32']).abs().max()),
                                  same_labels=bool((probs['amp'].argmax(1) == probs['fp32'].argmax(1)).all()))
    sync(); t0 = time.perf_counter()
    single = torch.stack([predict_text(learn, t)[2] for t in texts[:n_single]])
    sync(); dt = time.perf_counter() - t0
    out['per_review'] = dict(n=n_single, seconds=round(dt, 3), reviews_s=round(n_single / dt, 1))
    if 'fp32' in probs: out['per_review']['max_prob_diff_vs_fp32_batch'] = float((single - probs['fp32'][:n_single]).abs().max())
    log(f"per review (learn.predict): {out['per_review']['reviews_s']} reviews/s")
    return out

def memory_fit(rows, kind='stream') -> dict|None:
    "Least-squares line peak_gb = a + b * bs over the measured batch sizes: b is the GPU memory per batch item."
    pts = [(r['bs'], r['peak_gb']) for r in rows if r.get('peak_gb') is not None and r.get('loader', kind) == kind]
    if len(pts) < 2: return None
    xs, ys = zip(*pts); mx, my = statistics.mean(xs), statistics.mean(ys)
    b = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x in xs)
    return dict(gb_per_item=round(b, 5), intercept_gb=round(my - b * mx, 2), points=len(pts))

def run(out:Path, smoke=False, budget:float=200, log=print) -> dict:
    import torch
    warnings.filterwarnings('ignore')
    t_start = time.time(); deadline = t_start + budget
    out.mkdir(parents=True, exist_ok=True)
    res = dict(machine=C.machine_info(), smoke=smoke, budget_s=budget, imdb=full_imdb_tokens())
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        res['gpu'] = dict(name=p.name, memory_gb=round(p.total_memory / 2**30, 1), capability=f'{p.major}.{p.minor}')
    def save(): (out/'gpu_ulmfit.json').write_text(json.dumps(res, indent=1, default=str))
    def part(name, f):
        t0 = time.time()
        try: res[name] = f()
        except Exception as e: res[name] = dict(error=f'{type(e).__name__}: {e}', trace=traceback.format_exc()[-2000:]); log(f'{name}: {res[name]["error"]}')
        res.setdefault('part_seconds', {})[name] = round(time.time() - t0, 1); save()
    arch = dict(emb_sz=16, n_hid=32, n_layers=2) if smoke else CHAPTER_ARCH
    part('lm', lambda: lm_throughput((8, 16) if smoke else (64, 128, 256, 512, 1024), fastai_bss=(8,) if smoke else (64, 512), vocab=600 if smoke else 60_000, arch=arch,
                                     n=3 if smoke else 20, log=log, deadline=deadline))
    res['lm_memory'] = memory_fit(res['lm']) if isinstance(res['lm'], list) else None
    cfg, (clf, lm) = subset_paths(smoke)
    runs = [(16, 1e-2, 'chapter'), (32, 1e-2 * 2 ** 0.5, 'sqrt')] if smoke else \
           [(64, 1e-2, 'chapter bs, lr'), (512, 1e-2 * 8 ** 0.5, 'sqrt'), (512, 1e-2 * 8, 'linear')]
    part('perplexity', lambda: perplexity_check(cfg, lm, runs, arch=arch, log=log, deadline=deadline))
    part('classifier', lambda: clf_throughput(cfg, clf, (8,) if smoke else (64, 128, 256), workers=(0, 2) if smoke else (0, 8),
                                              arch=arch, log=log, deadline=deadline))
    res['clf_memory'] = memory_fit(res['classifier']) if isinstance(res['classifier'], list) else None
    part('classify', lambda: classify_check(cfg, clf, n_reviews=20 if smoke else 1000, arch=arch, log=log, n_single=5 if smoke else 50))
    res['total_s'] = round(time.time() - t_start, 1); save()
    return res

def markdown(res:dict) -> str:
    m, g = res['machine'], res.get('gpu', {})
    card = g.get('name', 'no GPU (CPU)')
    L = [f'# ULMFiT on a GPU through the package (chapter-size AWD-LSTM, fastai `Learner`)', '',
         f"Measured by `bench/gpu_ulmfit.py` on **{card}** ({g.get('memory_gb', '?')} GiB), {m['date']}; torch {m['torch']}, "
         f"fastai {m.get('fastai')}, {m['usable_cores']} CPU cores ({m['cpu']}). Whole run {res.get('total_s')} s"
         f"{' (SMOKE run: tiny sizes, not results)' if res.get('smoke') else ''}. Do not edit by hand: rerun the script "
         f"and `--markdown` its JSON.", '']
    lm = res.get('lm')
    if isinstance(lm, list):
        L += ['## Language model: training tokens/s', '',
              f"AWD-LSTM {lm[0].get('emb_sz')}/{lm[0].get('n_hid')}/{lm[0].get('n_layers')} layers, vocabulary {lm[0].get('vocab'):,} "
              f"(synthetic ids), BPTT {lm[0].get('seq_len')}, `language_model_learner(...).to_fp16()`, `learn.fit`; "
              f"timed over 20 batches after 3 warm-up batches, GPU synchronised at both ends. 'stream' = the package's "
              f"`StreamLMDataLoader`, 'fastai' = fastai's `LMDataLoader`.", '',
              '| batch size | loader | tokens/s | ms per batch | peak GPU memory (GB) | full-IMDB epoch (projected) |', '|---|---|---|---|---|---|']
        full = res.get('imdb', {}).get('full_tokens')
        for r in lm:
            if 'tok_s' in r:
                ep = f"{full / r['tok_s'] / 60:.1f} min" if full else 'n/a'
                L.append(f"| {r['bs']} | {r['loader']} | {r['tok_s']:,} | {r['ms_per_batch']} | {r.get('peak_gb', 'n/a')} | {ep} |")
            else: L.append(f"| {r['bs']} | {r['loader']} | {r.get('error') or r.get('skipped')} | | | |")
        if full: L += ['', f"Full IMDB: {full:,} fastai tokens (the shipped AWD-LSTM's model card counts "
                           f"{res['imdb']['card_tokens']:,} tokens in {res['imdb']['card_docs']:,} reviews; scaled to 100,000)."]
        mf = res.get('lm_memory')
        if mf: L += ['', f"Memory: peak = {mf['intercept_gb']} GB + {mf['gb_per_item']} GB × batch size (least squares over {mf['points']} batch sizes)."]
        L.append('')
    px = res.get('perplexity')
    if isinstance(px, list):
        L += ['## One epoch on the 3,000-review subset: does a large batch cost perplexity?', '',
              'Random initial weights, `fit_one_cycle(1, lr)`, chapter-size LM, the subset\'s own vocabulary; validation on its 10%.', '',
              '| batch size | lr | rule | train batches | validation perplexity | seconds (with validation) |', '|---|---|---|---|---|---|']
        for r in px:
            if 'perplexity' in r: L.append(f"| {r['bs']} | {r['lr']:.3g} | {r['rule']} | {r['train_batches']} | {r['perplexity'][-1]} | {r['seconds']} |")
            else: L.append(f"| {r['bs']} | {r['lr']:.3g} | {r['rule']} | {r.get('skipped')} | | |")
        L.append('')
    cl = res.get('classifier')
    if isinstance(cl, list):
        L += ['## Classifier: training reviews/s', '', 'Chapter-size `text_classifier_learner(...).to_fp16()` from random weights on the subset\'s '
              '1,000 training reviews (fastai\'s `SortedDL`), timed over the epoch\'s batches after the first.', '',
              '| batch size | DataLoader workers | reviews/s | tokens/s | peak GPU memory (GB) |', '|---|---|---|---|---|']
        for r in cl:
            if 'reviews_s' in r: L.append(f"| {r['bs']} | {r['num_workers']} | {r['reviews_s']} | {r['tokens_s']:,} | {r.get('peak_gb', 'n/a')} |")
            else: L.append(f"| {r['bs']} | {r['num_workers']} | {r.get('error') or r.get('skipped')} | | |")
        mf = res.get('clf_memory')
        if mf: L += ['', f"Memory: peak = {mf['intercept_gb']} GB + {mf['gb_per_item']} GB × batch size."]
        L.append('')
    cc = res.get('classify')
    if isinstance(cc, dict) and 'n' in cc:
        L += ['## Classifying 1,000 reviews (`predict_texts`)', '',
              f"The first {cc['n']:,} reviews of `imdb_sample.csv`, a chapter-size classifier exported and loaded with `load_learner` "
              f"({cc['load_s']} s, not included), on {cc['device']}.", '', '| path | seconds | reviews/s |', '|---|---|---|']
        for k in ('amp', 'fp32', 'amp_no_amp_arg', 'fp32_no_amp_arg'):
            if k in cc and 'seconds' in cc[k]: L.append(f"| `predict_texts` ({k}) | {cc[k]['seconds']} | {cc[k]['reviews_s']} |")
        pr = cc.get('per_review', {})
        if pr: L.append(f"| `learn.predict`, one review at a time ({pr['n']} reviews) | {pr['seconds']} | {pr['reviews_s']} |")
        if 'amp_vs_fp32' in cc: L += ['', f"fp16 autocast vs fp32: max probability difference {cc['amp_vs_fp32']['max_prob_diff']:.1e}, "
                                         f"same labels: {cc['amp_vs_fp32']['same_labels']}."]
        L.append('')
    errs = {k: v['error'] for k, v in res.items() if isinstance(v, dict) and 'error' in v}
    if errs: L += ['## Parts that failed', ''] + [f'- {k}: {v}' for k, v in errs.items()] + ['']
    return '\n'.join(L)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', type=Path, default=Path('/tmp/gpu_ulmfit'))
    p.add_argument('--smoke', action='store_true', help='tiny sizes: every code path in seconds')
    p.add_argument('--budget', type=float, default=200, help='seconds; parts not started by then are skipped')
    p.add_argument('--markdown', type=Path, help="write bench/results/gpu_ulmfit.md from this run's JSON and exit")
    a = p.parse_args(argv)
    if a.markdown:
        res = json.loads(a.markdown.read_text())
        (C.RESULTS/'gpu_ulmfit.md').write_text(markdown(res)); print(C.RESULTS/'gpu_ulmfit.md'); return
    res = run(a.out, smoke=a.smoke, budget=a.budget)
    (a.out/'gpu_ulmfit.md').write_text(markdown(res))
    print(f"done in {res['total_s']} s: {a.out/'gpu_ulmfit.json'}")

if __name__ == '__main__': main()
