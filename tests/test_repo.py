"""Checks on the repository itself: README in step with index.ipynb, library in step with the notebooks."""
import configparser, json, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT/'tools'))
import make_readme

def test_readme_matches_index_notebook():
    assert (ROOT/'README.md').read_text(encoding='utf-8') == make_readme.render(), \
        'README.md and nbs/index.ipynb differ: run `python tools/make_readme.py`'

def test_readme_full_cpu_figures_are_the_results_file_s():
    "The README's full-data CPU run: its stage accuracies, hours, memory and threads are those of bench/results/ulmfit_full_cpu.json."
    r = json.loads((ROOT/'bench'/'results'/'ulmfit_full_cpu.json').read_text())
    readme = re.sub(r'\s+', ' ', (ROOT/'README.md').read_text(encoding='utf-8'))
    part = readme[readme.index('**Full mode without a GPU**'):][:2500]
    hours = ((r['tokenize_seconds'] or 0) + r['train_seconds']) / 3600
    want = [f"{s['accuracy']:.4f}" for s in r['stages']] + [f'{hours:.1f} hours', f"{r['peak_rss_gb']:.1f} GiB", r['date'][:10]]
    want += [f"{r['vocab_coverage']['covered']:.1%}"] if r.get('vocab_coverage') else []
    assert not [w for w in want if w not in part], [w for w in want if w not in part]

def test_readme_names_the_test_command_that_ci_runs():
    readme, ci = (ROOT/'README.md').read_text(), (ROOT/'.ci'/'run').read_text()
    assert '```sh\npytest\n```' in readme and '\npytest' in ci

def test_settings_declare_test_flags_and_bounds():
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    d = cfg['DEFAULT']
    assert set(d['tst_flags'].split()) >= {'slow', 'cuda', 'online'}
    assert 'fastcore>=1.8,<2' in d['requirements'].split() and 'plum-dispatch<2.10' in d['requirements'].split()

def _copy_notebooks(dest):
    "Copy the notebooks (only: nbs/ may hold other files a run left behind) and settings.ini to `dest`."
    import shutil
    (dest/'nbs').mkdir()
    for nb in (ROOT/'nbs').glob('*.ipynb'): shutil.copy(nb, dest/'nbs'/nb.name)
    shutil.copy(ROOT/'settings.ini', dest/'settings.ini')

def test_library_is_exported_from_notebooks(tmp_path):
    "nbdev_export on a copy of the tree changes no file in nlpbook_ch/."
    import shutil
    _copy_notebooks(tmp_path)
    shutil.copytree(ROOT/'nlpbook_ch', tmp_path/'nlpbook_ch', ignore=shutil.ignore_patterns('__pycache__', 'pretrained'))
    subprocess.run([sys.executable, '-c', 'from nbdev.doclinks import nbdev_export; nbdev_export()'], cwd=tmp_path, check=True)
    for f in (ROOT/'nlpbook_ch').glob('*.py'):
        assert (tmp_path/'nlpbook_ch'/f.name).read_text() == f.read_text(), f'{f.name} is out of date: run nbdev_export'

def test_docs_sidebar_lists_every_notebook_in_order():
    import yaml
    from nlpbook_ch.docs import _sidebar_entries
    side = [n for n, _ in _sidebar_entries(yaml.safe_load((ROOT/'nbs'/'sidebar.yml').read_text())['website']['sidebar']['contents'])]
    nbs = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb'))
    assert side[0] == 'index.ipynb' and sorted(side) == nbs and len(set(side)) == len(side)   # each notebook once, home first
    assert side.index('03_pretrain.ipynb') < side.index('04_ulmfit.ipynb')   # reading order: stage 1 before the chapter's ULMFiT
    assert 'sidebar.yml' in (ROOT/'nbs'/'_quarto.yml').read_text()

def test_notebooks_are_clean(tmp_path):
    "nbdev_clean on a copy of nbs/ changes nothing (no stray outputs metadata, execution counts)."
    import shutil
    _copy_notebooks(tmp_path)
    subprocess.run([sys.executable, '-c', 'from nbdev.clean import nbdev_clean; nbdev_clean()'], cwd=tmp_path, check=True)
    for nb in (ROOT/'nbs').glob('*.ipynb'):
        assert (tmp_path/'nbs'/nb.name).read_text() == nb.read_text(), f'{nb.name} is not clean: run nbdev_clean'

def _module_notebooks() -> dict:
    "module name -> its notebook's number, from the header nbdev writes into each generated module."
    import re
    res = {}
    for f in (ROOT/'nlpbook_ch').glob('*.py'):
        m = re.search(r'File to edit: \.\./nbs/(\d+)_\w+\.ipynb', f.read_text())
        if m: res[f.stem] = int(m.group(1))
    return res

def test_modules_import_only_lower_notebooks():
    "Every import of a package module, at the top or inside a function, names a module of a lower notebook: no circle, no reaching up."
    import ast
    nums, bad = _module_notebooks(), []
    assert {'core', 'data', 'models', 'pretrain', 'ulmfit', 'gpt2', 'job', 'predict', 'cli'} <= set(nums)
    for mod, n in nums.items():
        for node in ast.walk(ast.parse((ROOT/'nlpbook_ch'/f'{mod}.py').read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                if node.level == 1: names = [node.module or '']
                elif (node.module or '').startswith('nlpbook_ch.'): names = [node.module.split('.')[1]]
            elif isinstance(node, ast.Import): names = [a.name.split('.')[1] for a in node.names if a.name.startswith('nlpbook_ch.')]
            bad += [f'{mod} ({n:02d}) imports {o} ({nums[o]:02d})' for o in names if o in nums and nums[o] >= n]
    assert not bad, bad

_SHOW = """
import os
from nlpbook_ch.core import usable_cores
def test_show(tmp_root):   # a worker's output does not reach the terminal: a file does
    with open(os.environ['SHOW_TO'], 'w') as f:
        f.write(' '.join(str(v) for v in (os.environ['OMP_NUM_THREADS'], os.environ.get('PYTEST_XDIST_WORKER_COUNT'),
                                          os.environ.get('PYTEST_XDIST_WORKER'), os.environ['NLPBOOK_CACHE'], tmp_root, usable_cores())))
"""

def test_auto_workers_leave_room_for_the_users_threads():
    "`-n auto`: one worker per core, at most 4; with the user's OMP_NUM_THREADS=k, one per k cores, at least one."
    from conftest import auto_workers
    assert [auto_workers(c) for c in (1, 2, 3, 16)] == [1, 2, 3, 4]
    assert [auto_workers(2, '2'), auto_workers(8, '3'), auto_workers(16, '2'), auto_workers(2, '4')] == [1, 2, 4, 1]
    assert [auto_workers(2, 'x'), auto_workers(2, '0'), auto_workers(2, '-3')] == [2, 2, 2]   # not a thread count: one each

def test_test_workers_share_the_cores(tmp_path):
    "pytest.ini's workers share the usable cores out as threads, each with its own caches, whatever environment they inherit."
    (tmp_path/'tests').mkdir()
    (tmp_path/'tests'/'conftest.py').write_text((ROOT/'tests'/'conftest.py').read_text())
    (tmp_path/'tests'/'test_show.py').write_text(_SHOW)
    (tmp_path/'pytest.ini').write_text((ROOT/'pytest.ini').read_text())
    # a user who set neither; this process's own record and pytest-xdist variables stay: a nested run must not trust them
    env = {k: v for k, v in __import__('os').environ.items() if k not in ('OMP_NUM_THREADS', 'NLPBOOK_CACHE', 'PYTEST_XDIST_AUTO_NUM_WORKERS')}
    def shown(*args, **extra):
        (tmp_path/'shown').unlink(missing_ok=True)
        r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', *args], cwd=tmp_path,
                           env={**env, **extra, 'SHOW_TO': str(tmp_path/'shown'), 'PYTHONPATH': str(ROOT)},   # this tree's package
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        threads, workers, worker, cache, root, cores = (tmp_path/'shown').read_text().split()
        assert not Path(root).exists()   # the process's temp caches are gone when it ends
        return int(threads), workers, worker, Path(cache), Path(root), int(cores)
    def share(cores, workers, worker): return max(1, cores // workers + (int(worker[2:]) < cores % workers))
    t, w, k, cache, root, cores = shown()                                    # pytest.ini's -n auto
    assert w == str(min(4, cores)) and t == share(cores, int(w), k) and cache == root/'nlpbook_cache'
    t, w, k, cache, root, _ = shown('-n', '1')
    assert (t, w) == (cores, '1') and cache == root/'nlpbook_cache'         # one worker: every core, its own cache
    if cores >= 2:
        t, w, k, *_ = shown('-n', '2')
        assert w == '2' and t == share(cores, 2, k)                          # two: the cores shared out
    t, w, k, cache, root, _ = shown('-n', '0')
    assert (t, w, k) == (1, 'None', 'None') and cache == root/'nlpbook_cache'   # one process: one thread
    assert shown('-n', '2', OMP_NUM_THREADS='3')[0] == 3                     # the user's setting wins
    assert shown(OMP_NUM_THREADS=str(cores))[:2] == (cores, '1')             # -n auto: as many workers as have that many cores
    assert shown(OMP_NUM_THREADS='1')[:2] == (1, str(min(4, cores)))
    mine = tmp_path/'mine'; mine.mkdir(); (mine/'keep.txt').write_text('x')
    assert shown('-n', '2', NLPBOOK_CACHE=str(mine))[3] == mine and (mine/'keep.txt').exists()   # the user's cache: used, kept
