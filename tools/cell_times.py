#!/usr/bin/env python
"""Seconds per cell of one notebook, run the way `pytest` and `nbdev_test` run it (flagged cells skipped); the slowest first.

    OMP_NUM_THREADS=2 python tools/cell_times.py 04_ulmfit.ipynb

Offline, with fresh temporary caches (NLPBOOK_CACHE, FASTAI_HOME, HF_HOME; removed at the end), as under `pytest`;
`OMP_NUM_THREADS` defaults to 2 (or the one core there is).
"""
import atexit, os, shutil, sys, time, tempfile
from pathlib import Path
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
from nlpbook_ch.core import usable_cores   # light: nothing in it reads OMP_NUM_THREADS
T = Path(tempfile.mkdtemp(prefix='cell_times_'))
atexit.register(shutil.rmtree, T, ignore_errors=True)   # the notebook's caches go with the process
for k, v in dict(HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', NLPBOOK_OFFLINE='1', FASTAI_HOME=str(T/'fastai'), HF_HOME=str(T/'hf'),
                 NLPBOOK_CACHE=str(T/'cache'), MPLBACKEND='Agg', OMP_NUM_THREADS=str(min(2, usable_cores())), TOKENIZERS_PARALLELISM='false').items(): os.environ.setdefault(k, v)

def main(name, top=30):
    import execnb.shell as S
    from nbdev.test import test_nb
    from nbdev.config import get_config
    times, cell = [], S.CaptureShell.cell
    def timed(self, c, **kw):
        t0 = time.time(); r = cell(self, c, **kw)
        times.append((time.time() - t0, getattr(c, 'idx_', len(times)), c.source[:100].replace('\n', ' | ')))
        return r
    S.CaptureShell.cell = timed
    ok, secs = test_nb(ROOT/'nbs'/name, skip_flags=get_config(path=ROOT).tst_flags.split(), basepath=ROOT)
    print('ok', ok, 'total', round(secs, 1))
    for t, i, s in sorted(times, reverse=True)[:top]: print(f'{t:7.1f}s  cell {i}: {s}')
    return ok

if __name__ == '__main__': sys.exit(0 if main(sys.argv[1]) else 1)
