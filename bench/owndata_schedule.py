#!/usr/bin/env python
"""Does `schedule_for` fix ULMFiT with few labels? The sample-efficiency points of `ulmfit_ablation.py`, re-run with the
classifier's batch and epochs from `nlpbook_ch.owndata.schedule_for` instead of quick mode's (batch 32, 1 epoch per stage).

Everything else is the ablation's (c), reusing its functions: the project's pretrained AWD-LSTM, the language model
fine-tuned once per seed on quick mode's 400 subset reviews (`train_lm`, as for the ablation's curve), the
first n/2 training reviews per label (`train_subset`), validation on all 1,000 `test/` reviews of the subset. Beside
it, the TF-IDF baselines on the same reviews: the ablation's (C=10) and `owndata.tfidf_baseline` (C by cross-validation).

During training each epoch validates on one batch only (the stages' own accuracies are not used); the final model is
then validated on all 1,000 test reviews, which is the number reported.

    python bench/owndata_schedule.py                    # seeds 42 43 44, 50 and 100 labelled reviews
    python bench/owndata_schedule.py --sizes 50 1000    # other sizes
    python bench/owndata_schedule.py --smoke            # one seed, 50 reviews, 1 epoch per stage: a smoke run
    python bench/owndata_schedule.py --resume           # after an interruption: only the (seed, size) pairs not in the file yet

Writes bench/results/owndata_schedule.{md,json} (--smoke: owndata_schedule_smoke.*; --stem NAME: NAME.*).
"""
import argparse, json, sys, time, warnings
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

ABLATION = {50: (0.527, 0.683), 100: (0.744, 0.720), 250: (0.809, 0.766), 1000: (0.860, 0.817)}
"labelled reviews -> (ULMFiT with quick mode's batch 32 and 4 epochs, TF-IDF with C=10): means over 3 seeds, bench/results/ulmfit_ablation.md."

def _load_ablation():
    import importlib.util
    spec = importlib.util.spec_from_file_location('ulmfit_ablation', C.BENCH/'ulmfit_ablation.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def train_scheduled(cfg, dls, encoder:str, lm_path) -> dict:
    "Gradual unfreezing with `cfg.stages` from the fine-tuned `encoder`, validating on one batch per epoch; accuracy on the full validation set."
    from nlpbook_ch.ulmfit import make_classifier, load_encoder, gradual_unfreeze, free_memory
    t0 = time.perf_counter()
    full_valid = dls.valid
    dls.valid = full_valid.new(shuffle=False, drop_last=False, n=full_valid.bs)   # one batch: cheap per-epoch metrics
    learn = make_classifier(dls, cfg, path=lm_path)
    learn = load_encoder(learn, encoder)
    with learn.no_bar(), learn.no_logging(): gradual_unfreeze(learn, cfg.stages, cfg.lr_factor)
    train_s = time.perf_counter() - t0
    with learn.no_bar(), learn.no_logging(): loss, acc = learn.validate(dl=full_valid)
    dls.valid = full_valid
    res = dict(accuracy=float(acc), n_train=len(dls.train_ds), n_valid=len(full_valid.dataset), train_seconds=round(train_s, 1),
               seconds=round(time.perf_counter() - t0, 1), steps=sum(e for _, e, _ in cfg.stages) * (len(dls.train_ds) // cfg.clf_bs))
    del learn; free_memory()
    return res

def train_size(abl, cfg, n:int, vocab, encoder:str, paths, valid_xy, smoke=False) -> tuple:
    "One size of the few-label benchmarks: the first n/2 training reviews per label, `schedule_for(n, 2)`'s batch and epochs (1 per stage if `smoke`) from the fine-tuned `encoder`; TF-IDF (C by cross-validation) on the same reviews. Returns (the classifier's result, the schedule, TF-IDF's result, the reviews)."
    from nlpbook_ch.owndata import schedule_for, tfidf_baseline
    clf_path, lm_path = paths
    keep, s = abl.train_subset(n), schedule_for(n, 2)
    stages = tuple((ft, 1, lr) for ft, _, lr in s['stages']) if smoke else s['stages']
    cfg_n = replace(cfg, clf_bs=s['clf_bs'], stages=stages)
    r = train_scheduled(cfg_n, abl.subset_dataloaders(clf_path, cfg_n, keep, vocab), encoder, lm_path)
    xt, yt = abl.read_reviews(keep)
    return r, s, tfidf_baseline(xt, yt, *valid_xy, seed=0), keep

def run(seeds=(42, 43, 44), sizes=(50, 100), smoke=False, log=print, done:list|None=None, save=None) -> dict:
    "Every (seed, size); rows in `done` are kept and not rerun; `save(res)` after each new row (a killed run keeps what it finished)."
    import torch
    torch.set_num_threads(1)
    warnings.filterwarnings('ignore')
    from nlpbook_ch.ulmfit import ulmfit_config, imdb_paths
    from nlpbook_ch.owndata import schedule_for
    abl = _load_ablation()
    info, t_start = C.machine_info(), time.perf_counter()
    clf_path, lm_path = imdb_paths(ulmfit_config('quick'))
    valid = abl.labelled_files(clf_path, 'test')
    xv, yv = abl.read_reviews(valid)
    rows, schedules = list(done or []), {}
    have = {(r['seed'], r['n_labelled']) for r in rows}
    def result(): return dict(machine=dict(info, load_at_end=C.loadavg(), total_seconds=round(time.perf_counter() - t_start, 1)),
                              seeds=list(seeds), sizes=list(sizes), smoke=smoke, rows=rows, schedules=dict(schedules))
    for seed in seeds:
        for n in sizes: schedules[n] = schedule_for(n, 2)
        if all((seed, n) in have for n in sizes): continue
        cfg = ulmfit_config('quick', seed=seed)
        enc = f'bench-lm-s{seed}'
        lm = abl.train_lm(cfg, lm_path, enc); vocab = lm.pop('vocab')
        log(f"seed {seed}: LM perplexity {lm['perplexity']:.1f} in {lm['seconds']:.0f}s")
        for n in sizes:
            if (seed, n) in have: continue
            r, s, tf, keep = train_size(abl, cfg, n, vocab, enc, (clf_path, lm_path), (xv, yv), smoke)
            tf10 = abl.tfidf_baseline(keep, valid, seed=seed)
            rows.append(dict(seed=seed, n_labelled=n, ulmfit=r['accuracy'], steps=r['steps'], seconds=r['seconds'], lm_seconds=round(lm['seconds'], 1),
                             tfidf_cv=tf['accuracy'], tfidf_cv_C=tf['C'], tfidf_C10=tf10['accuracy']))
            log(f"seed {seed} n={n}: ULMFiT (schedule_for: batch {s['clf_bs']}, {r['steps']} steps) {r['accuracy']:.4f} in {r['seconds']:.0f}s; "
                f"TF-IDF C by CV {tf['accuracy']:.4f} (C {tf['C']}), C=10 {tf10['accuracy']:.4f}")
            if save is not None: save(result())
    return result()

def markdown(res:dict, cmd:str) -> str:
    import pandas as pd
    df = pd.DataFrame(res['rows'])
    g = df.groupby('n_labelled')
    table = [dict(**{'labelled reviews': n, 'ULMFiT, schedule_for (mean ± sd)': f"{x.ulmfit.mean():.3f} ± {x.ulmfit.std(ddof=1) if len(x) > 1 else 0:.3f}",
                   'per seed': ', '.join(f'{a:.3f}' for a in x.ulmfit), 'optimiser steps': int(x.steps.iloc[0]),
                   "ULMFiT, quick mode's schedule (ablation)": f'{ABLATION[n][0]:.3f}' if n in ABLATION else '–',
                   'TF-IDF, C by CV': f"{x.tfidf_cv.mean():.3f}", 'TF-IDF, C=10 (the ablation\'s)': f"{x.tfidf_C10.mean():.3f}",
                   'classifier s per seed': f"{x.seconds.mean():.0f}"}) for n, x in g]
    sched = '\n'.join(f"- {n}: {s['why']}" for n, s in res['schedules'].items())
    return '\n'.join([
        '# ULMFiT with few labels: quick mode\'s schedule vs `schedule_for`', '',
        f"Generated by `{cmd}` on {res['machine']['date']}; {'the last (resumed) part of the run' if '--resume' in cmd else 'whole run'} "
        f"{res['machine']['total_seconds']:.0f} s (each row's own time is in the table). Do not edit by hand: rerun the script.",
        '' if not res['smoke'] else '\n**Smoke run** (1 epoch per stage): its numbers say nothing.\n',
        '## Set-up', '', '\n\n'.join(p.replace('\n', ' ') for p in __doc__.split('\n\n')[:3]), '',
        "Schedules (`schedule_for(n, 2)`; only the classifier's part is used: the language models are quick mode's, as in the ablation):",
        '', sched, '',
        '## Results', '', C.md_table(table), '',
        "'quick mode's schedule (ablation)': ULMFiT with batch 32 and one epoch per stage (4 in all), the mean over seeds 42-44 in "
        "`bench/results/ulmfit_ablation.md`: language models trained the same way (same seeds and reviews, on the machine of that run), "
        "the same labelled reviews and validation set.", '',
        '## Machine', '', C.machine_md(res['machine']), ''])

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[42, 43, 44])
    p.add_argument('--sizes', type=int, nargs='+', default=[50, 100])
    p.add_argument('--smoke', action='store_true', help='one seed, 50 reviews, 1 epoch per stage; results named *_smoke')
    p.add_argument('--out', type=Path, default=C.RESULTS)
    p.add_argument('--stem', default=None, help='result file names (default owndata_schedule, --smoke: owndata_schedule_smoke)')
    p.add_argument('--resume', action='store_true', help="keep the (seed, size) rows of the existing result file; run only the others")
    p.add_argument('--md', type=Path, default=None, help='only rewrite the markdown of an existing result JSON, next to it')
    a = p.parse_args(argv)
    if a.md is not None:
        res = json.loads(a.md.read_text()); res['schedules'] = {int(k): v for k, v in res['schedules'].items()}
        from nlpbook_ch.core import atomic_path
        with atomic_path(a.md.with_suffix('.md')) as tmp: tmp.write_text(markdown(res, res.get('cmd', 'python bench/owndata_schedule.py')))
        return print(a.md.with_suffix('.md'))
    cmd = ('python bench/owndata_schedule.py' + (' --smoke' if a.smoke else '')
           + ('' if a.seeds == [42, 43, 44] or a.smoke else ' --seeds ' + ' '.join(map(str, a.seeds)))
           + ('' if a.sizes == [50, 100] or a.smoke else ' --sizes ' + ' '.join(map(str, a.sizes))) + (f' --stem {a.stem}' if a.stem else ''))
    from nlpbook_ch.core import atomic_path
    stem = a.stem or ('owndata_schedule_smoke' if a.smoke else 'owndata_schedule')
    a.out.mkdir(parents=True, exist_ok=True)
    def save(res):
        res['cmd'] = cmd + (' --resume' if a.resume else '')
        for ext, text in (('json', json.dumps(res, indent=1, default=str)), ('md', markdown(res, res['cmd']))):
            with atomic_path(a.out/f'{stem}.{ext}') as tmp: tmp.write_text(text)
    done = json.loads((a.out/f'{stem}.json').read_text())['rows'] if a.resume and (a.out/f'{stem}.json').exists() else None
    save(run(seeds=a.seeds[:1] if a.smoke else a.seeds, sizes=[50] if a.smoke else a.sizes, smoke=a.smoke, done=done, save=save))
    print(a.out/f'{stem}.md')

if __name__ == '__main__': main()
