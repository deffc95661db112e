#!/usr/bin/env python
"""How much faster does training run on my CPU in bf16 mixed precision than in fp32 (`nlpbook_ch.ulmfit.CPUMixedPrecision`)?

fastai's `to_fp16()` autocasts on CUDA only, so on a CPU the chapter's learners train in fp32. On a CPU that multiplies
bf16 matrices in hardware (AMX or AVX512-BF16: `nlpbook_ch.core.native_bf16`), quick mode adds `CPUMixedPrecision`
(bf16 autocast) to its learners. This script times quick mode's two heaviest steps both ways, alternating, with the
preset's data and the project's pretrained AWD-LSTM: the quick classifier's `fine_tune(1, 1e-2)` (a frozen and an
unfrozen epoch over 1,000 reviews, each validated on 1,000) and the language model's frozen epoch
`fit_one_cycle(1, 1e-2)` (400 reviews), and reports seconds, the speed-up and the validation metrics, so that the
accuracy cost (if any) is seen next to the time saved. On a CPU without native bf16 only fp32 is measured: bf16 would
be emulated there (slower, and oneDNN has no bf16 LSTM kernel for it), so the package trains in fp32 on such a CPU.

    python bench/cpu_bf16.py            # both steps, fp32 and bf16 (~3 min on 2 cores)
    python bench/cpu_bf16.py --smoke    # the TINY preset: seconds (its numbers mean nothing)

Writes bench/results/cpu_bf16{.md,.json} (the --smoke run: cpu_bf16_smoke.*).
"""
import argparse, sys, time, warnings
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C   # sets the offline/cache environment defaults before torch and fastai are imported

def time_steps(cfg, log=print, precisions=(False, True)) -> list:
    "Seconds and validation metrics of the quick classifier's `fine_tune` and the LM's frozen epoch, in each of `precisions` (False: fp32, True: bf16)."
    from nlpbook_ch.ulmfit import imdb_paths, clf_dataloaders, lm_dataloaders, make_classifier, make_lm_learner, CPUMixedPrecision
    path, lm_path = imdb_paths(cfg)
    dls, dls_lm = clf_dataloaders(path, cfg), lm_dataloaders(lm_path, cfg)   # tokenised once, before any timing
    rows = []
    for step in ('classifier fine_tune', 'LM frozen epoch'):
        for bf16 in precisions:
            c, clf = replace(cfg, cpu_bf16=bf16), step.startswith('classifier')
            learn = make_classifier(dls, c) if clf else make_lm_learner(dls_lm, c)
            assert any(isinstance(cb, CPUMixedPrecision) for cb in learn.cbs) == bf16
            t0 = time.perf_counter()
            with learn.no_bar(), learn.no_logging():
                if clf: learn.fine_tune(cfg.quick_epochs, cfg.quick_lr)
                else: learn.fit_one_cycle(*cfg.lm_frozen)
            secs = time.perf_counter() - t0
            vals = [float(v) for v in learn.recorder.values[-1]]   # valid loss, then the metrics (under the same precision)
            rows.append(dict(step=step, precision='bf16' if bf16 else 'fp32', seconds=round(secs, 2), valid_loss=round(vals[1], 4),
                             metric=round(vals[2], 4), metric_name='accuracy' if clf else 'accuracy (next word)'))
            log(f"{step:22} {rows[-1]['precision']}: {secs:6.1f} s, valid loss {vals[1]:.4f}, {rows[-1]['metric_name']} {vals[2]:.4f}")
    return rows

def run(smoke=False, log=print) -> dict:
    import torch
    from nlpbook_ch.core import native_bf16
    from nlpbook_ch.ulmfit import ulmfit_config, TINY
    warnings.filterwarnings('ignore')
    if torch.cuda.is_available():
        raise SystemExit('bench/cpu_bf16.py measures training on the CPU; on a GPU machine run it with CUDA_VISIBLE_DEVICES=""')
    info = C.machine_info(); info['native_bf16'] = native_bf16()
    if not info['native_bf16']: log('this CPU has no native bf16 (AMX or AVX512-BF16): only fp32 is measured, as the package trains in fp32 here')
    t0 = time.time()
    rows = time_steps(ulmfit_config('quick', **(TINY if smoke else {})), log=log, precisions=(False, True) if info['native_bf16'] else (False,))
    info.update(load_at_end=C.loadavg(), total_seconds=round(time.time() - t0, 1))
    speed = {r['step']: round(next(x['seconds'] for x in rows if x['step'] == r['step'] and x['precision'] == 'fp32') / r['seconds'], 2)
             for r in rows if r['precision'] == 'bf16'}
    return dict(machine=info, preset='TINY' if smoke else 'quick', rows=rows, speedup=speed)

def markdown(res:dict) -> str:
    m = res['machine']
    rows = [{'step': r['step'], 'precision': r['precision'], 'seconds': f"{r['seconds']:.1f}",
             'speed-up': f"{res['speedup'][r['step']]:.2f}x" if r['precision'] == 'bf16' else '',
             'valid loss': f"{r['valid_loss']:.4f}", 'metric': f"{r['metric_name']} {r['metric']:.4f}"} for r in res['rows']]
    no_bf16 = ([] if m['native_bf16'] else ["This CPU has no native bf16, so only fp32 was measured: bf16 autocast would be emulated "
               "(slower, and oneDNN has no bf16 LSTM kernel for such a CPU), and the package trains in fp32 here.", ''])
    return '\n'.join([
        '# Training on the CPU: fp32 vs bf16 mixed precision', '',
        f"{m['date']}, {m['cpu']} ({m['usable_cores']} cores, {m['memory']}), torch {m['torch']}, fastai {m.get('fastai')}, "
        f"{m['torch_threads']} torch thread(s), load average {m['load_at_start']} at start / {m['load_at_end']} at end; "
        f"{m['total_seconds']} s in all. Native bf16 (AMX or AVX512-BF16): {m['native_bf16']}. Preset: {res['preset']} "
        + ("(`ulmfit_config('quick')`: the project's pretrained AWD-LSTM, 1,000 labelled reviews, 1,000 validation reviews; "
           "the language model on 400 reviews)" if res['preset'] == 'quick' else "(`TINY`: 40 reviews, a 16-wide AWD-LSTM from "
           "random weights; a smoke run, its numbers mean nothing)") + ". 'bf16' adds `CPUMixedPrecision` (what `make_classifier` and `make_lm_learner` "
        f"do by default on such a CPU); the validation metrics are measured under the same precision as the training.", '',
        C.md_table(rows), '', *no_bf16,
        f"Generated by `python bench/cpu_bf16.py{' --smoke' if res['preset'] == 'TINY' else ''}`. One run per row; the load average "
        "above says how busy the machine was: compare within this run only.", ''])

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    C.add_smoke(p, 'the TINY preset')
    p.add_argument('--out', default=str(C.RESULTS), help='folder for the result files')
    a = p.parse_args(argv)
    res = run(smoke=a.smoke)
    name = 'cpu_bf16' + ('_smoke' if a.smoke else '')
    md = C.write_results(a.out, name, res, markdown(res))
    print(f"\n{markdown(res)}\nwritten: {md}, .json")
    return res

if __name__ == '__main__': main()
