"""The `nlpbook-ch` command, called as a subprocess the way a user calls it."""
import json, os, shutil, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXE = [shutil.which('nlpbook-ch')] if shutil.which('nlpbook-ch') else [sys.executable, '-m', 'nlpbook_ch.cli']
from nlpbook_ch.ulmfit import TINY

def cli(*args, env=None, cwd=ROOT, timeout=300):
    e = dict(os.environ, OMP_NUM_THREADS='1', **(env or {}))
    return subprocess.run([*EXE, *map(str, args)], capture_output=True, text=True, env=e, cwd=cwd, timeout=timeout)

def assert_user_error(r, *needles):
    "Exit status 2, one line on stderr naming the problem, no traceback."
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    lines = [l for l in r.stderr.splitlines() if l.startswith('nlpbook-ch: error:')]
    assert len(lines) == 1 and 'Traceback' not in r.stderr, r.stderr
    for n in needles: assert n in lines[0], lines[0]

def test_data_lists_the_shipped_data():
    r = cli('data')
    assert r.returncode == 0, r.stderr
    for name in ('imdb_subset', 'imdb_sample.csv', 'gpt2_tokenizer', 'unsup 1000', '50257 tokens'): assert name in r.stdout

def test_no_data_offline_is_a_one_line_error(tmp_path):
    env = dict(NLPBOOK_SKIP_SHARED='1', NLPBOOK_DATA=str(tmp_path), FASTAI_HOME=str(tmp_path/'fa'), NLPBOOK_OFFLINE='1')
    assert_user_error(cli('data', env=env), 'not found offline: imdb, imdb_sample, gpt2_tokenizer')
    assert_user_error(cli('ulmfit', '--out', tmp_path/'run', env=env), "Could not find the dataset 'imdb'", 'NLPBOOK_DATA')

@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A tiny ULMFiT job interrupted after its first stage, then resumed."
    d = tmp_path_factory.mktemp('cli')
    (d/'tiny.json').write_text(json.dumps(TINY))
    first = cli('ulmfit', '--mode', 'quick', '--config', d/'tiny.json', '--out', d/'run', '--stop-after', 'lm_frozen')
    second = cli('ulmfit', '--mode', 'quick', '--config', d/'tiny.json', '--out', d/'run', '--resume')
    return dict(dir=d, out=d/'run', first=first, second=second)

def test_ulmfit_interrupted_then_resumed(run):
    first, second = run['first'], run['second']
    assert first.returncode == 0, first.stderr[-3000:]
    assert 'done  lm_frozen [1/4]' in first.stdout and 'continue with `nlpbook-ch ulmfit' in first.stdout
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'skip  lm_frozen (done in an earlier run)' in second.stdout
    assert 'done  lm_frozen' not in second.stdout and 'done  clf_2 [4/4]' in second.stdout
    rep = json.loads((run['out']/'report.json').read_text())
    assert rep['stages'] == ['lm_frozen', 'lm_unfrozen', 'clf_1', 'clf_2'] and rep['complete']
    assert len(rep['stage_accuracy']) == 2 and rep['lm_perplexity'][-1] < rep['lm_perplexity_before']
    assert not list(run['out'].rglob('*.tmp'))

def test_rerun_without_resume_refuses(run):
    assert_user_error(cli('ulmfit', '--config', run['dir']/'tiny.json', '--out', run['out']), 'pass --resume')

def test_classify_and_generate(run):
    r = cli('classify', 'A moving, beautiful film.', 'Awful.', '--model', run['out'])
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [l.split('\t') for l in r.stdout.strip().splitlines()]
    assert len(rows) == 2 and all(l in ('neg', 'pos') and 0.5 <= float(p) <= 1 for l, p, _ in rows)
    f = run['dir']/'reviews.txt'; f.write_text('Great.\n\nBad.\nFine.\n')
    r = cli('classify', '--file', f, '--model', run['out'])
    assert r.returncode == 0 and len(r.stdout.strip().splitlines()) == 3
    r = cli('generate', 'The movie', '--model', run['out'], '-n', '5', '--seed', '0')
    assert r.returncode == 0 and r.stdout.lower().startswith('the movie'), r.stderr[-2000:]

def test_bad_inputs_exit_2_with_the_fix(run, tmp_path):
    assert_user_error(cli('classify', 'Nice', '--model', tmp_path/'missing'), 'does not exist', 'nlpbook-ch ulmfit --out')
    bad = tmp_path/'bad'; bad.mkdir(); (bad/'classifier.pkl').write_bytes(b'not a pickle')
    assert_user_error(cli('classify', 'Nice', '--model', bad), 'is corrupt', 'rerun')
    assert_user_error(cli('classify', '   ', '--model', run['out']), 'empty string')
    assert_user_error(cli('classify', '--file', tmp_path/'nope.txt', '--model', run['out']), 'Cannot read')
    assert_user_error(cli('next-token', ''), 'empty')
    assert_user_error(cli('next-token', 'Hello', '--model', tmp_path/'no_model'), 'no_model')

def test_debug_shows_the_traceback(tmp_path):
    r = cli('classify', 'Nice', '--model', tmp_path/'missing', '--debug')
    assert r.returncode == 2 and 'Traceback' in r.stderr

def test_next_token_with_a_local_model(tmp_path):
    from nlpbook_ch.gpt2 import tiny_gpt2
    r = cli('next-token', 'With great power comes great', '--model', tiny_gpt2(tmp_path/'tiny'), '-k', '3')
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(r.stdout.strip().splitlines()) == 4 and 'probability' in r.stdout

def test_docs_has_a_page_per_notebook(tmp_path):
    r = cli('docs', '--out', tmp_path/'site')
    assert r.returncode == 0, r.stderr[-2000:]
    nbs = sorted(p.stem for p in (ROOT/'nbs').glob('*.ipynb'))
    pages = {p.stem for p in (tmp_path/'site').glob('*.html')}
    assert pages == set(nbs)
    home = (tmp_path/'site'/'index.html').read_text()
    for n in nbs: assert f'href="{n}.html"' in home

def test_chapter_runs_offline_in_quick_mode(tmp_path, nb_flags):
    if 'slow' not in nb_flags: pytest.skip('executes every notebook (minutes): run with --nb-flags slow')
    t0 = time.time()
    r = cli('chapter', '--mode', 'quick', '--out', tmp_path/'ch', timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {p.name for p in (tmp_path/'ch').glob('*.ipynb')} == {p.name for p in (ROOT/'nbs').glob('*.ipynb')}
    figs = json.loads((tmp_path/'ch'/'figures.json').read_text())
    assert len(figs['stage_accuracy']) == 4 and 'gpt2_next_token_completion' in figs
    print(f'chapter: {time.time() - t0:.0f}s')
