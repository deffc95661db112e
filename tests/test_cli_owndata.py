"""`nlpbook-ch ulmfit --data`: a reader's own labelled texts through the command, as a user runs it (subprocesses)."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXE = [shutil.which('nlpbook-ch')] if shutil.which('nlpbook-ch') else [sys.executable, '-m', 'nlpbook_ch.cli']
from nlpbook_ch.ulmfit import TINY
from nlpbook_ch.data import find_data

def cli(*args, cwd=ROOT, timeout=600):
    return subprocess.run([*EXE, *map(str, args)], capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS='1'),
                          cwd=cwd, timeout=timeout)

def one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stdout[-800:], r.stderr[-2000:])
    lines = [l for l in r.stderr.splitlines() if l.startswith('nlpbook-ch: error:')]
    assert len(lines) == 1 and 'Traceback' not in r.stderr, r.stderr
    for n in needles: assert n in lines[0], lines[0]

@pytest.fixture(scope='module')
def own(tmp_path_factory):
    "A 3-class, unbalanced CSV built from the shipped IMDB subset's star ratings (file names `<id>_<rating>.txt`), and a tiny run on it."
    d = tmp_path_factory.mktemp('own')
    rows = []
    for f in sorted(find_data('imdb').glob('train/*/*.txt'))[:600]:
        r = int(f.stem.split('_')[1])
        rows.append((f.read_text(encoding='utf-8').replace('\n', ' '), 'awful' if r <= 2 else 'mixed' if r <= 7 else 'great'))
    import pandas as pd
    pd.DataFrame(rows, columns=['review', 'stars']).to_csv(d/'reviews.csv', index=False)
    (d/'tiny.json').write_text(json.dumps({k: v for k, v in TINY.items() if k not in ('n_per_label', 'lm_n_per_label', 'lm_n_unsup')}))
    r = cli('ulmfit', '--data', d/'reviews.csv', '--text-col', 'review', '--label-col', 'stars', '--config', d/'tiny.json', '--out', d/'run')
    return dict(dir=d, run=r, out=d/'run')

def test_a_csv_trains_and_reports(own):
    r = own['run']
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'plan  ' in r.stdout and 'classifier batch' in r.stdout             # the schedule, printed before training
    lines = r.stdout.splitlines()
    assert sum(l.startswith('plan  ') and 'training texts' in l for l in lines) == 1   # the schedule's why, once
    assert not any(l.startswith('data  data') for l in lines)                        # each line tagged once
    assert re.search(r'TF-IDF baseline accuracy [0-9.]+, macro-F1 [0-9.]+ \(\d+\.\d s\)', r.stdout), r.stdout[-2000:]
    assert 'ULMFiT' in r.stdout and 'TF-IDF baseline' in r.stdout               # both results, side by side
    rep = json.loads((own['out']/'report.json').read_text())
    assert rep['complete'] and rep['data']['classes'] == ['awful', 'great', 'mixed']
    ev = rep['evaluation']
    assert set(ev['ulmfit']['per_class']) == {'awful', 'great', 'mixed'} and 'macro_f1' in ev['tfidf']
    assert (own['out']/'confusion.png').exists() and (own['out']/'data.csv').exists()

def test_classify_prints_the_labels_as_written(own):
    r = cli('classify', 'A dreadful, boring film.', 'What a wonderful film!', '--model', own['out'])
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and all(l.split('\t')[0] in ('awful', 'mixed', 'great') for l in lines), lines

def test_resume_alone_uses_the_runs_own_data_and_config(own):
    r = cli('ulmfit', '--out', own['out'], '--resume')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'saved configuration' in r.stdout and not any(l.startswith('done ') for l in r.stdout.splitlines())   # nothing trained again

def test_bad_data_is_one_line_before_training(own, tmp_path):
    d = own['dir']
    one_line_error(cli('ulmfit', '--data', d/'reviews.csv', '--out', tmp_path/'a'), "'text'", "'review', 'stars'")   # the columns found
    (tmp_path/'latin1.csv').write_bytes('text,label\nUn film très réussi,pos\nNul,neg\n'.encode('latin-1'))
    one_line_error(cli('ulmfit', '--data', tmp_path/'latin1.csv', '--out', tmp_path/'b'), 'utf-8', 'line 2', '--encoding')
    (tmp_path/'one.csv').write_text('text,label\n' + ''.join(f'review {i},pos\n' for i in range(20)))
    one_line_error(cli('ulmfit', '--data', tmp_path/'one.csv', '--out', tmp_path/'c'), 'class')
    assert not any((tmp_path/n).exists() for n in 'abc')                           # nothing written
