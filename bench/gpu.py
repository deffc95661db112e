#!/usr/bin/env python
"""How fast do the package's training and inference run on a CUDA GPU? One script, in parts (`--parts`, in this order):

- `ulmfit`: the chapter-size AWD-LSTM (embedding 400, hidden 1,152, 3 layers) through fastai's `Learner` as the package
  builds it: language-model training tokens/s at batch 64-1024 with the package's `StreamLMDataLoader` and fastai's
  `LMDataLoader`, GPU memory per batch item, one epoch's perplexity at batch 64 and at 512 (square-root and linear
  learning-rate rules), classifier training reviews/s with 0 and 8 loader workers, classifying 1,000 reviews.
- `gpt2`: GPT-2 small decoding tokens/s at batch 1 and 32 in float32, bfloat16 and float16 by route (`generate`,
  `complete` and its `GreedyGPT2`, SDPA without cuDNN attention, eager attention, `GreedyGPT2`'s earlier eager form),
  a profile of one call per dtype, transformers' static cache compiled by `torch.compile`, the card's bandwidth bound.
- `cold`: GPT-2 small in fresh processes: the first `generate` call in 16 bits with and without cuDNN attention, and
  `GreedyGPT2`'s CUDA-graph tokens/s per dtype with its tokens compared to `generate`'s.
- `classify`: `predict_texts` on the GPU: tokenising in 0-15 worker processes, fp32 vs fp16 autocast, against
  `learn.predict` one review at a time (a random-weight classifier of the project's 256/512/2 size).
- `full`: `nlpbook-ch ulmfit --mode full` end to end on the IMDB subset (its language-model batch grown to fit the GPU),
  then `nlpbook-ch classify --file` on 1,000 reviews with that run's model, by default and with `--fp32`.
- `suite`: the test suite in quick mode with the notebooks' `cuda` cells, in the time left; and where a command-line
  process's start-up time goes (`python -X importtime`).

    python bench/gpu.py                                   # parts ulmfit,gpt2,cold,classify (on an H100: ulmfit 61 s, gpt2 104 s)
    python bench/gpu.py --parts full,suite --budget 900
    python bench/gpu.py --smoke                           # every part's code path at tiny sizes, on a CPU too
    python bench/gpu.py --markdown ulmfit bench/results/gpu_ulmfit.json   # rewrite a results file's .md from its .json

Each part writes its own results into `--out` (default bench/results) as soon as it ends: gpu_ulmfit, gpt2_gpu,
gpt2_gpu_cold, classify_gpu, gpu_full, gpu_suite (.json and .md; the suite's pytest output in gpu_suite_pytest.log).
The GPU machine needs the package's dependencies (fastai, spaCy, ...) and the shared data; for a server without a
package index, `tools/airgap/` packs both.
"""
import argparse, json, math, os, re, statistics, subprocess, sys, tempfile, time, traceback, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C   # offline/cache defaults before torch and fastai are imported

PARTS = ('ulmfit', 'gpt2', 'cold', 'classify', 'full', 'suite')
DEFAULT_PARTS = 'ulmfit,gpt2,cold,classify'
STEMS = dict(ulmfit='gpu_ulmfit', gpt2='gpt2_gpu', cold='gpt2_gpu_cold', classify='classify_gpu', full='gpu_full', suite='gpu_suite')
CHAPTER_ARCH = dict(emb_sz=400, n_hid=1152, n_layers=3)   # fastai's AWD_LSTM defaults: the chapter's model
TINY_ARCH = dict(emb_sz=16, n_hid=32, n_layers=2)         # the --smoke runs'
sync = C.sync

def gpu_info() -> dict|None:
    "Name, memory, compute capability, CUDA and driver version of GPU 0 (None without CUDA)."
    import torch
    if not torch.cuda.is_available(): return None
    p = torch.cuda.get_device_properties(0)
    d = dict(name=p.name, memory_gb=round(p.total_memory / 2**30, 1), capability=f'{p.major}.{p.minor}', cuda=torch.version.cuda)
    try:
        q = subprocess.run(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'], capture_output=True, text=True, timeout=30)
        d['driver'] = q.stdout.strip().splitlines()[0] if q.returncode == 0 and q.stdout.strip() else None
    except (OSError, subprocess.SubprocessError): d['driver'] = None
    return d

def header(res:dict, part:str, title:str) -> list:
    "The first lines of a part's results file: what it measured, where, when, with which versions, and how long it took."
    m, g = res.get('machine', {}), res.get('gpu') or {}
    g = dict(name=g) if isinstance(g, str) else g
    card = (f"**{g['name']}**" + (f" ({g['memory_gb']} GiB)" if g.get('memory_gb') else '')) if g.get('name') else 'no GPU (a CPU)'
    took = next((f'{res[k]} s' for k in ('total_s', 'seconds') if res.get(k) is not None), 'duration not recorded')
    versions = ', '.join(f'{k} {m[k]}' for k in ('torch', 'fastai', 'transformers') if m.get(k)) or f"torch {res.get('torch', '?')}"
    cores = m.get('usable_cores', res.get('cores', '?'))
    return [f'# {title}', '',
            f"Measured by `python bench/gpu.py --parts {part}{' --smoke' if res.get('smoke') else ''}` on {card}, "
            f"{m.get('date', res.get('date', 'date not recorded'))}; {versions}; {cores} CPU cores{' (' + m['cpu'] + ')' if m.get('cpu') else ''}. "
            f"Whole part: {took}.{' **A smoke run: tiny sizes, its numbers mean nothing.**' if res.get('smoke') else ''} "
            f"Do not edit by hand: rerun the part, or `python bench/gpu.py --markdown {part} FILE.json`.", '']

# ================================================================ part `ulmfit`
def full_imdb_tokens() -> dict:
    "The fastai token count of the shipped AWD-LSTM's corpus (75,000 reviews) from its model card, scaled to all 100,000."
    from nlpbook_ch.models import find_pretrained, model_card
    c = model_card(find_pretrained('awd_lstm_imdb_small'))['corpus']
    n_docs, tokens = c['n_docs'], c['n_tokens']
    return dict(card_docs=n_docs, card_tokens=tokens, full_docs=100_000, full_tokens=round(tokens * 100_000 / n_docs) if n_docs else None)

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
            except torch.cuda.OutOfMemoryError:
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
    "Validation perplexity after `epochs` of `fit_one_cycle` from random weights on the subset's LM data, for each (bs, lr, rule)."
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
    "Classifier training reviews/s (chapter size, fp16) on the subset's training reviews for each batch size and worker count."
    import torch
    from dataclasses import replace
    from nlpbook_ch.ulmfit import make_classifier, free_memory
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
    import torch
    from dataclasses import replace
    from fastai.text.all import load_learner
    from nlpbook_ch.ulmfit import clf_dataloaders, make_classifier, predict_text, ensure_fp32
    from nlpbook_ch.predict import predict_texts
    from nlpbook_ch.data import load_imdb_sample
    texts = load_imdb_sample()['text'].tolist()[:n_reviews]
    c = replace(cfg, pretrained=False, arch=dict(arch))
    learn = make_classifier(clf_dataloaders(clf_path, c), c)
    with tempfile.TemporaryDirectory() as d:      # the load time of an exported classifier, reported apart
        ensure_fp32(learn); learn.export(Path(d)/'clf.pkl')
        t0 = time.perf_counter(); learn = load_learner(Path(d)/'clf.pkl', cpu=not torch.cuda.is_available()); load_s = time.perf_counter() - t0
    out = dict(n=len(texts), load_s=round(load_s, 2), device=str(next(learn.model.parameters()).device))
    predict_texts(learn, texts[:8], amp=False)   # warm-up (cuDNN, allocator)
    probs = {}
    for amp in ((True, False) if torch.cuda.is_available() else (False,)):   # fp16 autocast is CUDA's
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

def part_ulmfit(res:dict, save, smoke=False, deadline=None, log=print):
    "Fill `res` with the `ulmfit` part's measurements, calling `save()` after each step (a stopped run keeps what it measured)."
    res['imdb'] = full_imdb_tokens()
    def step(name, f):
        t0 = time.time()
        try: res[name] = f()
        except Exception as e: res[name] = dict(error=f'{type(e).__name__}: {e}', trace=traceback.format_exc()[-2000:]); log(f'{name}: {res[name]["error"]}')
        res.setdefault('part_seconds', {})[name] = round(time.time() - t0, 1); save()
    arch = TINY_ARCH if smoke else CHAPTER_ARCH
    step('lm', lambda: lm_throughput((8, 16) if smoke else (64, 128, 256, 512, 1024), fastai_bss=(8,) if smoke else (64, 512),
                                     vocab=600 if smoke else 60_000, arch=arch, n=3 if smoke else 20, log=log, deadline=deadline))
    res['lm_memory'] = memory_fit(res['lm']) if isinstance(res['lm'], list) else None
    cfg, (clf, lm) = subset_paths(smoke)
    runs = [(16, 1e-2, 'chapter'), (32, 1e-2 * 2 ** 0.5, 'sqrt')] if smoke else \
           [(64, 1e-2, 'chapter bs, lr'), (512, 1e-2 * 8 ** 0.5, 'sqrt'), (512, 1e-2 * 8, 'linear')]
    step('perplexity', lambda: perplexity_check(cfg, lm, runs, arch=arch, log=log, deadline=deadline))
    step('classifier', lambda: clf_throughput(cfg, clf, (8,) if smoke else (64, 128, 256), workers=(0, 2) if smoke else (0, 8),
                                              arch=arch, log=log, deadline=deadline))
    res['clf_memory'] = memory_fit(res['classifier']) if isinstance(res['classifier'], list) else None
    step('classify', lambda: classify_check(cfg, clf, n_reviews=20 if smoke else 1000, arch=arch, log=log, n_single=5 if smoke else 50))

def md_ulmfit(res:dict) -> str:
    L = header(res, 'ulmfit', 'ULMFiT on a GPU through the package (chapter-size AWD-LSTM, fastai `Learner`)')
    lm = res.get('lm')
    if isinstance(lm, list) and lm:
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
        L += [f"## Classifying {cc['n']:,} reviews (`predict_texts`)", '',
              f"The first {cc['n']:,} reviews of `imdb_sample.csv`, a chapter-size classifier exported and loaded with `load_learner` "
              f"({cc['load_s']} s, not included), on {cc['device']}.", '', '| path | seconds | reviews/s |', '|---|---|---|']
        names = {'amp': 'fp16 autocast (`amp=True`)', 'fp32': 'fp32 (`amp=False`)',   # runs of a version without `amp`: its default, twice
                 'amp_no_amp_arg': 'default precision (a version without `amp`), first call', 'fp32_no_amp_arg': 'default precision, second call'}
        for k, name in names.items():
            if k in cc and 'seconds' in cc[k]: L.append(f"| `predict_texts`, {name} | {cc[k]['seconds']} | {cc[k]['reviews_s']} |")
        pr = cc.get('per_review', {})
        if pr: L.append(f"| `learn.predict`, one review at a time ({pr['n']} reviews) | {pr['seconds']} | {pr['reviews_s']} |")
        if 'amp_vs_fp32' in cc: L += ['', f"fp16 autocast vs fp32: max probability difference {cc['amp_vs_fp32']['max_prob_diff']:.1e}, "
                                         f"same labels: {cc['amp_vs_fp32']['same_labels']}."]
        L.append('')
    return '\n'.join(L + failures(res))

def failures(res:dict) -> list:
    errs = {k: v['error'] for k, v in res.items() if isinstance(v, dict) and 'error' in v}
    return ['## Parts that failed', ''] + [f'- {k}: {v}' for k, v in errs.items()] + [''] if errs else []

# ================================================================ parts `gpt2` and `cold`
DTYPES = ('float32', 'bfloat16', 'float16')

def timed(f, repeats=2, slow_s=4.0) -> dict:
    "Seconds of the first (cold) call and the median of `repeats` more (1 if the cold call took over `slow_s`)."
    sync(); t0 = time.perf_counter(); r = f(); sync(); cold = time.perf_counter() - t0
    warm = []
    for _ in range(1 if cold > slow_s else repeats):
        sync(); t0 = time.perf_counter(); r = f(); sync(); warm.append(time.perf_counter() - t0)
    return dict(cold_s=round(cold, 4), warm_s=round(statistics.median(warm), 4), result=r)

def cases_for(model, tok, n:int, batch32:bool=True, log=print) -> list:
    "Every decoding route at batch 1 (and 32) on `model`: tokens/s cold and warm, and whether the tokens agree."
    import torch
    from torch.nn.attention import sdpa_kernel, SDPBackend
    from nlpbook_ch.gpt2 import complete, encode_prompt, GreedyGPT2, _eos_ids
    from gpt2_inference import PROMPT, eager_decoder_class
    dev = next(model.parameters()).device
    ids = encode_prompt(tok, PROMPT).to(dev)
    eos = tok.eos_token_id
    def gen(x, **kw):
        with torch.no_grad(): return model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, min_new_tokens=n,
                                                    do_sample=False, pad_token_id=eos, **kw)[:, x.shape[1]:]
    def no_cudnn():
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]): return gen(ids)
    def eager():
        model.set_attn_implementation('eager')
        try: return gen(ids)
        finally: model.set_attn_implementation('sdpa')
    routes = [('generate', lambda: gen(ids)),
              ('complete (generate route, fast=False)', lambda: complete(model, tok, PROMPT, n, return_ids=True, fast=False)[1]),
              ('complete (default: GreedyGPT2 on CUDA)', lambda: complete(model, tok, PROMPT, n, return_ids=True)[1]),
              ('generate, SDPA without cuDNN attention', no_cudnn),
              ('generate, eager attention', eager)]
    # the package's decoder with the attention and GELU it had before (transformers' eager forms: ~2x its operators per
    # token, `gpt2_inference.py --part ops`): kept across calls like complete's, so that warm calls replay its graph
    old = eager_decoder_class()(model, 1, ids.shape[1] + n, eos_id=_eos_ids(model, tok))
    old_failed = {}
    def eager_greedy():   # its own capture: a failure of it must not switch graphs off for the package's decoder, or be blamed on it
        kept, GreedyGPT2.graph_failed = GreedyGPT2.graph_failed, old_failed.get('why')
        try: return old(ids, n)
        finally: old_failed['why'], GreedyGPT2.graph_failed = GreedyGPT2.graph_failed, kept
    routes.append(('GreedyGPT2, eager attention and GELU', eager_greedy))
    if batch32:
        x32 = ids.repeat(32, 1)
        routes += [('generate, batch 32', lambda: gen(x32)),
                   ('GreedyGPT2, batch 32', lambda: GreedyGPT2(model, 32, x32.shape[1] + n, eos_id=_eos_ids(model, tok))(x32, n))]
    rows, ref = [], None
    for name, f in routes:
        try:
            t = timed(f)
            out = t.pop('result')
            out = out.tolist() if torch.is_tensor(out) else out
            first = out[0] if out and isinstance(out[0], list) else out
            if ref is None: ref = first
            batch = 32 if 'batch 32' in name else 1
            row = dict(route=name, batch=batch, n=n, **t, tok_s_warm=round(batch * n / t['warm_s'], 1),
                       tok_s_cold=round(batch * n / t['cold_s'], 1), same_tokens_as_generate=first == ref,
                       agree_prefix=next((i for i, (a, b) in enumerate(zip(first, ref)) if a != b), len(ref)))
        except Exception as e:
            row = dict(route=name, error=f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'[:300])
        log(f"  {name:42} " + (f"{row['tok_s_warm']:9.1f} tok/s warm, {row['tok_s_cold']:9.1f} cold, same tokens {row['same_tokens_as_generate']}"
                                if 'tok_s_warm' in row else row['error']))
        rows.append(row)
    for row in rows:
        if row['route'] == 'GreedyGPT2, eager attention and GELU': row['graph_failed'] = old_failed.get('why')   # None: captured (or a CPU)
    return rows

def profile(model, tok, n:int, fast:bool, top:int=12) -> dict:
    "torch.profiler over one warm `complete` call: the ops with the most host time, the kernels with the most GPU time, kernel launches."
    import torch
    from torch.profiler import profile as prof, ProfilerActivity
    from nlpbook_ch.gpt2 import complete
    from gpt2_inference import PROMPT
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    complete(model, tok, PROMPT, n, fast=fast)
    sync(); t0 = time.perf_counter()
    with prof(activities=acts) as p:
        complete(model, tok, PROMPT, n, fast=fast); sync()
    wall = time.perf_counter() - t0
    ev = p.key_averages()
    dev_attr = 'self_device_time_total' if hasattr(ev[0], 'self_device_time_total') else 'self_cuda_time_total'
    host = sorted(ev, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    devk = sorted([e for e in ev if getattr(e, dev_attr, 0) > 0], key=lambda e: getattr(e, dev_attr), reverse=True)[:8]
    launches = sum(e.count for e in ev if e.key in ('cudaLaunchKernel', 'cuLaunchKernel', 'cudaLaunchKernelExC', 'cudaGraphLaunch'))
    graphs = sum(e.count for e in ev if e.key == 'cudaGraphLaunch')
    return dict(n=n, fast=fast, wall_s=round(wall, 4), kernel_launch_calls=launches, graph_launches=graphs,
                host_ops=[dict(op=e.key, calls=e.count, self_cpu_ms=round(e.self_cpu_time_total / 1000, 2)) for e in host],
                gpu_kernels=[dict(kernel=e.key[:90], calls=e.count, gpu_ms=round(getattr(e, dev_attr) / 1000, 2)) for e in devk],
                total_self_cpu_ms=round(sum(e.self_cpu_time_total for e in ev) / 1000, 1),
                total_gpu_ms=round(sum(getattr(e, dev_attr, 0) for e in ev) / 1000, 1))

_STATIC = r'''
import json, sys, time, warnings, torch
warnings.filterwarnings('ignore')
sys.path.insert(0, sys.argv[1])
from gpt2_inference import gpt2_small, load_gpt2_tokenizer, PROMPT, SMOKE_GPT2
from nlpbook_ch.gpt2 import encode_prompt
dtype, n, smoke = getattr(torch, sys.argv[2]), int(sys.argv[3]), sys.argv[4] == '1'
tok = load_gpt2_tokenizer()
m = (gpt2_small(**SMOKE_GPT2) if smoke else gpt2_small()).to('cuda' if torch.cuda.is_available() else 'cpu', dtype).eval()
ids = encode_prompt(tok, PROMPT).to(m.device)
res = dict(dtype=sys.argv[2], n=n)
def gen():
    with torch.no_grad():
        return m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                          pad_token_id=tok.eos_token_id, cache_implementation='static')
for i in range(4):
    if torch.cuda.is_available(): torch.cuda.synchronize()
    t0 = time.perf_counter(); out = gen()
    if torch.cuda.is_available(): torch.cuda.synchronize()
    res[f'call{i}_s'] = round(time.perf_counter() - t0, 3)
    print(json.dumps(res), flush=True)
res['tokens'] = out[0, ids.shape[1]:].tolist()
print(json.dumps(res), flush=True)
'''

def static_compiled(dtype:str, n:int, smoke:bool, timeout:float) -> dict:
    "`generate(cache_implementation='static')` in a fresh process (transformers compiles the forward on CUDA): each call's seconds."
    try:
        p = subprocess.run([sys.executable, '-c', _STATIC, str(C.BENCH), dtype, str(n), '1' if smoke else '0'],
                           capture_output=True, text=True, timeout=timeout)
        lines = [l for l in p.stdout.splitlines() if l.startswith('{')]
        res = json.loads(lines[-1]) if lines else dict(error=p.stderr.strip().splitlines()[-1][:300] if p.stderr.strip() else f'exit {p.returncode}')
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b'').decode() if isinstance(e.stdout, bytes) else (e.stdout or '')
        lines = [l for l in out.splitlines() if l.startswith('{')]
        res = dict(json.loads(lines[-1]) if lines else {}, error=f'stopped after {timeout:.0f} s')
    return res

def part_gpt2(res:dict, save, smoke=False, deadline=None, log=print):
    "Fill `res` with the `gpt2` part's measurements, one dtype at a time (saved after each)."
    import copy, torch
    from nlpbook_ch.gpt2 import GreedyGPT2
    from gpt2_inference import gpt2_small, load_gpt2_tokenizer, weight_bytes, copy_bandwidth, PROMPT, SMOKE_GPT2
    deadline = deadline or time.time() + 200
    res['prompt'] = PROMPT
    if torch.cuda.is_available():
        res['sdpa'] = dict(flash=torch.backends.cuda.flash_sdp_enabled(), mem_efficient=torch.backends.cuda.mem_efficient_sdp_enabled(),
                           math=torch.backends.cuda.math_sdp_enabled(), cudnn=torch.backends.cuda.cudnn_sdp_enabled())
    dev = 'cuda' if torch.cuda.is_available() else 'cpu'
    tok = load_gpt2_tokenizer()
    base = gpt2_small(**SMOKE_GPT2) if smoke else gpt2_small()
    n = 8 if smoke else 64
    res['bandwidth_gbs'] = round(copy_bandwidth(64 if smoke else 1024, device='cuda')['copy_gbps'], 1) if dev == 'cuda' else None
    res['dtypes'] = {}
    for dt in DTYPES:
        if time.time() > deadline: res['dtypes'][dt] = dict(skipped='time budget'); continue
        log(f'{dt}:')
        try:
            m = copy.deepcopy(base).to(dev, getattr(torch, dt)).eval()
            d = dict(weight_bytes=weight_bytes(m))
            if res['bandwidth_gbs']: d['bound_tok_s_batch1'] = round(res['bandwidth_gbs'] * 1e9 / 2 / d['weight_bytes'], 1)   # read-only: half the copy's traffic
            GreedyGPT2.graph_failed = None   # each dtype tries its own capture
            d['cases'] = cases_for(m, tok, n, log=log)
            if time.time() < deadline: d['profile_generate'] = profile(m, tok, 4 if smoke else 16, fast=False)
            if time.time() < deadline: d['profile_greedy'] = profile(m, tok, 4 if smoke else 16, fast=True)
            d['graph_failed'] = GreedyGPT2.graph_failed   # why GreedyGPT2 could not capture a CUDA graph (None: it did, or a CPU)
            if d['graph_failed']: log(f"  GreedyGPT2's graph capture failed: {d['graph_failed']}")
        except Exception as e:
            d = dict(error=f'{type(e).__name__}: {e}'[:300], trace=traceback.format_exc()[-1500:])
        res['dtypes'][dt] = d; m = None; save()
        if dev == 'cuda': torch.cuda.empty_cache()
    left = deadline - time.time()
    best = max(DTYPES, key=lambda k: next((c.get('tok_s_warm', 0) for c in res['dtypes'].get(k, {}).get('cases', [])
                                           if c['route'] == 'generate'), 0))
    if left > 30:
        log(f'static cache + torch.compile ({best}), up to {left:.0f} s ...')
        res['static_compiled'] = static_compiled(best, n, smoke, timeout=left)
        log(f"  {res['static_compiled']}")
    else: res['static_compiled'] = dict(skipped='time budget')

def md_gpt2(res:dict) -> str:
    g = res.get('gpu') or {}
    L = header(res, 'gpt2', 'GPT-2 small decoding on a GPU: tokens/s by route and dtype') + [
         f"Random GPT-2 small (124M parameters), prompt {res['prompt']!r} (5 tokens), greedy, exactly n new tokens. 'warm' is the median "
         f"of the calls after the first; 'cold' the first call of the route in this process (the first route of each dtype also "
         f"pays for CUDA/cuBLAS start-up). SDPA backends enabled by default: {res.get('sdpa', g.get('sdpa'))}. Device copy bandwidth: "
         f"{res.get('bandwidth_gbs')} GB/s (bytes read + written); the batch-1 bound is half of it (weights are only read) over "
         f"the weights' bytes.", '']
    for dt, d in res.get('dtypes', {}).items():
        if 'cases' not in d: L += [f"## {dt}: {d.get('error') or d.get('skipped')}", '']; continue
        L += [f"## {dt} (weights {d['weight_bytes'] / 2**20:.0f} MiB; bandwidth bound at batch 1: {d.get('bound_tok_s_batch1', 'n/a')} tok/s)", '',
              '| route | batch | new tokens | tok/s warm | tok/s cold | same tokens as `generate` |', '|---|---|---|---|---|---|']
        for c in d['cases']:
            if 'error' in c: L.append(f"| {c['route']} | | | {c['error']} | | |")
            else: L.append(f"| {c['route']} | {c['batch']} | {c['n']} | {c['tok_s_warm']:,} | {c['tok_s_cold']:,} | "
                           f"{c['same_tokens_as_generate']}{'' if c['same_tokens_as_generate'] else ' (first ' + str(c['agree_prefix']) + ' agree)'} |")
        for key, title in (('profile_generate', '`complete(fast=False)` (generate)'), ('profile_greedy', '`complete(fast=True)` (GreedyGPT2)')):
            p = d.get(key)
            if not p: continue
            att = sorted({o['op'] for o in p['host_ops'] if 'attention' in o['op']})
            if att: L += ['', f"Attention in {title}: {', '.join('`' + a + '`' for a in att)}."]
            gl = p.get('graph_launches')   # runs before 2026-11-27 did not count graph launches apart
            if key == 'profile_greedy' and g and (gl == 0 if gl is not None else p['kernel_launch_calls'] > 10 * p['n']):
                L += ['', f"**The CUDA graph was not used in this run**: {'no graph launch and ' if gl == 0 else ''}"
                          f"{p['kernel_launch_calls']:,} kernel launches for {p['n']} tokens (one graph replay per token would launch "
                          "about one): GreedyGPT2 fell back to decoding step by step, so its rows above measure that fallback, not the "
                          f"graph. Why capture failed: {d.get('graph_failed') or 'not recorded by this run'}."]
            L += ['', f"Profile of one {title} call, {p['n']} new tokens: wall {p['wall_s']} s (under the profiler), host self time "
                      f"{p['total_self_cpu_ms']} ms, GPU time {p['total_gpu_ms']} ms, kernel launch calls {p['kernel_launch_calls']}. "
                      'Most host time: ' + '; '.join(f"{o['op']} {o['self_cpu_ms']} ms ({o['calls']})" for o in p['host_ops'][:8]) + '. '
                      'Most GPU time: ' + '; '.join(f"`{o['kernel'][:60]}` {o['gpu_ms']} ms ({o['calls']})" for o in p['gpu_kernels'][:5]) + '.']
        L.append('')
    sc = res.get('static_compiled', {})
    L += ['## Static KV cache + torch.compile (transformers\' own route)', '',
          f"`generate(..., cache_implementation='static')` in a fresh process ({sc.get('dtype')}, {sc.get('n')} new tokens): "
          + ', '.join(f"call {i}: {sc[f'call{i}_s']} s" for i in range(4) if f'call{i}_s' in sc)
          + (f"; {sc['error']}" if 'error' in sc else '') + (f"; {sc['skipped']}" if 'skipped' in sc else '') + '.', '']
    return '\n'.join(L + failures(res))

_CASE = r'''
import json, sys, time, warnings, torch
sys.path.insert(0, sys.argv[1])
from gpt2_inference import gpt2_small, load_gpt2_tokenizer, PROMPT, SMOKE_GPT2
from nlpbook_ch.gpt2 import encode_prompt, GreedyGPT2, complete, _eos_ids
from _common import sync
kind, dtype, n, smoke = sys.argv[2], getattr(torch, sys.argv[3]), int(sys.argv[4]), sys.argv[5] == '1'
dev = 'cuda' if torch.cuda.is_available() else 'cpu'
tok = load_gpt2_tokenizer()
m = (gpt2_small(**SMOKE_GPT2) if smoke else gpt2_small()).to(dev, dtype).eval()
ids = encode_prompt(tok, PROMPT).to(dev)
def gen():
    with torch.no_grad():
        return m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False,
                          pad_token_id=tok.eos_token_id)[0, ids.shape[1]:].tolist()
res = dict(kind=kind, dtype=sys.argv[3], n=n)
with torch.no_grad(): m(ids); sync()      # CUDA context, cuBLAS and the prompt's shapes: out of the timings below
if kind in ('generate_default', 'generate_no_cudnn'):
    from torch.nn.attention import sdpa_kernel, SDPBackend
    ctx = sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]) if kind == 'generate_no_cudnn' else __import__('contextlib').nullcontext()
    with ctx:
        for i in range(3):
            sync(); t0 = time.perf_counter(); out = gen(); sync(); res[f'call{i}_s'] = round(time.perf_counter() - t0, 3)
else:
    ref = gen()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        for i in range(3):
            sync(); t0 = time.perf_counter()
            out = GreedyGPT2(m, 1, ids.shape[1] + n, eos_id=_eos_ids(m, tok))(ids, n)[0].tolist()
            sync(); res[f'call{i}_s'] = round(time.perf_counter() - t0, 4)
        b = 32; x = ids.repeat(b, 1)
        sync(); t0 = time.perf_counter(); o32 = GreedyGPT2(m, b, ids.shape[1] + n, eos_id=_eos_ids(m, tok))(x, n); sync()
        res['batch32_s'] = round(time.perf_counter() - t0, 4)
        for k in ('complete_s', 'complete_warm_s'):   # the first captures the graph of the decoder complete keeps, the second replays it
            sync(); t0 = time.perf_counter(); c = complete(m, tok, PROMPT, n, return_ids=True)[1]; sync()
            res[k] = round(time.perf_counter() - t0, 4)
    res['graph_failed'] = GreedyGPT2.graph_failed
    res['warnings'] = [str(x.message)[:300] for x in w]
    res['same_tokens_as_generate'] = out == ref
    res['agree_prefix'] = next((i for i, (a, b_) in enumerate(zip(out, ref)) if a != b_), len(ref))
    res['complete_same'] = c == ref
    res['batch32_rows_same'] = all(r == ref for r in o32.tolist())
print('RESULT=' + json.dumps(res), flush=True)
'''

COLD_CASES = (('generate_default', 'float16'), ('generate_no_cudnn', 'float16'), ('generate_default', 'bfloat16'),
              ('greedy', 'float32'), ('greedy', 'bfloat16'), ('greedy', 'float16'))

def cold_case(kind:str, dtype:str, n:int, smoke:bool, timeout:float=90, log=print) -> dict:
    "One `cold` case in a fresh process: its calls' seconds and tokens/s (and, for `greedy`, whether its tokens are `generate`'s)."
    t0 = time.time()
    try:
        p = subprocess.run([sys.executable, '-c', _CASE, str(C.BENCH), kind, dtype, str(n), '1' if smoke else '0'],
                           capture_output=True, text=True, timeout=timeout)
        line = next((l for l in p.stdout.splitlines() if l.startswith('RESULT=')), None)
        res = json.loads(line[7:]) if line else dict(kind=kind, dtype=dtype, error=(p.stderr.strip().splitlines() or ['exit %d' % p.returncode])[-1][:300])
    except subprocess.TimeoutExpired: res = dict(kind=kind, dtype=dtype, error=f'stopped after {timeout} s')
    res['process_s'] = round(time.time() - t0, 1)
    for k in ('call0_s', 'call1_s', 'call2_s', 'complete_s', 'complete_warm_s'):
        if k in res: res[k.replace('_s', '_tok_s')] = round(n / res[k], 1)
    if 'batch32_s' in res: res['batch32_tok_s'] = round(32 * n / res['batch32_s'], 1)
    log(json.dumps(res))
    return res

def part_cold(res:dict, save, smoke=False, deadline=None, log=print):
    "Fill `res` with the `cold` part's cases, each in its own process (saved after each)."
    res['n'] = n = 8 if smoke else 128
    res['cases'] = []
    for kind, dt in (COLD_CASES[:2] + COLD_CASES[3:4] if smoke else COLD_CASES):
        if deadline and time.time() > deadline: res['cases'].append(dict(kind=kind, dtype=dt, skipped='time budget')); continue
        res['cases'].append(cold_case(kind, dt, n, smoke, timeout=240 if smoke else 90, log=log)); save()

def md_cold(res:dict) -> str:
    L = header(res, 'cold', 'GPT-2 small on a GPU, each case in a fresh process: first calls and GreedyGPT2\'s CUDA graph') + [
        f"Random GPT-2 small, {res['n']} new tokens, batch 1 unless said. Before the timed calls each process runs one forward pass "
        "(CUDA context, cuBLAS and the prompt's shapes are not in the timings). 'generate' cases: three calls of `generate`, "
        "with PyTorch's default SDPA backends or with cuDNN attention left out. 'greedy' cases: three calls of a new "
        "`GreedyGPT2` (each captures its graph), one at batch 32, then `complete` twice (the first captures the graph of the "
        "decoder it keeps, the second replays it).", '',
        '| case | dtype | call 1 tok/s | call 2 tok/s | call 3 tok/s | batch 32 tok/s | `complete`, 1st / 2nd call tok/s | same tokens as `generate` | process s |',
        '|---|---|---|---|---|---|---|---|---|']
    for c in res['cases']:
        if 'error' in c or 'skipped' in c:
            L.append(f"| {c['kind']} | {c['dtype']} | {c.get('error') or c.get('skipped')} | | | | | | {c.get('process_s', '')} |"); continue
        same = (f"{c['same_tokens_as_generate']}{'' if c['same_tokens_as_generate'] else ' (first ' + str(c['agree_prefix']) + ' agree)'}; "
                f"batch 32: {c['batch32_rows_same']}; `complete`: {c['complete_same']}") if 'same_tokens_as_generate' in c else ''
        comp = f"{c['complete_tok_s']} / {c['complete_warm_tok_s']}" if 'complete_tok_s' in c else ''
        L.append(f"| {c['kind']} | {c['dtype']} | {c.get('call0_tok_s', '')} | {c.get('call1_tok_s', '')} | {c.get('call2_tok_s', '')} | "
                 f"{c.get('batch32_tok_s', '')} | {comp} | {same} | {c['process_s']} |")
    failed = [(c['dtype'], c['graph_failed']) for c in res['cases'] if c.get('graph_failed')]
    if failed: L += ['', 'GreedyGPT2 could not capture its CUDA graph (it decoded step by step instead): '
                     + '; '.join(f'{d}: {w}' for d, w in failed) + '.']
    return '\n'.join(L + [''] + failures(res))

# ================================================================ part `classify`
def part_classify(res:dict, save, smoke=False, deadline=None, log=print):
    "Fill `res` with the `classify` part's measurements: tokenising in worker processes, `predict_texts` fp32 vs autocast vs `learn.predict`."
    import torch, pandas as pd
    from fastai.text.all import TextDataLoaders, text_classifier_learner, AWD_LSTM, awd_lstm_clas_config
    from nlpbook_ch.predict import text_ids, predict_texts, autocast_dtype
    from nlpbook_ch.ulmfit import predict_text, SMALL_AWD_LSTM
    from nlpbook_ch.data import load_imdb_sample
    from nlpbook_ch.core import get_device
    texts = load_imdb_sample()['text'].tolist()[:60 if smoke else None]
    N = len(texts)
    n_valid = max(1, N // 10)
    df = pd.DataFrame(dict(text=texts, label=['pos', 'neg'] * (N // 2), is_valid=[False] * (N - n_valid) + [True] * n_valid))
    dls = TextDataLoaders.from_df(df, text_col='text', label_col='label', valid_col='is_valid', seq_len=72, bs=64)
    learn = text_classifier_learner(dls, AWD_LSTM, config=dict(awd_lstm_clas_config, **(TINY_ARCH if smoke else SMALL_AWD_LSTM)),
                                    pretrained=False, drop_mult=0.5)
    dev = get_device(); learn.model.to(dev)
    res.update(vocab=len(dls.vocab[0]), n_texts=N, arch=TINY_ARCH if smoke else SMALL_AWD_LSTM, device=str(dev))
    sizes = (20, 40, 60) if smoke else (250, 500, 1000)
    ref_ids = learn.dls.test_dl(texts).dataset
    text_ids(learn, texts, n_workers=0)   # warm-up: spaCy's lexemes
    tok = {}
    for n in sizes:
        for w in ((0, 2) if smoke else (0, 2, 4, 8, 15)):
            if w and n // w < (10 if smoke else 30): continue
            t = time.perf_counter(); ids = text_ids(learn, texts[:n], n_workers=w); tok[f'{n}_{w}'] = round(time.perf_counter() - t, 3)
            assert all(torch.equal(a, ref_ids[i][0]) for i, a in enumerate(ids)), f'text_ids in {w} workers differs from test_dl'
    res['tokenise_s'] = tok; save()
    n1 = 10 if smoke else 200
    one = torch.stack([predict_text(learn, x)[2] for x in texts[:3]]); sync()
    t = time.perf_counter(); one = torch.stack([predict_text(learn, x)[2] for x in texts[:n1]]); sync(); dt = time.perf_counter() - t
    res['learn_predict'] = dict(n=n1, s=round(dt, 3), per_s=round(n1 / dt, 1))
    amps = (False, True, None) if autocast_dtype(dev, None) is not None else (False, None)   # amp=True needs CUDA or a CPU with native bf16
    for amp in amps: predict_texts(learn, texts[:64], amp=amp)
    sync()
    pt = {}
    for amp in amps + amps[:2]:   # each twice but the default: the best of the repeats is reported
        for n in (1, sizes[1] // 2 if smoke else 100, N):
            t = time.perf_counter(); labels, p = predict_texts(learn, texts[:n], bs=64, amp=amp); sync(); dt = time.perf_counter() - t
            m = min(n, n1)
            pt.setdefault(f'{amp}_{n}', []).append(dict(s=round(dt, 4), per_s=round(n / dt, 1), max_diff=float((p[:m] - one[:m]).abs().max()),
                                                        same_labels=int((p[:m].argmax(1) == one[:m].argmax(1)).sum())))
    res['predict_texts'] = pt; save()
    t = time.perf_counter(); predict_texts(learn, texts, amp=None, n_workers=0); sync(); res['default_all_tok_inprocess_s'] = round(time.perf_counter() - t, 3)
    for bs in (128, 256):
        t = time.perf_counter(); predict_texts(learn, texts, bs=bs, amp=None); sync(); res[f'default_all_bs{bs}_s'] = round(time.perf_counter() - t, 3)
    if dev.type == 'cuda':   # as fp16 training leaves a learner: predict_texts must put the weights back in fp32
        learn.to_fp16(); learn.model.half()
        _, p = predict_texts(learn, texts[:n1])
        res['after_fp16'] = dict(max_diff=float((p - one).abs().max()), dtype=str(next(learn.model.parameters()).dtype),
                                 cbs=[type(c).__name__ for c in learn.cbs])

def md_classify(res:dict) -> str:
    tok, pt = res['tokenise_s'], res['predict_texts']
    sizes = sorted({int(k.split('_')[0]) for k in tok})
    workers = sorted({int(k.split('_')[1]) for k in tok})
    rows = [dict(reviews=n, **{f'{w} workers' if w else 'this process': (f"{tok[f'{n}_{w}']:.2f}" if f'{n}_{w}' in tok else '')
                                for w in workers}) for n in sizes]
    ns = sorted({int(k.split('_')[1]) for k in pt})
    def best(k): return min(pt[k], key=lambda r: r['s'])
    names = (('fp32 (amp=False)', 'False'), ('autocast (amp=True: fp16 on CUDA, bf16 on a CPU)', 'True'), ('default (amp=None)', 'None'))
    runs = [dict(path=name, **{f'{n} reviews/s': f"{best(f'{k}_{n}')['per_s']:.0f}" for n in ns},
                 **{f'max prob. difference (first {res.get("learn_predict", {}).get("n", 200)} vs learn.predict)':
                    f"{max(r['max_diff'] for r in pt[f'{k}_{ns[-1]}']):.1e}"})
            for name, k in names if f'{k}_{ns[-1]}' in pt]
    lp = res.get('learn_predict') or dict(n=200, **res['gpu_learn_predict_200'])   # runs before 2026-12 named it by its size
    inproc = res.get('default_all_tok_inprocess_s', res.get('amp_1000_tok_inprocess_s'))
    bs128, bs256 = (res.get(f'default_all_bs{b}_s', res.get(f'amp_1000_bs{b}_s')) for b in (128, 256))
    arch = res.get('arch', dict(emb_sz=256, n_hid=512, n_layers=2))
    own = "the project's size; " if arch['n_hid'] == 512 else ''
    L = header(res, 'classify', '`predict_texts` on a GPU machine') + [
        f"Classifier: an AWD-LSTM {arch['emb_sz']}/{arch['n_hid']}/{arch['n_layers']} with random weights ({own}a random "
        f"classifier's probabilities stay near 0.5, so the differences below say that the paths compute the same function, not how often "
        f"fp16 would flip a trained model's label), vocabulary {res['vocab']:,}, batch size 64; the first {res.get('n_texts', 1000):,} "
        "reviews of `imdb_sample.csv`. One run; the best of the repeats is shown.", '',
        *([f"Note: {res['note']}.", ''] if res.get('note') else []),
        f"## Tokenising {sizes[0]:,} to {sizes[-1]:,} reviews (`text_ids`), seconds", '', C.md_table(rows), '',
        '## Classifying (`predict_texts`, tokenising included)', '', C.md_table(runs), '',
        f"`learn.predict` one review at a time on the {'GPU' if 'cuda' in res.get('device', 'cuda') else 'CPU'}: {lp['per_s']:.1f} reviews/s ({lp['n']} reviews). `predict_texts` on all "
        f"{res.get('n_texts', 1000):,} reviews in its default precision with the tokenizer in this process: {inproc:.2f} s; with batch size "
        f"128 / 256 (workers): {bs128:.2f} / {bs256:.2f} s."]
    f16 = res.get('after_fp16')
    if f16: L[-1] += (f" After `to_fp16()` and half weights (as fp16 training leaves a learner) `predict_texts` ran with weights in "
                      f"{f16['dtype']} and without the MixedPrecision callback ({', '.join(f16['cbs'])}); max difference {f16['max_diff']:.1e}.")
    return '\n'.join(L + ['', *failures(res)])

# ================================================================ part `full`
def _run(cmd, env=None, timeout=None, cwd=None) -> dict:
    "Run `cmd`; its wall seconds, exit code, stdout and stderr (exit code None when stopped by `timeout`)."
    t0 = time.time()
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = None, e.stdout or '', (e.stderr or '') + f'\nstopped after {timeout:.0f} s'
        out, err = (x.decode() if isinstance(x, bytes) else x for x in (out, err))
    return dict(cmd=' '.join(map(str, cmd)), seconds=round(time.time() - t0, 1), rc=rc, stdout=out, stderr=err)

def _tail(text:str, n:int=25) -> list:
    "The last `n` lines of a command's output that say something: no warnings, no progress bars."
    lines = [l.split('\r')[-1].rstrip() for l in text.splitlines()]
    return [l for l in lines if l.strip() and 'warn' not in l.lower() and '█' not in l and not re.search(r'\d% \[\d+/\d+', l)
            and not re.fullmatch(r'\s*Epoch \d+/\d+ :\s*', l)][-n:]

def part_full(res:dict, save, smoke=False, deadline=None, log=print, config:dict|None=None):
    "Fill `res` with the `full` part: `nlpbook-ch ulmfit --mode full` on the subset (as `imdb_full`), then `nlpbook-ch classify --file` twice."
    from nlpbook_ch.data import find_data
    from nlpbook_ch.ulmfit import TINY
    deadline = deadline or time.time() + 600
    cfg = config if config is not None else (dict(TINY) if smoke else {'pretrained': False})
    res['config'] = cfg
    subset, sample = find_data('imdb'), find_data('imdb_sample')
    with tempfile.TemporaryDirectory(prefix='nlpbook_gpu_full_') as tmp:
        tmp = Path(tmp); data = tmp/'data'; data.mkdir()
        for name, target in (('imdb_full', subset), ('imdb_subset', subset), ('imdb_sample.csv', sample)): (data/name).symlink_to(target)
        (tmp/'config.json').write_text(json.dumps(cfg))
        import pandas as pd
        n = 20 if smoke else 1000
        reviews = [' '.join(t.split()) for t in pd.read_csv(sample)['text'][:n]]
        (tmp/'reviews.txt').write_text('\n'.join(reviews) + '\n')
        env = dict(os.environ, NLPBOOK_DATA=str(data), PYTHONPATH=os.pathsep.join(filter(None, [str(C.ROOT), os.environ.get('PYTHONPATH')])))
        cli = [sys.executable, '-m', 'nlpbook_ch.cli']
        train_s = max(10, min(260, deadline - time.time() - 90))   # 90 s stay for classifying
        log(f'nlpbook-ch ulmfit --mode full on the subset, up to {train_s:.0f} s ...')
        r = _run(cli + ['ulmfit', '--mode', 'full', '--config', str(tmp/'config.json'), '--out', str(tmp/'run')], env=env, timeout=train_s)
        res['train'] = dict(seconds=r['seconds'], rc=r['rc'], log_tail=_tail(r['stdout'] + r['stderr']))
        if (tmp/'run'/'report.json').exists(): res['train']['report'] = json.loads((tmp/'run'/'report.json').read_text())
        log('\n'.join(res['train']['log_tail'][-8:])); save()
        rows = {}
        for flag in ('', '--fp32'):
            r = _run(cli + ['classify', '--file', str(tmp/'reviews.txt'), '--model', str(tmp/'run')] + ([flag] if flag else []),
                     env=env, timeout=120 if smoke else 40)
            rows[flag] = [l.split('\t') for l in r['stdout'].splitlines() if l.strip()]
            labels = {}
            for x in rows[flag]: labels[x[0]] = labels.get(x[0], 0) + 1
            res.setdefault('classify', {})[flag or 'default'] = dict(seconds=r['seconds'], rc=r['rc'], rows=len(rows[flag]), labels=labels,
                                                                    err_tail=_tail(r['stderr'], 3))
            log(f"classify {flag or '(default)'}: {r['seconds']} s, {len(rows[flag])} rows, exit {r['rc']}")
        same = [(x, y) for x, y in zip(rows[''], rows['--fp32']) if x[0] == y[0]]
        res['default_vs_fp32'] = dict(n=len(rows['']), same_labels=len(same),
                                      max_prob_diff=max((abs(float(x[1]) - float(y[1])) for x, y in same), default=None))
        res['n_reviews'] = n

def md_full(res:dict) -> str:
    t, cl, dv = res.get('train', {}), res.get('classify', {}), res.get('default_vs_fp32', {})
    L = header(res, 'full', '`nlpbook-ch ulmfit --mode full`, then `nlpbook-ch classify`, on a GPU') + [
        f"Full mode's pipeline on the 3,000-review IMDB subset given as `imdb_full` (so that it fits a short run), config overrides "
        f"`{json.dumps(res.get('config'))}`; then the first {res.get('n_reviews', '?'):,} reviews of `imdb_sample.csv`, one per line, "
        "classified with that run's model.", '',
        f"- `nlpbook-ch ulmfit --mode full`: {t.get('seconds')} s wall, exit code {t.get('rc')} (None: stopped by the time budget)."]
    rep = t.get('report') or {}
    if rep.get('stage_accuracy'): L.append(f"  Accuracy per classifier stage: {', '.join(f'{a:.3f}' for a in rep['stage_accuracy'])}.")
    for k, c in cl.items():
        L.append(f"- `nlpbook-ch classify --file{' --fp32' if k == '--fp32' else ''}`: {c['seconds']} s wall (process start and model "
                 f"load included), exit code {c['rc']}, {c['rows']:,} rows, labels {c['labels']}.")
    if dv: L.append(f"- Default vs `--fp32`: {dv['same_labels']:,} of {dv['n']:,} labels the same; largest probability difference where "
                    f"the same: {dv['max_prob_diff']}.")
    L += ['', 'The training log\'s last lines:', '', '```', *t.get('log_tail', []), '```', '']
    return '\n'.join(L + failures(res))

# ================================================================ part `suite`
sys.path.insert(0, str(Path(__file__).resolve().parents[1]/'tools'))
from suite_durations import durations as _durations   # pytest's `--durations` section, read once for both

def durations(text:str) -> dict:
    "Seconds per test (setup + call + teardown) from pytest's `--durations` section."
    return {k: round(v, 2) for k, v in _durations(text).items()}

def startup_times(env:dict) -> dict:
    "Where a command-line process's start-up goes: the slowest imports of `import nlpbook_ch.cli` (cumulative µs) and `nlpbook-ch data`'s wall time, twice."
    r = _run([sys.executable, '-X', 'importtime', '-c', 'import nlpbook_ch.cli'], env=env, timeout=300)
    rows = []
    for l in r['stderr'].splitlines():
        parts = l.split('|')
        if len(parts) == 3 and parts[1].strip().isdigit(): rows.append((int(parts[1]), parts[2].rstrip()))
    data = [_run([sys.executable, '-m', 'nlpbook_ch.cli', 'data'], env=env, timeout=300) for _ in range(2)]
    return dict(slowest_imports_us=[dict(module=m, cumulative_us=us) for us, m in sorted(rows, reverse=True)[:25]],
                cli_data_s=[d['seconds'] for d in data], cli_data_rc=[d['rc'] for d in data])

def part_suite(res:dict, save, smoke=False, deadline=None, log=print, out:Path=None):
    "Fill `res` with the `suite` part: CLI start-up times, then pytest (quick mode, `cuda` cells) until the deadline, stopped by Ctrl-C."
    import signal
    env = dict(os.environ, NLPBOOK_MODE='quick', PYTHONPATH=os.pathsep.join(filter(None, [str(C.ROOT), os.environ.get('PYTHONPATH')])))
    res['startup'] = startup_times(env); save()
    left = (deadline - time.time()) if deadline else 1800
    if left <= 30: res['skipped'] = f'no time left for the suite ({left:.0f} s): run --parts suite on its own'; return
    args = (['tests/test_bench.py', '-k', 'memory_fit_recovers_a_line'] if smoke else
            ['tests/test_notebooks.py', 'tests', '--nb-flags', 'cuda', '-o', 'faulthandler_timeout=120'])
    cmd = [sys.executable, '-m', 'pytest', *args, '-v', '--durations=0', '-p', 'no:cacheprovider']
    log_file = out/f"{STEMS['suite']}{'_smoke' if smoke else ''}_pytest.log"
    log(f"pytest gets {left:.0f} s: {' '.join(cmd[1:])}")
    t0 = time.time()
    with open(log_file, 'w') as f:
        p = subprocess.Popen(cmd, env=env, cwd=C.ROOT, stdout=f, stderr=subprocess.STDOUT)
        try: rc, stopped = p.wait(timeout=left), False
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGINT); stopped = True   # pytest reports what ran so far
            try: rc = p.wait(timeout=15)
            except subprocess.TimeoutExpired: p.kill(); rc = p.wait()
    text = log_file.read_text(errors='replace')
    summary = [l.strip('= ').strip() for l in text.splitlines() if re.search(r'\d+ (passed|failed|error)', l)]
    res.update(command=' '.join(['python', *cmd[1:]]), rc=rc, stopped_by_budget=stopped, seconds=round(time.time() - t0, 1), log=log_file.name,
               summary=summary[-1] if summary else None, durations=durations(text),
               failed=[l.split()[1] for l in text.splitlines() if l.startswith('FAILED ')],
               notebooks=[l.strip() for l in text.splitlines() if '.ipynb' in l and ('PASSED' in l or 'FAILED' in l)])
    log(f"pytest: {res['summary']} (exit {rc}{', stopped by the time budget' if stopped else ''})")

def md_suite(res:dict) -> str:
    L = header(res, 'suite', 'The test suite on a GPU machine')
    su = res.get('startup', {})
    if su:
        L += ['## Start-up of a command-line process', '',
              f"`nlpbook-ch data` (start-up, imports, listing the data): {' s, '.join(map(str, su['cli_data_s']))} s wall, two runs. "
              "The slowest imports of `import nlpbook_ch.cli` (cumulative, `python -X importtime`): "
              + '; '.join(f"`{r['module'].strip()}` {r['cumulative_us'] / 1e6:.2f} s" for r in su['slowest_imports_us'][:10]) + '.', '']
    if res.get('skipped') or 'command' not in res: return '\n'.join(L + [res.get('skipped', ''), ''] + failures(res))
    d = res.get('durations', {})
    L += ['## pytest', '', f"`{res.get('command')}` with `NLPBOOK_MODE=quick`: {res.get('summary')} (exit code {res.get('rc')}"
          f"{'; stopped by the time budget' if res.get('stopped_by_budget') else ''}); the full output is `{res.get('log')}`.", '']
    if res.get('failed'): L += ['Failed: ' + ', '.join(f'`{t}`' for t in res['failed']) + '.', '']
    if res.get('notebooks'): L += ['Notebooks: ' + '; '.join(res['notebooks']) + '.', '']
    if d: L += ['| test | seconds (setup + call + teardown) |', '|---|---|'] + \
               [f"| `{k}` | {v:.1f} |" for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:40]] + ['']
    return '\n'.join(L + failures(res))

# ================================================================ command line
RUN = dict(ulmfit=part_ulmfit, gpt2=part_gpt2, cold=part_cold, classify=part_classify, full=part_full, suite=part_suite)
MARKDOWN = dict(ulmfit=md_ulmfit, gpt2=md_gpt2, cold=md_cold, classify=md_classify, full=md_full, suite=md_suite)
PART_BUDGET = dict(ulmfit=200, gpt2=200, cold=600, classify=600, full=600, suite=None)   # seconds each part may take at most (None: the rest)

def run_part(part:str, out:Path, smoke=False, deadline=None, log=print, **kw) -> dict:
    "Run one part into `out` (results saved as it goes), never past `deadline`; its result dict."
    warnings.filterwarnings('ignore')
    t0 = time.time()
    res = dict(machine=C.machine_info(), gpu=gpu_info(), smoke=smoke, part=part)
    stem = STEMS[part] + ('_smoke' if smoke else '')
    save = lambda: C.write_results(out, stem, res)
    cap = PART_BUDGET[part]
    dl = min(x for x in (deadline, t0 + cap if cap else None) if x) if (deadline or cap) else None
    if part == 'suite': kw['out'] = out   # its pytest log goes beside the results
    try: RUN[part](res, save, smoke=smoke, deadline=dl, log=log, **kw)
    except Exception as e:
        res['error'] = dict(error=f'{type(e).__name__}: {e}'[:500], trace=traceback.format_exc()[-2000:]); log(f"{part}: {res['error']['error']}")
    res['machine']['load_at_end'] = C.loadavg()
    res['total_s'] = round(time.time() - t0, 1)
    try: text = MARKDOWN[part](res)
    except Exception as e:   # a part that failed early lacks what its table needs: say what failed instead
        res.setdefault('markdown_error', dict(error=f'{type(e).__name__}: {e}'[:300]))
        text = '\n'.join(header(res, part, f'Part {part} of bench/gpu.py') + failures(res))
    md = C.write_results(out, stem, res, text)
    log(f'{part}: {res["total_s"]} s, wrote {md}')
    return res

def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--parts', default=DEFAULT_PARTS, help=f"comma-separated, of {', '.join(PARTS)} (default {DEFAULT_PARTS})")
    C.add_smoke(p, 'tiny sizes on a CPU or a GPU')
    p.add_argument('--budget', type=float, default=900, help='seconds for all parts together (default 900); parts not started in time are skipped')
    p.add_argument('--out', type=Path, default=C.RESULTS, help='folder for the results files (default bench/results)')
    p.add_argument('--full-config', type=json.loads, default=None, metavar='JSON',
                   help='part full: ULMFiTConfig overrides as JSON (default {"pretrained": false}; --smoke: the TINY preset)')
    p.add_argument('--markdown', nargs=2, metavar=('PART', 'JSON'), help="rewrite PART's markdown from its results JSON (next to it) and exit")
    a = p.parse_args(argv)
    if a.markdown:
        part, f = a.markdown[0], Path(a.markdown[1])
        if part not in MARKDOWN: p.error(f"--markdown: unknown part {part!r}; the parts are {', '.join(PARTS)}")
        if not f.is_file(): p.error(f'--markdown: no file {f}')
        from nlpbook_ch.core import atomic_path
        with atomic_path(f.with_suffix('.md')) as tmp: tmp.write_text(MARKDOWN[part](json.loads(f.read_text())))
        print(f.with_suffix('.md')); return {}
    parts = [x.strip() for x in a.parts.split(',') if x.strip()]
    bad = [x for x in parts if x not in PARTS]
    if bad or not parts: p.error(f"--parts: unknown part(s) {', '.join(bad) or '(none given)'}; choose from {', '.join(PARTS)}")
    import torch
    if not torch.cuda.is_available() and not a.smoke:
        p.error('no CUDA GPU here: this script measures a GPU (use --smoke for a dry run of its code on the CPU)')
    a.out.mkdir(parents=True, exist_ok=True)
    deadline, results = time.time() + a.budget, {}
    for part in sorted(parts, key=PARTS.index):
        if time.time() > deadline: print(f'{part}: skipped, the time budget is spent'); continue
        kw = dict(config=a.full_config) if part == 'full' else {}
        results[part] = run_part(part, a.out, smoke=a.smoke, deadline=deadline, **kw)
    return results

if __name__ == '__main__': main()
