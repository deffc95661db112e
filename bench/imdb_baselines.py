#!/usr/bin/env python
"""The classical baselines on IMDB at the chapter's scale: all 25,000 `train/` reviews, tested on all 25,000 `test/` reviews.

Two bag-of-words models from `nlpbook_ch.owndata`, on the same split:
  - `tfidf_baseline`: TF-IDF (word 1-2 grams, sublinear tf, min_df=2) + logistic regression (liblinear);
  - `nbsvm_baseline`: NB-SVM (Wang and Manning 2012): binarised word 1-2 grams scaled by naive-Bayes log-count ratios,
    a linear SVM, weights interpolated towards their mean magnitude (beta=0.25).
Each chooses its C by 5-fold stratified cross-validation (macro-F1) on `train/` only; `test/` is read once, for the
final predictions. The reviews are read from the unpacked archive (`find_data('imdb_full')`) as they are: no
duplicates are dropped (a few test reviews repeat a training review's text; the result file counts them), so the test
set is the standard one. The published NB-SVM figure on the same split (91.22%, Wang and Manning 2012, NBSVM-bi) is
printed beside.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice python bench/imdb_baselines.py   # the full set: minutes
    python bench/imdb_baselines.py --smoke    # the shipped 2,000-review subset (1,000 train, 1,000 test): seconds

Writes bench/results/imdb_full_baselines.{json,md} (--smoke: imdb_subset_baselines_smoke.*; --out DIR elsewhere).
"""
import argparse, json, os, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C   # offline/cache defaults before torch or fastai are imported

PUBLISHED = dict(nbsvm=dict(accuracy=0.9122, source='Wang and Manning (2012), "Baselines and Bigrams", NBSVM-bi on the IMDB '
                                                     'review set of Maas et al. (2011): 25,000 train, 25,000 test'))
METHODS = {'tfidf_lr': 'TF-IDF (1-2 grams, sublinear tf) + logistic regression', 'nbsvm': 'NB-SVM (binarised 1-2 grams, Wang and Manning 2012)'}
LABELS = ('neg', 'pos')

def read_split(root:Path, split:str) -> tuple:
    "Texts and labels of `root/split/{neg,pos}/*.txt`, in a fixed order (decoded as UTF-8, never split into lines)."
    files = [(f, l) for l in LABELS for f in sorted((root/split/l).glob('*.txt'))]
    if not files: raise FileNotFoundError(f"No reviews in {root/split}/neg or pos")
    return [f.read_bytes().decode('utf-8') for f, _ in files], [l for _, l in files]

def run(smoke=False, cv:int=5, seed:int=0, log=print) -> dict:
    "Both baselines on the full IMDB split (or the shipped subset with `smoke`); times per step, machine and versions."
    from nlpbook_ch.data import find_data
    from nlpbook_ch.owndata import tfidf_baseline, nbsvm_baseline
    info = C.machine_info()
    info.update({k: os.environ.get(k, 'unset') for k in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS')})
    root = find_data('imdb' if smoke else 'imdb_full')
    t0 = time.perf_counter()
    with C.Timer() as t: (xt, yt), (xv, yv) = read_split(root, 'train'), read_split(root, 'test')
    log(f"read {len(xt):,} train and {len(xv):,} test reviews from {root} in {t.seconds:.1f}s")
    seen = set(xt)
    res = dict(machine=info, data=dict(path=str(root), n_train=len(xt), n_test=len(xv), read_seconds=round(t.seconds, 1),
                                       train_counts={l: yt.count(l) for l in LABELS}, test_counts={l: yv.count(l) for l in LABELS},
                                       test_texts_also_in_train=sum(x in seen for x in xv)),
               cv_folds=cv, seed=seed, smoke=smoke, methods={})
    for name, fn in (('tfidf_lr', tfidf_baseline), ('nbsvm', nbsvm_baseline)):
        r = fn(xt, yt, xv, yv, seed=seed, cv=cv)
        r.pop('predictions')
        r['seconds_by_step'] = {k: round(v, 1) for k, v in r['seconds_by_step'].items()}
        r['seconds'] = round(r['seconds'], 1)
        res['methods'][name] = r
        log(f"{name}: accuracy {r['accuracy']:.4f}, macro-F1 {r['macro_f1']:.4f}, C {r['C']}, {r['seconds']:.0f}s "
            f"({', '.join(f'{k} {v:.0f}s' for k, v in r['seconds_by_step'].items())})")
    res['total_seconds'] = round(time.perf_counter() - t0, 1)
    res['machine']['load_at_end'] = C.loadavg()
    res['published'] = PUBLISHED
    return res

def markdown(res:dict, cmd:str) -> str:
    "The result file's markdown: set-up, results beside the published figure, per-class reports, machine."
    from nlpbook_ch.owndata import report_markdown
    d, m = res['data'], res['methods']
    scope = ('the shipped subset (a smoke run: its numbers say nothing about the full set)' if res['smoke'] else
             'the full IMDB review set')
    rows = [{'method': METHODS[k], 'test accuracy': f"{r['accuracy']:.4f}", 'macro-F1': f"{r['macro_f1']:.4f}", 'C (5-fold CV on train)'
             if res['cv_folds'] == 5 else 'C (CV on train)': r['C'], 'features': f"{r['n_features']:,}",
             'published': f"{PUBLISHED[k]['accuracy']:.4f}" if k in PUBLISHED else '–',
             'seconds: features / choose C / fit+predict': ' / '.join(f'{v:.0f}' for v in r['seconds_by_step'].values()),
             'total s': f"{r['seconds']:.0f}"} for k, r in m.items()]
    out = [f"# Bag-of-words baselines on {scope}", '',
           f"Generated by `{cmd}` on {res['machine']['date']}; whole run {res['total_seconds']:.0f} s. Do not edit by hand: rerun the script.", '',
           '## Set-up', '',
           f"- Data: `{d['path']}`: {d['n_train']:,} `train/` reviews ({', '.join(f'{l} {n:,}' for l, n in d['train_counts'].items())}), "
           f"{d['n_test']:,} `test/` reviews ({', '.join(f'{l} {n:,}' for l, n in d['test_counts'].items())}), read in {d['read_seconds']:.0f} s. "
           f"Nothing is dropped: {d['test_texts_also_in_train']:,} test reviews have the exact text of a training review.",
           f"- `nlpbook_ch.owndata.tfidf_baseline` and `nbsvm_baseline`, seed {res['seed']}: C chosen by {res['cv_folds']}-fold stratified "
           "cross-validation (mean macro-F1) on `train/` only (grids `TFIDF_CS`, `NBSVM_CS`), then one fit on all of `train/` and one "
           "prediction of `test/`.",
           "- Times are wall-clock seconds of one process on the machine below (its load is recorded at the start and end); "
           "'features' is fitting the vectoriser on `train/` and transforming both splits.", '',
           '## Results', '', C.md_table(rows), '',
           f"Cross-validated macro-F1 per C: " + '; '.join(f"{k}: " + ', '.join(f'{c:g} {s:.4f}' for c, s in r['cv_macro_f1'].items())
                                                           for k, r in m.items()), '',
           f"Published: {PUBLISHED['nbsvm']['source']}, test accuracy {PUBLISHED['nbsvm']['accuracy']:.2%}.", '']
    for k, r in m.items(): out += [report_markdown(r['report'], title=METHODS[k])]
    out += ['## Machine', '', C.machine_md(res['machine']), '']
    return '\n'.join(out)

def write(res:dict, out:Path, stem:str, cmd:str) -> Path:
    "`stem`.json and `stem`.md in `out`, each written atomically."
    from nlpbook_ch.core import atomic_path
    out.mkdir(parents=True, exist_ok=True)
    for ext, text in (('json', json.dumps(res, indent=1, default=str)), ('md', markdown(res, cmd))):
        with atomic_path(out/f'{stem}.{ext}') as tmp: tmp.write_text(text)
    return out/f'{stem}.md'

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--smoke', action='store_true', help="the shipped subset (1,000 + 1,000 reviews), 3 folds: seconds; results named *_smoke")
    p.add_argument('--cv', type=int, default=None, help='cross-validation folds for C (default 5; --smoke: 3)')
    p.add_argument('--out', type=Path, default=C.RESULTS, help='folder for the result files (default bench/results)')
    a = p.parse_args(argv)
    cv = a.cv or (3 if a.smoke else 5)
    res = run(smoke=a.smoke, cv=cv)
    cmd = 'python bench/imdb_baselines.py' + (' --smoke' if a.smoke else '') + (f' --cv {a.cv}' if a.cv else '')
    print(write(res, a.out, 'imdb_subset_baselines_smoke' if a.smoke else 'imdb_full_baselines', cmd))

if __name__ == '__main__': main()
