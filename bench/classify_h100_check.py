#!/usr/bin/env python
"""`predict_texts` on a CUDA machine: tokenising in worker processes, fp32 vs fp16 autocast, the per-review baseline.

Run once on the lent H100 machine (16 cores) for issue 11, item 1, to set `cli.TEXTS_PER_WORKER` and to check the `amp`
path, which the 2-core CPU machine cannot run. The trained bench classifier (21 MB) did not fit in the machine's
64 MiB transfer with the repository and the carried packages, so this script builds a classifier of the same
architecture (the project's 256/512/2 AWD-LSTM) on the shipped sample's 1,000 reviews with *random* weights: its
probabilities stay near 0.5, so the differences below say that the paths compute the same function, not how often fp16
would flip a trained model's label. (The run used this script with the texts read from a copy of the sample; the
measured code was `nlpbook_ch.cli` as committed, except `TEXTS_PER_WORKER`, then 250: the timings of `predict_texts`
at 1,000 reviews tokenised in 4 workers, not 15.)

    python bench/classify_h100_check.py            # on a CUDA machine: writes $OUT/classify_h100.json (default bench/results)
    python bench/classify_h100_check.py --md FILE  # the markdown summary of a result file, next to it
"""
import argparse, json, os, sys, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent)); import _common as C

def run() -> dict:
    warnings.filterwarnings('ignore')
    import torch, pandas as pd
    from fastai.text.all import TextDataLoaders, text_classifier_learner, AWD_LSTM, awd_lstm_clas_config
    import nlpbook_ch.cli as cli
    from nlpbook_ch.ulmfit import predict_text, SMALL_AWD_LSTM
    from nlpbook_ch.data import load_imdb_sample
    res = dict(cores=len(os.sched_getaffinity(0)), gpu=torch.cuda.get_device_name(0), torch=torch.__version__)
    texts = load_imdb_sample()['text'].tolist()
    df = pd.DataFrame(dict(text=texts, label=['pos', 'neg'] * (len(texts) // 2), is_valid=[False] * 900 + [True] * 100))
    dls = TextDataLoaders.from_df(df, text_col='text', label_col='label', valid_col='is_valid', seq_len=72, bs=64)
    learn = text_classifier_learner(dls, AWD_LSTM, config=dict(awd_lstm_clas_config, **SMALL_AWD_LSTM), pretrained=False, drop_mult=0.5)
    learn.model.cuda(); res['vocab'] = len(dls.vocab[0])
    sync = torch.cuda.synchronize
    ref_ids = learn.dls.test_dl(texts).dataset
    cli.text_ids(learn, texts, n_workers=0)   # warm-up: spaCy's lexemes
    tok = {}
    for n in (250, 500, 1000):
        for w in (0, 2, 4, 8, 15):
            if w and n // w < 30: continue
            t = time.perf_counter(); ids = cli.text_ids(learn, texts[:n], n_workers=w); tok[f'{n}_{w}'] = round(time.perf_counter() - t, 3)
            assert all(torch.equal(a, ref_ids[i][0]) for i, a in enumerate(ids))
    res['tokenise_s'] = tok
    one = torch.stack([predict_text(learn, x)[2] for x in texts[:3]]); sync()
    t = time.perf_counter(); one = torch.stack([predict_text(learn, x)[2] for x in texts[:200]]); sync(); dt = time.perf_counter() - t
    res['gpu_learn_predict_200'] = dict(s=round(dt, 3), per_s=round(200 / dt, 1))
    cli.predict_texts(learn, texts[:64], amp=False); cli.predict_texts(learn, texts[:64], amp=True); sync()
    pt = {}
    for amp in (False, True, None, False, True):
        for n in (1, 100, 1000):
            t = time.perf_counter(); labels, p = cli.predict_texts(learn, texts[:n], bs=64, amp=amp); sync(); dt = time.perf_counter() - t
            m = min(n, 200)
            pt.setdefault(f'{amp}_{n}', []).append(dict(s=round(dt, 4), per_s=round(n / dt, 1), max_diff=float((p[:m] - one[:m]).abs().max()),
                                                        same_labels=int((p[:m].argmax(1) == one[:m].argmax(1)).sum())))
    res['predict_texts'] = pt
    t = time.perf_counter(); cli.predict_texts(learn, texts, amp=True, n_workers=0); sync(); res['amp_1000_tok_inprocess_s'] = round(time.perf_counter() - t, 3)
    for bs in (128, 256):
        t = time.perf_counter(); cli.predict_texts(learn, texts, bs=bs, amp=True); sync(); res[f'amp_1000_bs{bs}_s'] = round(time.perf_counter() - t, 3)
    learn.to_fp16(); learn.model.half()   # as after fp16 training: predict_texts must put the weights back in fp32
    _, p = cli.predict_texts(learn, texts[:200])
    res['after_fp16'] = dict(max_diff=float((p - one).abs().max()), dtype=str(next(learn.model.parameters()).dtype),
                             cbs=[type(c).__name__ for c in learn.cbs])
    return res

def markdown(res:dict) -> str:
    tok, pt = res['tokenise_s'], res['predict_texts']
    rows = [dict(reviews=n, **{f'{w} workers' if w else 'this process': (f"{tok[f'{n}_{w}']:.2f}" if f'{n}_{w}' in tok else '')
                                for w in (0, 2, 4, 8, 15)}) for n in (250, 500, 1000)]
    def best(k): return min(pt[k], key=lambda r: r['s'])
    runs = [dict(path=name, **{f'{n} reviews/s': f"{best(f'{k}_{n}')['per_s']:.0f}" for n in (1, 100, 1000)},
                 **{'max prob. difference (first 200 vs learn.predict)': f"{max(r['max_diff'] for r in pt[f'{k}_1000']):.1e}"})
            for name, k in (('fp32 (amp=False)', 'False'), ('fp16 autocast (amp=True)', 'True'), ('default (amp=None)', 'None'))]
    lp, f16 = res['gpu_learn_predict_200'], res['after_fp16']
    return '\n'.join([
        '# `predict_texts` on an H100 machine', '',
        f"{res['gpu']}, {res['cores']} CPU cores, torch {res['torch']}. Classifier: the project's 256/512/2 AWD-LSTM with random "
        f"weights, vocabulary {res['vocab']:,} (see `bench/classify_h100_check.py` for why), batch size 64; the 1,000 reviews of "
        "`imdb_sample.csv`. One run; the best of the repeats is shown.", '',
        '## Tokenising 250 to 1,000 reviews (`text_ids`), seconds', '', C.md_table(rows), '',
        '## Classifying (`predict_texts`, tokenising included)', '', C.md_table(runs), '',
        f"`learn.predict` one review at a time on the GPU: {lp['per_s']:.1f} reviews/s (200 reviews). `predict_texts` at 1,000 "
        f"reviews with fp16 autocast and the tokenizer in this process: {res['amp_1000_tok_inprocess_s']:.2f} s; with batch size "
        f"128 / 256 (workers): {res['amp_1000_bs128_s']:.2f} / {res['amp_1000_bs256_s']:.2f} s. After `to_fp16()` and half "
        f"weights (as fp16 training leaves a learner) `predict_texts` ran with weights in {f16['dtype']} and without the "
        f"MixedPrecision callback ({', '.join(f16['cbs'])}); max difference {f16['max_diff']:.1e}.", ''])

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--md', help='write the markdown summary of this result file next to it, and nothing else')
    a = p.parse_args()
    if a.md:
        f = Path(a.md); f.with_suffix('.md').write_text(markdown(json.loads(f.read_text()))); sys.exit()
    out = Path(os.environ.get('OUT', C.RESULTS)); out.mkdir(parents=True, exist_ok=True)
    res = run(); (out/'classify_h100.json').write_text(json.dumps(res, indent=1)); (out/'classify_h100.md').write_text(markdown(res))
    print(markdown(res))
