#!/usr/bin/env python
"""How many labels is stage 1 worth? ULMFiT with n labelled reviews against the same network without stage 1 with 10x n (the ULMFiT paper's Figure 3, on the IMDB subset, CPU)

The ULMFiT paper (Howard and Ruder 2018, section 5, Figure 3) reports that on IMDB, ULMFiT with 100 labelled examples
matches training from scratch with 10 times more. This script asks the same of the project's small model: the same
AWD-LSTM (quick mode's size) with and without stage 1 (general-domain pretraining), with n and 10 x n labelled reviews.

- ULMFiT (with stage 1): the project's pretrained AWD-LSTM, its language model fine-tuned on quick mode's 400 subset
  reviews, then the classifier with gradual unfreezing and `schedule_for(n, 2)`'s batch and epochs. These rows are not
  retrained here: they are read from `bench/results/owndata_schedule.json` and `owndata_schedule_250_1000.json`, which
  measured them with the same functions, seeds, reviews and validation set.
- Without stage 1 (trained here): the same network from random weights, its language model trained from random weights
  on the same 400 reviews (the ablation's method (e), once per seed), then the classifier with `schedule_for`'s
  schedule for its own number of labelled reviews, at n and at 10 x n.
- TF-IDF + logistic regression (C by cross-validation, `owndata.tfidf_baseline`) on the same reviews.

Training reviews: the first n/2 per label by review id (`train_subset`); validation: all 1,000 `test/` reviews of the
subset. The subset has 1,000 labelled training reviews, so 10 x n reaches n = 100.

    python bench/figure3.py                       # seeds 42 43 44; n = 50 and 100, so 10 x n = 500 and 1,000 (~1 h on one core)
    python bench/figure3.py --resume              # after an interruption: only the rows not in the results file yet
    python bench/figure3.py --smoke               # one seed, n = 10 (100 without stage 1), 1 epoch per stage: minutes
    python bench/figure3.py --render bench/results/figure3.json   # rewrite the markdown and plot only

Writes bench/results/figure3.{md,json,png} (--smoke: figure3_smoke.*).
"""
import argparse, json, sys, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C   # sets the offline/cache environment defaults before fastai is imported

WITH_STAGE1 = ('owndata_schedule.json', 'owndata_schedule_250_1000.json')
"Result files of bench/owndata_schedule.py that hold ULMFiT's rows (with stage 1) for the sizes they ran."

def _load(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, C.BENCH/f'{name}.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def with_stage1_rows(folder=None) -> list:
    "ULMFiT's rows (seed, n_labelled, accuracy) from the owndata_schedule result files in `folder` (default bench/results)."
    rows = []
    for name in WITH_STAGE1:
        f = Path(folder or C.RESULTS)/name
        if not f.exists(): continue
        res = json.loads(f.read_text())
        if res.get('smoke'): continue
        rows += [dict(seed=r['seed'], n_labelled=r['n_labelled'], accuracy=r['ulmfit'], steps=r['steps'], seconds=r['seconds'],
                      tfidf=r['tfidf_cv'], source=f'bench/results/{name}') for r in res['rows']]
    return rows

def run(seeds=(42, 43, 44), sizes=(50, 100), factor=10, smoke=False, log=print, done=None, save=None) -> dict:
    "The network without stage 1 at n and `factor` x n labelled reviews, per seed; rows in `done` are kept, `save(res)` after each new row."
    import torch
    torch.set_num_threads(1)
    warnings.filterwarnings('ignore')
    from nlpbook_ch.ulmfit import ulmfit_config, imdb_paths
    from nlpbook_ch.owndata import schedule_for
    abl, sched = _load('ulmfit_ablation'), _load('owndata_schedule')
    info, t_start = C.machine_info(), time.perf_counter()
    clf_path, lm_path = imdb_paths(ulmfit_config('quick'))
    valid = abl.labelled_files(clf_path, 'test')
    xv, yv = abl.read_reviews(valid)
    counts = sorted({m for n in sizes for m in (n, factor * n)})
    rows = list(done or [])
    have = {(r['seed'], r['n_labelled']) for r in rows}
    def result(): return dict(machine=dict(info, load_at_end=C.loadavg(), total_seconds=round(time.perf_counter() - t_start, 1)),
                              seeds=list(seeds), sizes=list(sizes), factor=factor, smoke=smoke, rows=rows,
                              schedules={m: schedule_for(m, 2)['why'] for m in counts})
    for seed in seeds:
        if all((seed, m) in have for m in counts): continue
        cfg = ulmfit_config('quick', seed=seed, pretrained=False)
        enc = f'bench-lm-random-s{seed}'
        lm = abl.train_lm(cfg, lm_path, enc); vocab = lm.pop('vocab')
        log(f"seed {seed}: language model from random weights, perplexity {lm['perplexity']:.1f} in {lm['seconds']:.0f}s")
        for m in counts:
            if (seed, m) in have: continue
            r, _, tf, _ = sched.train_size(abl, cfg, m, vocab, enc, (clf_path, lm_path), (xv, yv), smoke)
            rows.append(dict(seed=seed, n_labelled=m, accuracy=r['accuracy'], steps=r['steps'], seconds=r['seconds'],
                             lm_seconds=round(lm['seconds'], 1), lm_perplexity=round(lm['perplexity'], 2), tfidf=tf['accuracy']))
            log(f"seed {seed} n={m}: without stage 1 {r['accuracy']:.4f} ({r['steps']} steps, {r['seconds']:.0f}s); TF-IDF {tf['accuracy']:.4f}")
            if save is not None: save(result())
    return result()

def _stats(xs) -> tuple:
    import statistics
    xs = list(xs)
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0), len(xs)

def summarize(res:dict, stage1:list) -> list:
    "One row per (n, factor x n): ULMFiT at n and without stage 1 at factor x n (mean, sd, seeds), and both at n."
    def at(rows, n): return [r['accuracy'] for r in rows if r['n_labelled'] == n and r['seed'] in res['seeds']]
    out = []
    for n in res['sizes']:
        m = res['factor'] * n
        u, s_n, s_m = at(stage1, n), at(res['rows'], n), at(res['rows'], m)
        tf_n = [r['tfidf'] for r in res['rows'] if r['n_labelled'] == n]
        tf_m = [r['tfidf'] for r in res['rows'] if r['n_labelled'] == m]
        out.append(dict(n=n, m=m, ulmfit=_stats(u) if u else None, scratch_n=_stats(s_n) if s_n else None,
                        scratch_m=_stats(s_m) if s_m else None, tfidf_n=_stats(tf_n)[0] if tf_n else None,
                        tfidf_m=_stats(tf_m)[0] if tf_m else None))
    return out

def _fmt(s) -> str: return '–' if s is None else f'{s[0]:.3f} ± {s[1]:.3f} ({s[2]})'

def verdict(r) -> str:
    "Does ULMFiT at n match or beat the network without stage 1 at 10 x n? Said with the spread, not just the means."
    if r['ulmfit'] is None or r['scratch_m'] is None: return 'not measured'
    (u, su, _), (s, ss, _) = r['ulmfit'], r['scratch_m']
    d = u - s
    if abs(d) <= su + ss: return f'level within the spread ({d:+.3f})'
    return f"{'ULMFiT ahead' if d > 0 else 'without stage 1 ahead'} by {abs(d):.3f}"

def plot(res:dict, stage1:list, out:Path) -> Path:
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    def series(rows, key='accuracy'):
        ns = sorted({r['n_labelled'] for r in rows if r['seed'] in res['seeds']})
        st = [_stats(r[key] for r in rows if r['n_labelled'] == n and r['seed'] in res['seeds']) for n in ns]
        return ns, [s[0] for s in st], [s[1] for s in st], max((s[2] for s in st), default=0)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ns, mu, sd, k = series(stage1)
    ax.errorbar(ns, mu, yerr=sd, marker='o', capsize=4, label='ULMFiT (stage 1: the project\'s pretrained model)')
    ns2, mu2, sd2, k2 = series(res['rows'])
    ax.errorbar(ns2, mu2, yerr=sd2, marker='s', capsize=4, label='the same network without stage 1')
    ns3 = sorted({r['n_labelled'] for r in stage1 + res['rows']})
    tf = {r['n_labelled']: r['tfidf'] for r in stage1 + res['rows']}
    ax.plot(ns3, [tf[n] for n in ns3], ls='--', color='grey', marker='.', label='TF-IDF + logistic regression')
    ax.axhline(0.5, color='black', lw=0.8, ls=':', label='chance (0.5)')
    for r in summarize(res, stage1):
        if r['ulmfit'] and r['scratch_m']:
            ax.annotate('', xy=(r['m'], r['scratch_m'][0]), xytext=(r['n'], r['ulmfit'][0]),
                        arrowprops=dict(arrowstyle='<->', color='tab:red', lw=0.8, ls='--'))
    ax.set_xscale('log')
    ax.set_xticks(ns3); ax.set_xticklabels([f'{n:,}' for n in ns3]); ax.minorticks_off()
    ax.set_xlabel('labelled training reviews (log scale)')
    ax.set_ylabel('accuracy on the 1,000 test reviews')
    ax.set_ylim(0.45, 1.0)
    ax.set_title(f'n labels with stage 1 vs {res["factor"]} x n without (red arrows)', fontsize=10)
    ax.legend(fontsize=8, loc='upper left', title=f'error bars: sd over {max(k, k2)} seeds', title_fontsize=8)
    fig.tight_layout()
    png = out.with_suffix('.png')
    from nlpbook_ch.core import atomic_path
    with atomic_path(png) as tmp: fig.savefig(tmp, dpi=110, format='png')
    plt.close(fig)
    return png

def markdown(res:dict, stage1:list, cmd:str, png:str|None) -> str:
    rows = summarize(res, stage1)
    f = res['factor']
    table = [{'n': f"{r['n']:,}", 'ULMFiT at n (mean ± sd, seeds)': _fmt(r['ulmfit']),
              f'without stage 1 at {f} x n': f"{r['m']:,}: {_fmt(r['scratch_m'])}", 'without stage 1 at n': _fmt(r['scratch_n']),
              'TF-IDF at n': '–' if r['tfidf_n'] is None else f"{r['tfidf_n']:.3f}",
              f'TF-IDF at {f} x n': '–' if r['tfidf_m'] is None else f"{r['tfidf_m']:.3f}", 'ULMFiT at n vs without at 10 x n': verdict(r)}
             for r in rows]
    per_seed = [dict(seed=r['seed'], labelled=r['n_labelled'], accuracy=f"{r['accuracy']:.4f}", steps=r['steps'],
                     seconds=f"{r['seconds']:.0f}", **{'LM perplexity': r['lm_perplexity']}) for r in res['rows']]
    sources = sorted({r['source'] for r in stage1})
    return '\n'.join([
        '# Stage 1 against ten times the labels (the ULMFiT paper\'s Figure 3, IMDB subset, CPU)', '',
        f"Generated by `{cmd}` on {res['machine']['date']}; this run {res['machine']['total_seconds']:.0f} s. Do not edit by hand: rerun the script.",
        '' if not res['smoke'] else '\n**Smoke run** (1 epoch per stage): its numbers say nothing.\n',
        '## Set-up', '', '\n\n'.join(p.replace('\n', ' ') for p in __doc__.split('\n\n')[:3]), '',
        f"ULMFiT's rows come from {', '.join(f'`{s}`' for s in sources) or '(none found)'}.", '',
        "Schedules (`schedule_for(n, 2)`):", '', '\n'.join(f'- {n}: {w}' for n, w in res['schedules'].items()), '',
        '## Results', '', C.md_table(table), '',
        "'level within the spread': the difference of the means is at most the sum of the two standard deviations.", '',
        *( [f'![ULMFiT at n vs without stage 1 at {f} x n]({png})', ''] if png else [] ),
        '### Without stage 1, per seed', '', C.md_table(per_seed), '',
        '## Machine', '', C.machine_md(res['machine']), ''])

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[42, 43, 44])
    p.add_argument('--sizes', type=int, nargs='+', default=[50, 100], help='n: labelled reviews with stage 1 (10 x n without)')
    p.add_argument('--factor', type=int, default=10)
    C.add_smoke(p, 'one seed, n = 10 (100 without stage 1), 1 epoch per stage; results named figure3_smoke')
    p.add_argument('--out', type=Path, default=C.RESULTS)
    p.add_argument('--resume', action='store_true', help='keep the rows of the existing results file; run only the others')
    p.add_argument('--render', type=Path, metavar='JSON', help='rewrite the markdown and plot of a saved run; train nothing')
    a = p.parse_args(argv)
    from nlpbook_ch.core import atomic_path
    if a.render is not None:
        res = json.loads(a.render.read_text())
        out = a.render.with_suffix('')
    else:
        stem = 'figure3_smoke' if a.smoke else 'figure3'
        out = a.out/stem
        a.out.mkdir(parents=True, exist_ok=True)
        cmd = 'python bench/figure3.py' + (' --smoke' if a.smoke else '') + (' --resume' if a.resume else '')
        done = json.loads(out.with_suffix('.json').read_text())['rows'] if a.resume and out.with_suffix('.json').exists() else None
        def save(res):
            res['cmd'] = cmd
            with atomic_path(out.with_suffix('.json')) as tmp: tmp.write_text(json.dumps(res, indent=1, default=str))
        seeds, sizes = (a.seeds[:1], [10]) if a.smoke else (a.seeds, a.sizes)
        res = run(seeds=seeds, sizes=sizes, factor=a.factor, smoke=a.smoke, done=done, save=save)
        save(res)
    stage1 = with_stage1_rows(out.parent if a.render is None and not a.smoke else None)
    png = plot(res, stage1, out).name if stage1 and not res['smoke'] else None
    with atomic_path(out.with_suffix('.md')) as tmp: tmp.write_text(markdown(res, stage1, res.get('cmd', 'python bench/figure3.py'), png))
    print(out.with_suffix('.md'))
    return res

if __name__ == '__main__': main()
