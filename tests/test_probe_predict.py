"""Prediction given what a user gives it: reviews holding breaks other than a newline, one string where a list was expected, None.

A file of real IMDB test reviews, one per line, gave more rows than lines: `str.splitlines` also breaks at U+0085 (NEL),
which some reviews hold, and at U+2028, form feeds and other separators. `classify(run, 'abc')` classified 'a', 'b', 'c'.
"""
import json, os, subprocess, sys
from pathlib import Path
import pytest
from nlpbook_ch.predict import read_texts, load_trained, classify

ROOT = Path(__file__).resolve().parents[1]
SUBSET = ROOT.parent/'shared'/'data'/'imdb_subset'
BREAKS = '\x85\u2028\u2029\x0c\x0b\x1c\x1d\x1e'   # what str.splitlines breaks at, besides \n and \r

def _odd_reviews(n_plain=10) -> list:
    "The subset's test reviews that `str.splitlines` would cut (they hold U+0085), a few others, and one review per other break."
    files = sorted((SUBSET/'test').glob('*/*.txt'))
    texts = [f.read_text(encoding='utf-8') for f in files]
    odd = [t for t in texts if len(t.splitlines()) > 1]
    assert len(odd) >= 5 and all('\x85' in t for t in odd), len(odd)   # the shipped subset holds 11 such reviews
    return odd + [t for t in texts if len(t.splitlines()) == 1][:n_plain] + [f'Before{c}after: review {i}.' for i, c in enumerate(BREAKS)]

def test_a_line_ends_at_a_newline_only(tmp_path):
    reviews = _odd_reviews()
    f = tmp_path/'reviews.txt'
    f.write_bytes(('\n'.join(reviews[:5]) + '\r\n' + '\r\n'.join(reviews[5:-1]) + '\r' + reviews[-1] + '\n').encode('utf-8'))
    assert read_texts(file=f) == reviews   # one review per line, each whole

def test_a_string_is_one_text_and_none_is_an_error():
    assert read_texts('abc') == ['abc'] and read_texts(('abc', 'de')) == ['abc', 'de']
    for call, needle in ((lambda: read_texts(None), 'No text given'), (lambda: read_texts(b'abc'), 'got bytes'),
                         (lambda: load_trained(None), 'model_dir must be a run folder (a str or Path), got NoneType'),
                         (lambda: load_trained(''), 'model_dir is empty'),
                         (lambda: classify('no_such_run', None), 'Expected a string or a list of strings, got NoneType')):
        with pytest.raises((TypeError, ValueError)) as e: call()
        assert needle in str(e.value) and '\n' not in str(e.value), str(e.value)

_DRIVER = """
import contextlib, io, json, sys
from pathlib import Path
from nlpbook_ch.ulmfit import ulmfit_config, TINY
from nlpbook_ch.job import run_ulmfit
from nlpbook_ch.predict import classify
from nlpbook_ch.cli import main
out = Path(sys.argv[1])/'run'
assert run_ulmfit(out, ulmfit_config('quick', **TINY), log=lambda *a: None)['complete']
res = dict(one=[t for _, _, t in classify(out, 'A wonderful film.')])
o, e = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e): rc = main(['classify', '--file', sys.argv[2], '--model', str(out), '--fp32'])
res.update(returncode=rc, stdout=o.getvalue(), stderr=e.getvalue())
print('RESULTS=' + json.dumps(res))
"""

def test_classify_gives_one_row_per_line(tmp_path):
    "`nlpbook-ch classify --file`: as many rows as lines, each the review of its line, in order; `classify(run, text)`: one row."
    reviews = _odd_reviews()
    f = tmp_path/'reviews.txt'; f.write_text('\n'.join(reviews) + '\n', encoding='utf-8')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, '-c', _DRIVER, str(tmp_path), str(f)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert r.returncode == 0 and 'RESULTS=' in r.stdout, r.stderr[-3000:]
    res = json.loads(r.stdout.split('RESULTS=', 1)[1])
    assert res['one'] == ['A wonderful film.']
    assert res['returncode'] == 0, res['stderr'][-2000:]
    rows = [l.split('\t') for l in res['stdout'].split('\n') if l]   # the printed rows, split at newlines only
    assert len(rows) == len(reviews), (len(rows), len(reviews))
    assert [t for _, _, t in rows] == [' '.join(t.split())[:80] for t in reviews]   # the CLI prints each review on one line
    assert all(l in ('neg', 'pos') and 0.5 <= float(p) <= 1 for l, p, _ in rows)
