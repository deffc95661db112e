"""Results of the full-data ULMFiT run on a CPU: `nlpbook-ch ulmfit --mode full` without a GPU (`FULL_CPU`).

The run itself is the package's command (one to two hours on a 2-core laptop CPU):

    OMP_NUM_THREADS=2 /usr/bin/time -v nlpbook-ch ulmfit --mode full --out RUN 2>&1 | tee RUN.log

This script reads the finished run folder (its state.json: accuracy and time per stage, the schedule), the command's
log (peak memory from `/usr/bin/time -v`), predicts all 25,000 test/ reviews once with the exported classifier for the
per-class report (macro-F1, confusion matrix), measures how much of the test text the run's vocabulary covers, and writes
bench/results/ulmfit_full_cpu.{json,md}, with the baselines of bench/results/imdb_full_baselines.json (same split) and the
chapter's and the paper's figures beside them.

    python bench/ulmfit_full_cpu.py RUN [--log RUN.log] [--started ISO-TIME] [--threads N] [--before EARLIER.json] [--smoke]
"""
import argparse, datetime, json, os, platform, re, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAPER = {'ULMFiT forward+backward ensemble, test error 4.6% (Howard & Ruder 2018, Table 2)': 0.954,
         'ULMFiT forward model with WikiText-103 pretraining, validation error 5.00% (Table 4)': 0.950,
         'ULMFiT forward model without WikiText-103 pretraining, validation error 5.63% (Table 4)': 0.9437}

def cpu_model() -> str:
    try:
        for l in Path('/proc/cpuinfo').read_text().splitlines():
            if l.startswith('model name'): return l.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()

def peak_rss_gb(log) -> float|None:
    "Peak resident memory from `/usr/bin/time -v`'s 'Maximum resident set size (kbytes)' lines in `log` (the largest: a resumed run logs one per start)."
    if log is None or not Path(log).exists(): return None
    m = re.findall(r'Maximum resident set size \(kbytes\): (\d+)', Path(log).read_text(errors='replace'))
    return round(max(map(int, m)) / 2**20, 2) if m else None

def vocab_coverage(run, tok_dir) -> dict|None:
    "Share of the test reviews' tokens (fastai's tokenisation) that the run's vocabulary holds (the rest are xxunk)."
    from collections import Counter
    vocab = set(json.loads((Path(run)/'lm_vocab.json').read_text()))
    test = Path(tok_dir)/'test'
    if not test.is_dir(): return None
    c = Counter()
    for f in test.glob('*/*.txt'): c.update(f.read_text(encoding='utf-8').split(' '))
    total = sum(c.values()); known = sum(n for t, n in c.items() if t in vocab)
    missing = [t for t, _ in c.most_common() if t not in vocab]
    return dict(vocab_size=len(vocab), test_tokens=total, covered=round(known / total, 4), distinct_test_tokens=len(c),
                distinct_covered=round(sum(1 for t in c if t in vocab) / len(c), 4), most_common_missing=missing[:15])

def _preset_why(cfg:dict) -> str|None:
    "`FULL_CPU_WHY` when the run's configuration is the `FULL_CPU` preset (a run started before runs recorded their schedule)."
    from nlpbook_ch.ulmfit import ulmfit_config, FULL_CPU_WHY
    from nlpbook_ch.job import config_to_json
    return FULL_CPU_WHY if config_to_json(ulmfit_config('full', cpu=True)) == cfg else None

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('run'); ap.add_argument('--log'); ap.add_argument('--started', help='when the command started (ISO time)')
    ap.add_argument('--threads', type=int, default=None, help='torch threads the run used'); ap.add_argument('--out', default=str(HERE/'results'))
    ap.add_argument('--smoke', action='store_true', help='a run on the shipped subset (TINY): check the script, write nothing')
    ap.add_argument('--partial', action='store_true', help='record the stages an unfinished run has done (no per-class report)')
    ap.add_argument('--note', default='', help='a sentence on how the run went (e.g. what else the machine was doing)')
    ap.add_argument('--before', default=None, help="an earlier run's results JSON (written by this script) to show beside this one")
    ap.add_argument('--no-predict', action='store_true', help="skip predicting the test reviews again for the per-class report "
                    "(the stages' accuracies, fastai's metric on the same reviews, are recorded either way)")
    a = ap.parse_args(argv)
    import torch
    from nlpbook_ch.predict import load_trained, predict_texts
    from nlpbook_ch.owndata import classification_report, report_markdown
    from nlpbook_ch.ulmfit import CHAPTER_RESULTS
    run = Path(a.run)
    state = json.loads((run/'state.json').read_text())
    cfg = state['config']
    names = ['lm_frozen', 'lm_unfrozen'] + [f'clf_{i + 1}' for i in range(len(cfg['stages']))]
    m = state['metrics']
    missing = [n for n in names if n not in m]
    if missing and not a.partial: sys.exit(f'{run} is not finished ({", ".join(missing)} to go): --partial records what it has')
    # the test reviews the run's classifier was validated on: its working copy's test/ folder (fastai's layout)
    from nlpbook_ch.data import find_data, imdb_workdir
    src = find_data('imdb' if a.smoke else 'imdb_full')
    wd = imdb_workdir(src, n_per_label=cfg['n_per_label'], n_unsup=cfg['lm_n_unsup'] if cfg['n_per_label'] else None)
    files = sorted(wd.glob('test/*/*.txt'))
    texts = [f.read_text(encoding='utf-8') for f in files]; labels = [f.parent.name for f in files]
    rep = None
    if not missing and not a.no_predict:
        learn = load_trained(run)
        t0 = time.time(); pred, _ = predict_texts(learn, texts, amp=False); pred_s = round(time.time() - t0, 1)
        rep = classification_report(labels, list(pred), sorted(set(labels)))
    cover = vocab_coverage(run, wd.parent/f'{wd.name}_tok')
    base_f = HERE/'results'/'imdb_full_baselines.json'
    base = {k: {f: v[f] for f in ('method', 'accuracy', 'macro_f1', 'C', 'seconds')} for k, v in json.loads(base_f.read_text())['methods'].items()} \
        if base_f.exists() and not a.smoke else None
    tok_dir = wd.parent/f'{wd.name}_tok'
    started = datetime.datetime.fromisoformat(a.started) if a.started else None
    tok_done = datetime.datetime.fromtimestamp(tok_dir.stat().st_mtime, datetime.timezone.utc) if tok_dir.exists() else None
    res = dict(
        what="nlpbook-ch ulmfit --mode full on a CPU (FULL_CPU): 25,000 train/ reviews, tested on all 25,000 test/ reviews",
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        machine=dict(cpu=cpu_model(), cores=os.cpu_count(), torch_threads=a.threads, python=platform.python_version(),
                     torch=torch.__version__, fastai=__import__('fastai').__version__, gpu=torch.cuda.is_available()),
        schedule=state.get('schedule') or _preset_why(cfg), config={k: cfg.get(k, 'text' if k == 'lm_vocab' else None) for k in ('max_vocab', 'lm_vocab', 'lm_n_per_label', 'lm_n_unsup',
            'lm_bs', 'clf_bs', 'lm_frozen', 'lm_unfrozen', 'stages', 'pretrained', 'pretrained_model', 'seq_len', 'drop_mult')},
        complete=not missing, to_do=missing, note=a.note,
        lm=dict(perplexity_before=m['lm_frozen'].get('perplexity_before'), perplexity_frozen=m['lm_frozen']['perplexity'],
                perplexity=m['lm_unfrozen']['perplexity'], seconds=[m['lm_frozen']['seconds'], m['lm_unfrozen']['seconds']]),
        stages=[dict(stage=n, accuracy=round(m[n]['accuracy'], 4), seconds=m[n]['seconds']) for n in names[2:] if n in m],
        train_seconds=round(sum(m[n]['seconds'] for n in names if n in m), 1),
        tokenize_seconds=round((tok_done - started).total_seconds(), 1) if started and tok_done else None,
        peak_rss_gb=peak_rss_gb(a.log),
        test=None if rep is None else dict(n=len(texts), predict_seconds=pred_s, **{k: rep[k] for k in ('accuracy', 'macro_f1', 'per_class', 'confusion', 'classes')}),
        n_test=len(texts),
        vocab_coverage=cover, before=_before(a.before), baselines=base, chapter=dict(stage_accuracy=list(CHAPTER_RESULTS['stage_accuracy'])), paper=PAPER)
    if a.smoke: print(json.dumps(res, indent=1, default=str)[:2000]); return res
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    (out/'ulmfit_full_cpu.json').write_text(json.dumps(res, indent=1, default=str))
    (out/'ulmfit_full_cpu.md').write_text(markdown(res, report_markdown(rep) if rep else None))
    print((out/'ulmfit_full_cpu.md').read_text())
    return res

def _before(f) -> dict|None:
    "What an earlier run's results file says, for the comparison row: its file name, date, threads, vocabulary, stage accuracies and hours."
    if not f: return None
    r = json.loads(Path(f).read_text())
    return dict(file=Path(f).name, date=r['date'][:10], torch_threads=r['machine']['torch_threads'], note=r.get('note', ''),
                lm_vocab=r['config'].get('lm_vocab', 'text'), vocab_size=(r.get('vocab_coverage') or {}).get('vocab_size'),
                covered=(r.get('vocab_coverage') or {}).get('covered'), stages=[s['accuracy'] for s in r['stages']],
                hours=round(((r.get('tokenize_seconds') or 0) + r['train_seconds']) / 3600, 2))

VOCAB = {'text': "built from the 2,000 reviews stage 2 read", 'project': "the pretrained model's, from its 75,000 train/ and unsup/ reviews"}
"How the run's vocabulary was made, by `lm_vocab`."

NAMES = {'tfidf_lr': 'TF-IDF (1-2 grams, sublinear tf) + logistic regression', 'nbsvm': 'NB-SVM (binarised 1-2 grams)'}

def _fmt_s(s): return '' if s is None else f'{s / 60:.1f} min'

TARGET_HOURS = 2
"The time the whole run should take on an idle 2-core machine (the aim it was set)."

def _whole(r) -> str:
    "The whole run's time (tokenising + training) beside the target, when both parts were recorded."
    if r.get('tokenize_seconds') is None or not r.get('complete'): return ''
    h = (r['tokenize_seconds'] + r['train_seconds']) / 3600
    return (f"; the whole run {h:.1f} h, {'within' if h <= TARGET_HOURS else 'over'} the {TARGET_HOURS}-hour aim for an idle 2-core "
            f"machine with {r['machine']['torch_threads'] or 'default'} torch thread(s) on the machine described above")

def _stages_note(st, ch, to_do) -> str:
    "What the unfreezing stages after the second added, here and in the chapter (or which did not run)."
    if to_do: return f"- {', '.join(to_do)} did not run; in the chapter stages 3 and 4 add {ch[-1] - ch[1]:.3f} ({ch[1]} after stage 2, {ch[-1]} after stage 4)."
    if len(st) < 2 or len(ch) < len(st): return ''
    return (f"- Stages 3 and 4 added {st[-1]['accuracy'] - st[1]['accuracy']:+.4f} here ({st[1]['accuracy']:.4f} after stage 2, "
            f"{st[-1]['accuracy']:.4f} after stage {len(st)}); in the chapter {ch[-1] - ch[1]:+.3f} ({ch[1]} to {ch[-1]}).")

def _lm_note(lm) -> str:
    "What stage 2 did to the language model's perplexity, in words."
    b, a = lm['perplexity_before'], lm['perplexity']
    if a >= b: return (f"Stage 2 did not lower the language model's perplexity ({b:.1f} before, {a:.1f} after): the pretrained model "
                       "had already read this domain's text, and one epoch on 2,000 reviews teaches it little more.")
    return (f"Stage 2 lowered the language model's perplexity from {b:.1f} to {a:.1f} ({(b - a) / b:.1%}): the pretrained model had "
            "already read this domain's text, so one epoch on 2,000 reviews has little left to teach it.")

def _before_md(r) -> str:
    "The earlier run beside this one: what differed, and its stage accuracies and time."
    b = r.get('before')
    if not b: return ''
    now = [s['accuracy'] for s in r['stages']]
    same = len(b['stages']) == len(now)
    return (f"\n## Beside the earlier run\n\n`bench/results/{b['file']}` ({b['date']}, {b['torch_threads']} torch thread(s); its own file says how it ran) "
            f"had the vocabulary {VOCAB[b['lm_vocab']]} ({b['vocab_size']:,} tokens, {b['covered']:.1%} of the test tokens)."
            f" This run: {VOCAB[r['config'].get('lm_vocab') or 'text']} ({r['vocab_coverage']['vocab_size']:,} tokens, "
            f"{r['vocab_coverage']['covered']:.1%}).\n\n| stage | earlier run | this run | change |\n|---|---|---|---|\n"
            + '\n'.join(f"| {i + 1} | {x:.4f} | {y:.4f} | {y - x:+.4f} |" for i, (x, y) in enumerate(zip(b['stages'], now)))
            + f"\n\nThe whole run: {b['hours']:.1f} h then, {((r.get('tokenize_seconds') or 0) + r['train_seconds']) / 3600:.1f} h now. "
            + ("" if same else "The two runs have different numbers of stages. ")
            + "The two runs differ in more than the vocabulary (threads, and so the order of floating-point sums), so one run each "
              "cannot separate a small effect from run-to-run noise.\n")

def markdown(r, per_class) -> str:
    st, ch = r['stages'], r['chapter']['stage_accuracy']
    vocab = r['config'].get('lm_vocab') or 'text'
    rows = '\n'.join(f"| {i + 1} ({s['stage']}) | {s['accuracy']:.4f} | {_fmt_s(s['seconds'])} | {ch[i] if i < len(ch) else ''} |" for i, s in enumerate(st))
    b = r.get('baselines') or {}
    brows = ''
    for k in ('tfidf_lr', 'nbsvm'):
        if k in b: brows += f"| {NAMES.get(k, k)} (same split, `bench/results/imdb_full_baselines.md`) | {b[k]['accuracy']:.4f} | {b[k].get('macro_f1', float('nan')):.4f} |\n"
    cov = r.get('vocab_coverage') or {}
    mach = r['machine']
    t = r.get('test')
    last = st[-1] if st else None
    if t: ulm_row = f"| ULMFiT, the project's small AWD-LSTM (this run, last stage) | {t['accuracy']:.4f} | {t['macro_f1']:.4f} |\n"
    elif last and r['complete']: ulm_row = f"| ULMFiT, the project's small AWD-LSTM (this run, after its last stage) | {last['accuracy']:.4f} | |\n"
    elif last: ulm_row = f"| ULMFiT, the project's small AWD-LSTM (this run, after stage {len(st)} of {len(st) + len(r['to_do'])}: not finished) | {last['accuracy']:.4f} | |\n"
    else: ulm_row = ''
    if t: test_note = (f"The test accuracy above is recomputed from the exported classifier ({t['n']:,} reviews, fp32, {t['predict_seconds']} s);\n"
                       f"the stage table's figures are fastai's validation metric after each stage. {r.get('note', '')}\n\n## Per class (last stage)\n\n{per_class}")
    elif r['complete']: test_note = (f"The figures are fastai's validation metric on all {r['n_test']:,} test reviews after each stage (the "
                                     f"per-class report was not made: `--no-predict`). {r.get('note', '')}")
    else: test_note = (f"**The run did not finish** ({', '.join(r['to_do'])} still to do): the figures are fastai's validation metric on all "
                       f"{r['n_test']:,} test reviews after each stage that finished. {r.get('note', '')}")
    return f"""# ULMFiT at the chapter's scale on a CPU: all 25,000 labels, all 25,000 test reviews

{'' if r['complete'] else '**Not finished.** '}Run: `nlpbook-ch ulmfit --mode full` on a machine without a GPU ({r['date'][:10]}; {mach['cpu']}, {mach['cores']} cores,
{mach['torch_threads']} torch thread(s), torch {mach['torch']}, fastai {mach['fastai']}; no GPU). Written by
`bench/ulmfit_full_cpu.py` from the run folder.

Schedule: {r['schedule']}

| gradual-unfreezing stage | test accuracy (25,000 reviews) | time | chapter (GPU, WikiText-103, 25,000 labels) |
|---|---|---|---|
{rows}

Language model (stage 2): perplexity {r['lm']['perplexity_before']:.1f} before, {r['lm']['perplexity_frozen']:.1f} after the frozen epoch,
{r['lm']['perplexity']:.1f} after the unfrozen one ({_fmt_s(sum(r['lm']['seconds']))}). Tokenising and preparing the working copies:
{_fmt_s(r['tokenize_seconds']) or 'not recorded'}. Training in all: {_fmt_s(r['train_seconds'])}{_whole(r)}. Peak memory (resident, `/usr/bin/time -v`): {r['peak_rss_gb']} GiB.

| model | test accuracy | macro-F1 |
|---|---|---|
{ulm_row}{brows}| NB-SVM, published (Wang & Manning 2012) | 0.912 | |
| chapter (fastai, WikiText-103 AWD-LSTM, GPU) | {ch[-1]} | |
""" + '\n'.join(f"| {k} | {v} | |" for k, v in r['paper'].items()) + f"""

{test_note}

## What may limit it (measured)

{_stages_note(st, ch, r['to_do'])}
- {_lm_note(r['lm'])}
- The classifier's vocabulary is the language model's, {VOCAB[vocab]}: {cov.get('vocab_size', '?'):,} tokens,
  which cover {cov.get('covered', float('nan')):.1%} of the test reviews' tokens ({cov.get('distinct_covered', float('nan')):.1%} of the
  distinct ones); every other token is `xxunk` to the classifier. The most frequent test tokens it lacks:
  {', '.join(cov.get('most_common_missing', []))}.
""" + _before_md(r)

if __name__ == '__main__': main()
