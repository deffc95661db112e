"""`nlpbook-ch data` and `nlpbook-ch chapter` as subprocesses, on what a hostile probe tried: an unwritable cache, a chapter
run over an earlier one, `--out` naming a file."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest
from nlpbook_ch.data import DATASETS

ROOT = Path(__file__).resolve().parents[1]
EXE = [shutil.which('nlpbook-ch')] if shutil.which('nlpbook-ch') else [sys.executable, '-m', 'nlpbook_ch.cli']

def cli(*args, env=None, drop=(), cwd=ROOT, timeout=300, wrap=()):
    e = {k: v for k, v in os.environ.items() if k not in drop}
    e.update(OMP_NUM_THREADS='1', NLPBOOK_OFFLINE='1', HF_HUB_OFFLINE='1', **(env or {}))
    return subprocess.run([*wrap, *EXE, *map(str, args)], capture_output=True, text=True, env=e, cwd=cwd, timeout=timeout)

def error_lines(r) -> list: return [l for l in r.stderr.splitlines() if l.startswith('nlpbook-ch: error:')]

def _read_only_mount(folder) -> list:
    "A command prefix that runs the command with `folder` mounted read-only (a private mount namespace), or [] where that is not allowed."
    if not shutil.which('unshare') or os.geteuid() != 0: return []
    wrap = ['unshare', '-m', 'sh', '-c', f'mount --bind "{folder}" "{folder}" && mount -o remount,ro,bind "{folder}" && exec "$0" "$@"']
    ok = subprocess.run([*wrap, 'sh', '-c', f'! touch "{folder}/.probe" 2>/dev/null'], capture_output=True)
    return wrap if ok.returncode == 0 and not (Path(folder)/'.probe').exists() else []

@pytest.mark.parametrize('how', ['a file in the way', 'read-only file system'])
def test_data_with_an_unwritable_cache_lists_every_dataset_then_names_nlpbook_cache(tmp_path, how):
    """HOME's ~/.cache cannot be written and NLPBOOK_CACHE is unset: `data` printed the first dataset, then stopped with
    `Read-only file system: ~/.cache`, naming neither the other datasets nor NLPBOOK_CACHE."""
    home = tmp_path/'home'; home.mkdir()
    wrap = ()
    if how == 'a file in the way': (home/'.cache').write_text('a file where the cache folder would be')
    else:
        wrap = _read_only_mount(home)
        if not wrap: pytest.skip('cannot mount a read-only folder here (needs root and unshare)')
    r = cli('data', env=dict(HOME=str(home)), drop=('NLPBOOK_CACHE',), wrap=wrap)
    rows = r.stdout.splitlines()
    assert [l.split()[0] for l in rows if l and not l.startswith(' ')] == list(DATASETS), r.stdout + r.stderr
    assert 'imdb.tgz  (archive; unpacked into the cache on first use)' in r.stdout, r.stdout
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr
    assert len(error_lines(r)) == 1 and 'set NLPBOOK_CACHE to a writable folder' in error_lines(r)[0], r.stderr
    assert str(home/'.cache'/'nlpbook_ch') in error_lines(r)[0]

def test_chapter_out_naming_a_file_is_a_one_line_error(tmp_path):
    "`--out` naming an existing file gave `[Errno 17] File exists`."
    f = tmp_path/'notes.txt'; f.write_text('mine')
    r = cli('chapter', '--only', 'index', '--out', f)
    assert r.returncode == 2 and 'Traceback' not in r.stderr and 'Errno' not in r.stderr, r.stderr
    assert error_lines(r) == [f'nlpbook-ch: error: {f} is a file, not a folder: name a folder for the executed notebooks (--out)'], r.stderr
    assert f.read_text() == 'mine'

def test_chapter_over_an_earlier_run_keeps_its_figures_and_says_what_it_replaces(tmp_path):
    """`--only` over an earlier run's folder replaced figures.json with this run's notebooks alone (every earlier figure lost),
    and overwrote the executed copies without a word."""
    out = tmp_path/'run'; out.mkdir()
    earlier = dict(stage_accuracy=[0.827, 0.865, 0.871, 0.867], gpt2_model='gpt2-imdb-small', mode='quick',
                   seconds={'index': 1.0, '04_ulmfit': 300.0, '05_gpt2': 60.0})
    (out/'figures.json').write_text(json.dumps(earlier))
    (out/'index.ipynb').write_text('{}')
    r = cli('chapter', '--mode', 'quick', '--only', 'index', '--out', out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f'replacing the executed copies of an earlier run in {out}: index.ipynb' in r.stdout, r.stdout
    assert 'figures.json keeps the figures of 04_ulmfit, 05_gpt2 from an earlier run' in r.stdout, r.stdout
    figs = json.loads((out/'figures.json').read_text())
    assert figs['stage_accuracy'] == earlier['stage_accuracy'] and figs['gpt2_model'] == 'gpt2-imdb-small'
    assert set(figs['seconds']) == {'index', '04_ulmfit', '05_gpt2'} and figs['seconds']['04_ulmfit'] == 300.0
    assert figs['seconds']['index'] != 1.0 and figs['mode'] == 'quick'
    assert figs['notebooks']['index'] == dict(mode='quick', figures=[])
    assert json.loads((out/'index.ipynb').read_text())['cells']   # the executed copy, not the earlier file
