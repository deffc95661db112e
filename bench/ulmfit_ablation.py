#!/usr/bin/env python
"""How accurate is ULMFiT, against a bag-of-words baseline and without pretraining, and with how few labels? (IMDB subset, quick mode, CPU)

Methods, each over several seeds, trained on train/ (1,000 labelled reviews) and validated on test/ (1,000):
  (a) TF-IDF + logistic regression (scikit-learn);
  (b) AWD-LSTM classifier from random weights (no language model at all), the same gradual-unfreezing schedule as (c);
  (c) ULMFiT: the project's pretrained AWD-LSTM (stage 1, nlpbook_ch/pretrained/awd_lstm_imdb_small), fine-tuned as a language
      model on the review text quick mode gives it (stage 2), then the classifier on its encoder with gradual
      unfreezing (`gradual_unfreeze(learn, cfg.stages)`, stage 3);
  (d) as (c), but one `fine_tune` with the same total number of epochs instead of gradual unfreezing;
  (e) as (c) without stage 1: the same network and schedule, its language model starting from random weights.
Plus a sample-efficiency curve, (a) vs (c), with fewer labelled training reviews (the language model, which
never sees labels, is trained once per seed and reused).

    python bench/ulmfit_ablation.py                          # 3 seeds, methods a, c, e, 50/100/250/all labelled reviews (~1 h on 2 cores)
    python bench/ulmfit_ablation.py --seeds 42 --sizes 100   # one seed, one smaller size: a few minutes
    python bench/ulmfit_ablation.py --smoke                  # the TINY preset (40 reviews, a 16-wide AWD-LSTM): seconds

Writes bench/results/ulmfit_ablation{.md,.json,.png} and sample_efficiency.png (or --out DIR; the --smoke run:
ulmfit_ablation_smoke.{md,json}, no plots).
"""
import argparse, json, shlex, sys, time, warnings
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C   # sets the offline/cache environment defaults before fastai is imported

LABELS = ('neg', 'pos')

# ---------------------------------------------------------------- data
def labelled_files(path, split:str) -> list:
    "The review files of `split` ('train' or 'test') under an IMDB folder, as (file, label) pairs in a fixed order."
    path = Path(path)
    return [(f, l) for l in LABELS for f in sorted((path/split/l).glob('*.txt'))]

def read_reviews(pairs) -> tuple:
    "Texts and 0/1 labels (pos=1) of (file, label) pairs."
    return [Path(f).read_text(encoding='utf-8') for f, _ in pairs], [LABELS.index(l) for _, l in pairs]

def train_subset(n_total:int|None) -> list:
    "`n_total` labelled training reviews, balanced (n_total/2 per label), chosen the way `imdb_workdir` does (first by id)."
    from nlpbook_ch.data import imdb_workdir
    if n_total is not None and (n_total < 2 or n_total % 2): raise ValueError(f"n_total must be an even number >= 2, got {n_total}")
    return labelled_files(imdb_workdir(n_per_label=None if n_total is None else n_total // 2), 'train')

# ---------------------------------------------------------------- (a) TF-IDF + logistic regression
def tfidf_baseline(train_pairs, valid_pairs, seed:int=0, max_features:int=50_000) -> dict:
    "Fit TF-IDF (words and bigrams) + logistic regression on `train_pairs`; accuracy on `valid_pairs` and wall time."
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    t0 = time.perf_counter()
    xt, yt = read_reviews(train_pairs)
    xv, yv = read_reviews(valid_pairs)
    clf = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2 if len(xt) >= 200 else 1, sublinear_tf=True,
                                        max_features=max_features),
                        LogisticRegression(C=10.0, max_iter=2000, random_state=seed))
    clf.fit(xt, yt)
    acc = float((clf.predict(xv) == yv).mean())
    return dict(method='a', accuracy=acc, seconds=time.perf_counter() - t0, n_train=len(xt), n_valid=len(xv))

# ---------------------------------------------------------------- AWD-LSTM methods
def total_epochs(cfg) -> int: return sum(e for _, e, _ in cfg.stages)

def train_lm(cfg, lm_path, name:str) -> dict:
    "The chapter's LM step in quick mode: one frozen epoch, then unfrozen epochs; saves the encoder as `name`."
    from nlpbook_ch.ulmfit import lm_dataloaders, make_lm_learner, lm_metrics, save_encoder, free_memory
    t0 = time.perf_counter()
    dls_lm = lm_dataloaders(lm_path, cfg)
    learn = make_lm_learner(dls_lm, cfg)
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(*cfg.lm_frozen)
        learn.unfreeze()
        learn.fit_one_cycle(*cfg.lm_unfrozen)
    m = lm_metrics(learn)
    save_encoder(learn, name)
    vocab = dls_lm.vocab
    n_texts = len(dls_lm.train_ds) + len(dls_lm.valid_ds)
    try: n_tokens = int(sum(dls_lm.train.lens) + sum(dls_lm.valid.lens))
    except (AttributeError, TypeError): n_tokens = None
    del learn, dls_lm; free_memory()
    return dict(vocab=vocab, seconds=time.perf_counter() - t0, n_texts=n_texts, n_tokens=n_tokens, vocab_size=len(vocab), **m)

def _final_accuracy(learn) -> float:
    names = learn.recorder.metric_names[1:-1]
    return float(dict(zip(names, learn.recorder.values[-1]))['accuracy'])

def clf_run(cfg, dls, method:str, encoder:str|None=None, lm_path=None) -> dict:
    "Train a classifier on `dls`: 'b'/'c' gradual unfreezing (c: from `encoder`), 'd' one fine_tune from `encoder`."
    from nlpbook_ch.ulmfit import make_classifier, load_encoder, gradual_unfreeze, free_memory
    t0 = time.perf_counter()
    learn = make_classifier(dls, cfg, path=lm_path)
    if encoder is not None: learn = load_encoder(learn, encoder)
    with learn.no_bar(), learn.no_logging():
        if method in ('b', 'c'):
            stages = gradual_unfreeze(learn, cfg.stages, cfg.lr_factor)
            acc, per_stage = float(stages.accuracy.iloc[-1]), [round(float(a), 4) for a in stages.accuracy]
        elif method == 'd':
            # fine_tune(n) = 1 frozen epoch at base_lr, then n unfrozen epochs (discriminative lr): same total epochs.
            learn.fine_tune(total_epochs(cfg) - 1, cfg.quick_lr, freeze_epochs=1)
            acc, per_stage = _final_accuracy(learn), None
        else: raise ValueError(f"unknown method {method!r}")
    res = dict(method=method, accuracy=acc, seconds=time.perf_counter() - t0, n_train=len(dls.train_ds),
               n_valid=len(dls.valid_ds), stage_accuracy=per_stage)
    del learn; free_memory()
    return res

def subset_dataloaders(clf_path, cfg, keep:list, text_vocab):
    "Classifier DataLoaders like `clf_dataloaders`, but training only on the (file, label) pairs in `keep`; all of test/."
    from fastai.text.all import get_text_files
    from nlpbook_ch.ulmfit import clf_datablock, pick_batch_size, loader_kwargs
    from nlpbook_ch.core import set_seed
    wanted = {(l, Path(f).name) for f, l in keep}
    def get_items(p):
        fs = get_text_files(p, folders=['train', 'test'])
        return fs.filter(lambda f: f.parent.parent.name == 'test' or (f.parent.name, f.name) in wanted)
    set_seed(cfg.seed)
    db = clf_datablock(clf_path, cfg, text_vocab=text_vocab)
    db.get_items = get_items
    dls = db.dataloaders(clf_path, path=clf_path, bs=pick_batch_size(cfg.clf_bs, 'clf'), seq_len=cfg.seq_len, **loader_kwargs())
    assert len(dls.train_ds) == len(keep), (len(dls.train_ds), len(keep))
    return dls

# ---------------------------------------------------------------- the benchmark
def run(seeds=(42, 43, 44), sizes=(50, 100, 250), methods='ace', threads:int|None=1, log=print, curve_bs:int|None=None,
        preset:dict|None=None) -> dict:
    "Every method over `seeds`, and the sample-efficiency curve over `sizes` (plus 'all'), on `threads` torch threads; `preset`: config overrides (e.g. `TINY`)."
    import torch
    if threads: torch.set_num_threads(threads)
    from nlpbook_ch.ulmfit import ulmfit_config as _config, imdb_paths, clf_dataloaders
    ulmfit_config = lambda mode, **kw: _config(mode, **{**(preset or {}), **kw})
    info = C.machine_info()
    t_start = time.perf_counter()
    cfg0 = ulmfit_config('quick')
    with C.Timer() as t: clf_path, lm_path = imdb_paths(cfg0)   # working copies + tokenising (cached)
    log(f"data ready in {t.seconds:.1f}s: classifier {clf_path}, language model {lm_path}")
    valid = labelled_files(clf_path, 'test')
    train_all = labelled_files(clf_path, 'train')
    ablation, curve, lms = [], [], []
    for seed in seeds:
        cfg = ulmfit_config('quick', seed=seed)
        if 'a' in methods:
            r = tfidf_baseline(train_all, valid, seed=seed); r['seed'] = seed; ablation.append(r)
            log(f"seed {seed} (a) tfidf: {r['accuracy']:.4f} in {r['seconds']:.1f}s")
        if 'b' in methods:
            cfg_b = ulmfit_config('quick', seed=seed, pretrained=False)
            r = clf_run(cfg_b, clf_dataloaders(clf_path, cfg_b), 'b'); r['seed'] = seed; ablation.append(r)
            log(f"seed {seed} (b) scratch: {r['accuracy']:.4f} in {r['seconds']:.1f}s")
        if 'e' in methods:
            cfg_e = ulmfit_config('quick', seed=seed, pretrained=False)
            lm_e = train_lm(cfg_e, lm_path, f'bench-lm-random-s{seed}')
            vocab_e = lm_e.pop('vocab')
            r = clf_run(cfg_e, clf_dataloaders(clf_path, cfg_e, text_vocab=vocab_e), 'c', f'bench-lm-random-s{seed}', lm_path)
            r.update(method='e', seed=seed, lm_seconds=lm_e['seconds'], lm_perplexity=lm_e['perplexity']); ablation.append(r)
            log(f"seed {seed} (e) without stage 1: {r['accuracy']:.4f} in {r['seconds']:.1f}s (+ LM {lm_e['seconds']:.1f}s, perplexity {lm_e['perplexity']:.1f})")
        if not set('cd') & set(methods) and not sizes: continue
        enc = f'bench-lm-s{seed}'
        lm = train_lm(cfg, lm_path, enc)
        vocab = lm.pop('vocab'); lm['seed'] = seed; lms.append(lm)
        log(f"seed {seed} LM: perplexity {lm['perplexity']:.1f}, accuracy {lm['accuracy']:.3f} in {lm['seconds']:.1f}s")
        for m in ('c', 'd'):
            if m not in methods: continue
            r = clf_run(cfg, clf_dataloaders(clf_path, cfg, text_vocab=vocab), m, enc, lm_path)
            r['seed'] = seed; r['lm_seconds'] = lm['seconds']; ablation.append(r)
            log(f"seed {seed} ({m}): {r['accuracy']:.4f} in {r['seconds']:.1f}s (+ LM {lm['seconds']:.1f}s)")
        for n in sizes:
            keep = train_subset(n)
            ra = tfidf_baseline(keep, valid, seed=seed)
            cfg_n = replace(cfg, clf_bs=curve_bs) if curve_bs else cfg
            rc = clf_run(cfg_n, subset_dataloaders(clf_path, cfg_n, keep, vocab), 'c', enc, lm_path)
            for r in (ra, rc): r.update(seed=seed, n_labelled=n); curve.append(r)
            log(f"seed {seed} n={n}: (a) {ra['accuracy']:.4f}  (c) {rc['accuracy']:.4f} in {rc['seconds']:.1f}s")
    # the 'all' point of the curve is the ablation's own (a) and (c) runs
    for r in ablation:
        if r['method'] in ('a', 'c') and sizes: curve.append(dict(r, n_labelled=len(train_all)))
    info['load_at_end'] = C.loadavg()
    info['total_seconds'] = round(time.perf_counter() - t_start, 1)
    cfg_d = {k: v for k, v in vars(cfg0).items() if k not in ('mode', 'seed')}
    return dict(machine=info, seeds=list(seeds), sizes=list(sizes), config=cfg_d, ablation=ablation, lm=lms, curve=curve,
                scratch_method='e', pretrained=str(cfg0.pretrained_model), curve_bs=curve_bs, n_train=len(train_all), n_valid=len(valid),
                preset='TINY' if preset else 'quick')

NAMES = {'a': '(a) TF-IDF + logistic regression', 'b': '(b) AWD-LSTM classifier from random weights',
         'c': '(c) ULMFiT from the pretrained model: LM fine-tuning, then gradual unfreezing',
         'd': '(d) as (c), one fine_tune', 'e': '(e) ULMFiT without stage 1 (LM from random weights)'}

def plural(n:int, word:str) -> str:
    "'1 seed', '3 seeds'."
    return f"{n} {word}{'' if n == 1 else 's'}"

def _methods(ms) -> str:
    "'(c)', '(c) and (e)', '(b), (c) and (e)'."
    ms = [f'({m})' for m in sorted(ms)]
    return ms[0] if len(ms) == 1 else ', '.join(ms[:-1]) + ' and ' + ms[-1]

def described(res:dict) -> set:
    "The methods this result file has numbers for: those of its ablation, and (a) and (c) when it has a sample-efficiency curve."
    return {r['method'] for r in res['ablation']} | ({'a', 'c'} if res['curve'] else set())

def summarize(res:dict) -> tuple:
    "(ablation rows, curve rows): mean ± sd of accuracy and wall time per method (and per size)."
    rows = []
    for m in 'abcde':
        rs = [r for r in res['ablation'] if r['method'] == m]
        if not rs: continue
        acc, sd = C.mean_sd(r['accuracy'] for r in rs)
        sec, ssd = C.mean_sd(r['seconds'] for r in rs)
        lm, lsd = C.mean_sd(r['lm_seconds'] for r in rs) if m in 'cde' else (0.0, 0.0)
        tot = C.mean_sd(r['seconds'] + (r['lm_seconds'] if m in 'cde' else 0.0) for r in rs)   # per seed, for the plot's error bars
        rows.append({'method': NAMES[m], 'accuracy (mean ± sd)': f'{acc:.3f} ± {sd:.3f}',
                     'per seed': ', '.join(f"{r['accuracy']:.3f}" for r in rs),
                     'classifier time (s)': f'{sec:.0f} ± {ssd:.0f}',
                     'LM time (s)': f'{lm:.0f}' if m in 'cde' else '–',
                     'total time (s)': f'{sec + lm:.0f}', '_acc': acc, '_m': m, '_n': len(rs),
                     '_sec': (sec, ssd), '_lm': (lm, lsd), '_tot': tot})
    curve = []
    for n in sorted({r['n_labelled'] for r in res['curve']}):
        row = {'labelled reviews': n}
        for m in 'ac':
            rs = [r for r in res['curve'] if r['n_labelled'] == n and r['method'] == m]
            if rs:
                acc, sd = C.mean_sd(r['accuracy'] for r in rs)
                row['(a) TF-IDF + LR' if m == 'a' else '(c) ULMFiT'] = f'{acc:.3f} ± {sd:.3f}'
                row[f'_{m}'] = (acc, sd)
        curve.append(row)
    return rows, curve

def figure_names(stem='ulmfit_ablation') -> tuple:
    "The two plots' file names for results `stem`: the default run's `ulmfit_ablation.png` and `sample_efficiency.png`; another stem's its own."
    return ('ulmfit_ablation.png', 'sample_efficiency.png') if stem == 'ulmfit_ablation' else (f'{stem}.png', f'{stem}_sample_efficiency.png')

def plot(res:dict, out:Path, stem='ulmfit_ablation') -> list:
    "The ablation plot (accuracy and time per method) and the sample-efficiency plot (accuracy vs labelled reviews), named by `figure_names(stem)`."
    abl_png, curve_png = figure_names(stem)
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows, curve = summarize(res)
    files = []
    n_valid = res.get('n_valid', 1000)
    if rows:
        fig, axs = plt.subplots(1, 2, figsize=(11, 4.2))
        ms, x = [r['_m'] for r in rows], list(range(len(rows)))
        n_seeds = max(r['_n'] for r in rows)
        accs = [[r2['accuracy'] for r2 in res['ablation'] if r2['method'] == m] for m in ms]
        means = [C.mean_sd(a) for a in accs]
        axs[0].bar(x, [m for m, _ in means], yerr=[s for _, s in means], capsize=4, color=[f'C{i}' for i in range(len(ms))],
                   error_kw=dict(label=f'error bars: sd over {plural(n_seeds, "seed")}'))
        for i, a in enumerate(accs): axs[0].plot([i] * len(a), a, 'k.', ms=5, label='one seed' if i == 0 else None)
        axs[0].axhline(0.5, color='grey', lw=0.7, ls='--', label='chance (0.5: balanced classes)'); axs[0].set_ylim(0.4, 1.1)
        axs[0].set_xticks(x, ms)
        axs[0].set(xlabel='method', ylabel=f'validation accuracy (fraction, {n_valid:,} test reviews)',
                   title=f"Accuracy, {plural(n_seeds, 'seed')}: bar = mean")
        axs[0].legend(fontsize=7, loc='upper left', ncol=2)
        clf, lm, tot = ([r[k] for r in rows] for k in ('_sec', '_lm', '_tot'))
        has_lm = [i for i, r in enumerate(rows) if r['_m'] in 'cde']
        axs[1].bar(x, [c for c, _ in clf], label='classifier / fit')
        axs[1].bar(x, [l for l, _ in lm], bottom=[c for c, _ in clf], label='language model')
        # error bars, sd over seeds: of the classifier time on its segment, and of the total (classifier + LM) on top of the stack,
        # side by side where a method has both
        dx = [-0.12 if i in has_lm else 0.0 for i in x]
        axs[1].errorbar([i + d for i, d in zip(x, dx)], [c for c, _ in clf], yerr=[sd for _, sd in clf], fmt='none', ecolor='k',
                        capsize=4, label=f'error bars: sd over {plural(n_seeds, "seed")}, classifier time')
        if has_lm:
            axs[1].errorbar([i + 0.12 for i in has_lm], [tot[i][0] for i in has_lm], yerr=[tot[i][1] for i in has_lm], fmt='none',
                            ecolor='dimgrey', capsize=4, ls='none', label=f'error bars: sd over {plural(n_seeds, "seed")}, total time')
        top = max(max(c + sd for c, sd in clf), max(t + sd for t, sd in tot))
        axs[1].set_xticks(x, ms); axs[1].set_ylim(0, 1.4 * top if top > 0 else 1)   # headroom for the legend
        axs[1].set(xlabel='method', ylabel='wall time per seed (s)',
                   title=f"Wall time per seed ({res['machine'].get('usable_cores', '?')} CPU cores): bar = mean")
        axs[1].legend(fontsize=7, loc='upper right')
        fig.text(0.5, -0.02, '  '.join(f'{m}: {NAMES[m][4:]}' for m in ms), ha='center', fontsize=8)
        fig.tight_layout(); fig.savefig(out/abl_png, dpi=110, bbox_inches='tight'); plt.close(fig)
        files.append(out/abl_png)
    if res['curve']:
        from matplotlib.ticker import NullLocator
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        n_seeds = len({r['seed'] for r in res['curve']})
        sizes = [r['labelled reviews'] for r in curve]
        for m, lab in (('a', 'TF-IDF + logistic regression'), ('c', 'ULMFiT (LM once per seed, gradual unfreezing)')):
            pts = [(r['labelled reviews'], *r[f'_{m}']) for r in curve if f'_{m}' in r]
            if pts:
                xs, ys, sds = zip(*pts)
                ax.errorbar(xs, ys, yerr=sds, marker='o', capsize=3, label=lab)
        ax.axhline(0.5, color='grey', lw=0.7, ls='--', label='chance (0.5: balanced classes)')
        ax.set_xscale('log')
        ax.set_xticks(sizes, [str(n) for n in sizes]); ax.xaxis.set_minor_locator(NullLocator())
        ax.set(xlabel='labelled training reviews (count, balanced; log scale)',
               ylabel=f'validation accuracy (fraction, {n_valid:,} test reviews)',
               title='Sample efficiency on the IMDB subset (quick mode)')
        ax.legend(fontsize=8, title=f'mean; error bars: sd over {plural(n_seeds, "seed")}', title_fontsize=8)
        fig.tight_layout(); fig.savefig(out/curve_png, dpi=110); plt.close(fig)
        files.append(out/curve_png)
    return files

def verdict(rows) -> str:
    "One sentence naming the winner, computed from the numbers."
    if not rows: return ''
    best = max(rows, key=lambda r: r['_acc'])
    s = sorted(rows, key=lambda r: -r['_acc'])
    return (f"In this run the best mean validation accuracy is **{best['method']}** ({best['_acc']:.3f}); "
            f"ranking: " + ' > '.join(f"{r['_m']} ({r['_acc']:.3f})" for r in s) + '.')

def markdown(res:dict, smoke:bool, cmd:str, stem='ulmfit_ablation') -> str:
    rows, curve = summarize(res)
    cfg = res['config']
    abl_png, curve_png = figure_names(stem)
    cbs = res.get('curve_bs')
    ep = sum(e for _, e, _ in cfg['stages'])
    lm = res['lm']
    lm_line = ''
    if lm:
        ppl = C.mean_sd(r['perplexity'] for r in lm); acc = C.mean_sd(r['accuracy'] for r in lm)
        tok = f", {lm[0]['n_tokens']:,} tokens, vocabulary {lm[0]['vocab_size']:,}" if lm[0].get('n_tokens') else ''
        lm_line = (f"Language model (per seed, {lm[0]['n_texts']} reviews{tok}, 10% held out): validation perplexity "
                   f"{ppl[0]:.1f} ± {ppl[1]:.1f}, next-word accuracy {acc[0]:.3f} ± {acc[1]:.3f}, "
                   f"{C.mean_sd(r['seconds'] for r in lm)[0]:.0f} s.")
    pub = [{k: v for k, v in r.items() if not k.startswith('_')} for r in rows]
    pcurve = [{k: v for k, v in r.items() if not k.startswith('_')} for r in curve]
    m = res['machine']
    n_train, n_valid = res.get('n_train', 1000), res.get('n_valid', 1000)   # runs before these were recorded: quick mode's 1,000 each
    ran = described(res)
    not_run = set('abcde') - ran
    n_seeds = len(res['seeds'])
    follow_up = bool(cbs) and not rows
    title = (f"# ULMFiT at {', '.join(map(str, res['sizes']))} labelled reviews with batch {cbs} (follow-up to ulmfit_ablation.md)"
             if follow_up else '# ULMFiT ablation on the shipped IMDB subset (quick mode, CPU)')
    parts = [
        title, '',
        *([f"The sample-efficiency points of `ulmfit_ablation.md` with the classifier's batch {cbs} instead of {cfg['clf_bs']}; "
           "nothing else changes.", ''] if follow_up else []),
        f"Generated by `{cmd}`{' (**--smoke**: the TINY preset; its numbers mean nothing)' if smoke else ''} on {m['date']}; "
        f"whole run {m['total_seconds']:.0f} s. Do not edit by hand: rerun the script.", '',
        '## Set-up', '',
        f"- Training: `train/` of the subset, {n_train:,} labelled reviews ({n_train // 2:,} pos, {n_train // 2:,} neg); validation: all "
        f"{n_valid:,} `test/` reviews, the same split for every method and seed. "
        f"{'Seeds' if len(res['seeds']) > 1 else 'Seed'}: {', '.join(map(str, res['seeds']))}.",
    ]
    if not_run:
        parts.append(f"- Methods run: {_methods(ran)}. Defined in the script but not run for this file: "
                     + '; '.join(NAMES[x] for x in sorted(not_run))
                     + " (`python bench/ulmfit_ablation.py --methods abcde` runs all five).")
    if ran & set('bcde'):
        pre, rnd = ran & set('cd'), ran & set('be')
        starts = lambda ms: _methods(ms) + (' starts' if len(ms) == 1 else ' start')
        parts.append(f"- AWD-LSTM methods use `ulmfit_config('quick', seed=s)`: AWD-LSTM {cfg['arch']}, batch {cfg['clf_bs']}"
                     + (f" ({cbs} for the sample-efficiency curve's smaller sets)" if cbs else '') + f", BPTT {cfg['seq_len']}. "
                     + '; '.join(([f"{starts(pre)} from the project's pretrained AWD-LSTM `{res.get('pretrained')}` (stage 1: 75,000 IMDB "
                                   f"train+unsup reviews, never test/; see its model card)"] if pre else [])
                                 + ([f"{starts(rnd)} from random weights (`pretrained=False`)"] if rnd else [])) + '.')
    if 'a' in ran:
        parts.append("- (a) scikit-learn `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)` + "
                     "`LogisticRegression(C=10)`. It is deterministic, so its sd over seeds is 0.")
    if gu := ran & set('bce'):
        parts.append(f"- {_methods(gu)} train{'s' if len(gu) == 1 else ''} the classifier with "
                     f"{'the same schedule, ' if len(gu) > 1 else ''}`gradual_unfreeze(learn, cfg.stages)` = "
                     f"{list(map(tuple, cfg['stages']))} ({plural(ep, 'epoch')}).")
    if 'd' in ran:
        parts.append(f"- (d) `learn.fine_tune({ep - 1}, {cfg['quick_lr']}, freeze_epochs=1)`: the same {plural(ep, 'epoch')} total.")
    if with_lm := sorted(ran & set('cde')):
        parts.append(f"- Stage 2, the LM on the subset ({', '.join(with_lm)}; once per seed): `imdb_paths(cfg)`'s language-model copy, "
                     f"cfg.lm_n_per_label={cfg['lm_n_per_label']} reviews per split and label + cfg.lm_n_unsup={cfg['lm_n_unsup']} unlabelled; "
                     f"`fit_one_cycle{tuple(cfg['lm_frozen'])}` frozen, then `fit_one_cycle{tuple(cfg['lm_unfrozen'])}` unfrozen. "
                     f"As in the chapter, it reads the text (never the labels) of some test reviews; the stage-1 model never saw any.")
    parts += [
        f"- Times are wall-clock seconds per seed on the machine below ({m.get('usable_cores', '?')} cores, load average "
        f"{m.get('load_at_start', '?')} at the start), with {plural(m['torch_threads'], 'torch thread')} (`--threads`): compare ratios within "
        f"this run only. "
        f"'Classifier time' is the learner's creation, encoder loading and training (DataLoaders are built before it)"
        + (f"; {'/'.join(f'({x})' for x in with_lm)} also need{'s' if len(with_lm) == 1 else ''} the LM (its DataLoaders included), "
           f"counted once per seed in 'LM time'." if with_lm else '.'),
        '', '## Results', '', C.md_table(pub) if pub else '(This run trained no ablation method: only the sample-efficiency curve.)',
        '', lm_line, '', verdict(rows), '',
    ]
    if pcurve:
        sizes_txt = ', '.join(str(r['labelled reviews']) for r in pcurve)
        bs, n0 = cbs or cfg['clf_bs'], min(r['labelled reviews'] for r in pcurve)
        parts += ['## Sample efficiency: (a) vs (c)', '',
                  f"Labelled training reviews: {sizes_txt} (balanced: the first n/2 per label by review id, via "
                  f"`imdb_workdir(n_per_label=n/2)`); validation always all {n_valid:,} test reviews. The LM is trained once per seed "
                  f"and its encoder reused at every size; the largest size is the ablation's own (a) and (c) runs. "
                  f"The classifier keeps batch size {bs} and its {ep}-epoch schedule, so smaller sets get fewer "
                  f"optimiser steps (fastai drops the last partial training batch: with {n0} reviews at batch {bs} each epoch is "
                  f"{'one batch' if n0 // bs == 1 else f'{n0 // bs} batches'}).",
                  '', C.md_table(pcurve), '']
        if not smoke:
            nc = len({r['seed'] for r in res['curve']})
            parts += [f'![sample efficiency]({curve_png})', '',
                      f"*Sample efficiency*: accuracy (mean over {plural(nc, 'seed')}) against the number of labelled training reviews, "
                      f"log axis ticked at each count used; error bars: sd over {plural(nc, 'seed')}; dashed line: chance (0.5).", '']
    if not smoke and rows:
        parts += [f'![ablation]({abl_png})', '',
                  f"*Ablation*: left, accuracy per method (bar: mean; error bar: sd over {plural(n_seeds, 'seed')}; dots: single seeds; "
                  f"dashed line: chance); right, wall time per seed, classifier plus language model stacked (bar: mean), with two "
                  f"error bars, sd over {plural(n_seeds, 'seed')}: of the classifier time (black, on its segment) and, for methods "
                  f"with a language model, of the total time (grey, on top).", '']
    parts += ['## Reading it', '',
              ("Stage 1 is what (c) has and (e) lacks: the same network, data and schedule, with and without the project's "
               "pretrained language model. " if {'c', 'e'} <= ran else '') +
              "The chapter (0.943 after gradual unfreezing) and the ULMFiT paper (95.4% with a "
              "forward+backward ensemble; about 95.0% for a forward model, about 94.4% without WikiText-103 pretraining) use "
              f"25,000 labelled reviews, a larger AWD-LSTM (400/1,152/3) and WikiText-103; this table uses {n_train:,} labelled reviews "
              "and a small model pretrained on IMDB text only, so compare its rows with each other.", '',
              '## Machine', '', C.machine_md(m), '']
    return '\n'.join(parts)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    C.add_smoke(p, 'the TINY preset, 1 seed, methods a/c/e and the curve at 10 labelled reviews')
    p.add_argument('--seeds', type=int, nargs='+', help='seeds (default 42 43 44; --smoke: 42)')
    p.add_argument('--sizes', type=int, nargs='*', help='labelled-review counts below all (default 50 100 250; --smoke: 10)')
    p.add_argument('--methods', default='ace', help='which of a-e to run (default ace; empty: only the sample-efficiency curve)')
    p.add_argument('--curve-bs', type=int, default=None, help="classifier batch size for the curve's smaller training sets (default: the config's)")
    p.add_argument('--stem', default=None, help='results file name (default ulmfit_ablation)')
    p.add_argument('--threads', type=int, default=1,
                   help='torch threads (default 1: on a 2-core machine shared with other work one thread was faster than two, see bench/README.md)')
    p.add_argument('--out', type=Path, default=C.RESULTS, help='output folder (default bench/results)')
    p.add_argument('--render', type=Path, metavar='JSON', help="re-render the markdown and plots of a saved run's .json; train nothing")
    a = p.parse_args(argv)
    if a.render:
        res = json.loads(a.render.read_text())
        smoke = a.render.stem.endswith('_smoke')
        cmd = res.get('cmd') or 'python bench/ulmfit_ablation.py' + (' --smoke' if smoke else '')
        C.write_results(a.render.parent, a.render.stem, res, markdown(res, smoke, cmd, a.render.stem))
        if not smoke: plot(res, a.render.parent, a.render.stem)
        return res
    seeds = a.seeds or ([42] if a.smoke else [42, 43, 44])
    sizes = a.sizes if a.sizes is not None else ([10] if a.smoke else [50, 100, 250])
    warnings.filterwarnings('ignore')
    a.out.mkdir(parents=True, exist_ok=True)
    from nlpbook_ch.ulmfit import TINY
    res = run(seeds, sizes, methods=a.methods, threads=a.threads, curve_bs=a.curve_bs, preset=TINY if a.smoke else None)
    stem = a.stem or ('ulmfit_ablation_smoke' if a.smoke else 'ulmfit_ablation')
    cmd = res['cmd'] = ' '.join(['python bench/ulmfit_ablation.py'] + [shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv)])
    if not a.smoke: plot(res, a.out, stem)   # the smoke run leaves the default run's plots alone
    C.write_results(a.out, stem, res, markdown(res, a.smoke, cmd, stem))
    rows, curve = summarize(res)
    print(C.md_table([{k: v for k, v in r.items() if not k.startswith('_')} for r in rows]))
    if curve: print(); print(C.md_table([{k: v for k, v in r.items() if not k.startswith('_')} for r in curve]))
    print(); print(verdict(rows)); print(f"total {res['machine']['total_seconds']:.0f}s; wrote {a.out/stem}.md")
    return res

if __name__ == '__main__': main()
