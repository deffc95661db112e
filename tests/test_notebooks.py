"""Execute every notebook in nbs/ as a test, the way `nbdev_test` does (one test per notebook)."""
import os, time
from pathlib import Path
import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_nb

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))

def test_every_notebook_is_collected():
    assert {'index.ipynb', '00_core.ipynb', '01_data.ipynb'} <= {p.name for p in NOTEBOOKS}

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb, nb_flags, capsys):
    skip = get_config(path=ROOT).tst_flags.split()
    import torch   # earlier tests (the bench smoke tests) may have changed this process's thread count: use the session's
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    t0 = time.time()
    ok, secs = run_nb(nb, skip_flags=skip, force_flags=nb_flags, showerr=True, basepath=ROOT)
    with capsys.disabled(): print(f'\n{nb.name}: {time.time() - t0:.1f}s', end=' ')
    assert ok, f'{nb.name} failed (traceback above)'
