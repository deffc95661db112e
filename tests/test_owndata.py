"""Unit tests of `nlpbook_ch.owndata` beyond its notebook's: file and folder edge cases, the schedule rule's shape, the
report against scikit-learn, and the smoke run of `bench/imdb_baselines.py`. Seconds, no training."""
import importlib.util, json, sys
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from nlpbook_ch.owndata import (DataError, read_labelled, stratified_split, sorted_labels, schedule_for, classification_report,
                                report_markdown, plot_confusion_png, tfidf_baseline, nbsvm_baseline, MIN_PER_CLASS)

ROOT = Path(__file__).resolve().parents[1]

def _rows(label, n, start=0, sep=','): return ''.join(f'text {i}{sep}{label}\n' for i in range(start, start + n))

def _error(f) -> str:
    "The one-line message of the DataError `f` raises."
    with pytest.raises(DataError) as e: f()
    msg = str(e.value)
    assert '\n' not in msg, msg
    return msg

def test_encoding_error_names_the_line_and_the_fix(tmp_path):
    f = tmp_path/'d.csv'
    f.write_bytes(('text,label\n' + _rows('a', 5) + _rows('b', 5, 5)).encode() + 'naïve,b\n'.encode('latin-1'))
    before = f.read_bytes()
    msg = _error(lambda: read_labelled(f))
    assert 'line 12 has the byte 0xef' in msg and "encoding='latin-1'" in msg and '--encoding latin-1' in msg
    assert f.read_bytes() == before   # the reader's file is never changed
    assert read_labelled(f, encoding='latin-1', log=None).text.iloc[-1] == 'naïve'
    assert 'Unknown encoding' in _error(lambda: read_labelled(f, encoding='klingon'))

def test_byte_order_mark_and_txt_separator(tmp_path):
    f = tmp_path/'d.csv'
    f.write_bytes(b'\xef\xbb\xbf' + ('text,label\n' + _rows('a', 5) + _rows('b', 5, 5)).encode())
    assert len(read_labelled(f, log=None)) == 10   # the BOM is not glued to the name 'text'
    t = tmp_path/'d.txt'
    t.write_text('text\tlabel\n' + _rows('a', 5, sep='\t') + _rows('b', 5, 5, sep='\t'))
    assert set(read_labelled(t, log=None).label) == {'a', 'b'}
    t.write_text('text;label\n' + _rows('a', 5, sep=';') + _rows('b', 5, 5, sep=';'))
    assert set(read_labelled(t, sep=';', log=None).label) == {'a', 'b'}

def test_unparseable_table(tmp_path):
    f = tmp_path/'d.csv'
    f.write_text('text,label\n"unclosed quote,a\n' + _rows('a', 5))
    msg = _error(lambda: read_labelled(f))
    assert 'could not be parsed' in msg

def _folder(root, split, label, n, start=0):
    d = root/split/label; d.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n): (d/f'{i}.txt').write_text(f'{label} text {i}\nsecond line\x85 same text')

def test_folder_layout(tmp_path):
    for l in ('a', 'b'): _folder(tmp_path, 'train', l, 6); _folder(tmp_path, 'valid', l, 2, 100); _folder(tmp_path, 'test', l, 3, 200)
    _folder(tmp_path, 'train', 'unsup', 4, 300)
    notes = []
    df = read_labelled(tmp_path, log=notes.append)
    assert (len(df), int(df.is_valid.sum())) == (16, 4)   # valid/ is the validation set; test/ and train/unsup left out
    assert any('test/ is left out' in n for n in notes) and any('unsup' in n and 'skipped' in n for n in notes)
    assert df.text.str.contains('\n').all() and df.text.str.contains('\x85').all()   # a file is one text, whatever its line breaks
    (tmp_path/'train'/'a'/'dup.txt').write_text('a text 0\nsecond line\x85 same text')
    notes.clear(); read_labelled(tmp_path, log=notes.append)
    assert any("1 duplicate row(s)" in n and 'files train/a/' in n for n in notes), notes   # a folder's notes name files

def test_folder_without_labelled_files(tmp_path):
    (tmp_path/'train').mkdir()
    assert 'has no <label>/*.txt files' in _error(lambda: read_labelled(tmp_path))

def test_valid_column_edge_cases():
    df = pd.DataFrame(dict(text=[f't{i}' for i in range(12)], label=['a', 'b'] * 6))
    assert 'marks no row for validation' in _error(lambda: read_labelled(df.assign(v=False), valid_col='v', log=None))
    assert 'leaving none to train on' in _error(lambda: read_labelled(df.assign(v=True), valid_col='v', log=None))
    assert "no valid column 'v'" in _error(lambda: read_labelled(df, valid_col='v', log=None))
    got = read_labelled(df.assign(v=[True, True] + [False] * 10), valid_col='v', log=None)
    assert got.is_valid.tolist() == [True, True] + [False] * 10
    assert got.label.tolist() == ['a', 'b'] * 6 and got.text.tolist() == df.text.tolist()   # order kept, one row per input row

def test_labels_are_strings_as_written():
    df = pd.DataFrame(dict(text=[f't{i}' for i in range(15)], label=[3, 10, 2] * 5))
    got = read_labelled(df, log=None)
    assert sorted_labels(got.label) == ['2', '3', '10'] and got.label.map(type).eq(str).all()
    assert got.groupby('label').is_valid.sum().to_dict() == {'10': 1, '2': 1, '3': 1}

def test_rare_classes_are_all_named():
    df = pd.DataFrame(dict(text=[f't{i}' for i in range(13)], label=['a'] * 5 + ['b'] * 4 + ['c'] * 4))
    msg = _error(lambda: read_labelled(df, log=None))
    assert f"classes 'b' (4), 'c' (4) have fewer than {MIN_PER_CLASS} examples" in msg

def test_stratified_split_proportions():
    y = np.array(['x'] * 900 + ['y'] * 90 + ['z'] * 10)
    m = stratified_split(y, 0.2, seed=3)
    assert [int(m[y == c].sum()) for c in 'xyz'] == [180, 18, 2]

def test_schedule_shrinks_epochs_and_grows_batches_with_data():
    sizes = [10, 30, 50, 80, 100, 300, 640, 1_000, 5_000, 25_000, 99_999, 100_000, 1_000_000]
    s = [schedule_for(n, 2) for n in sizes]
    bs, ep, lm = [x['clf_bs'] for x in s], [sum(e for _, e, _ in x['stages']) for x in s], [x['lm_unfrozen'][0] for x in s]
    assert bs == sorted(bs) and ep == sorted(ep, reverse=True) and lm == sorted(lm, reverse=True)
    assert all(x['lm_frozen'] == (1, 1e-2) and isinstance(x['why'], str) and str(x['clf_bs']) in x['why'] for x in s)

def test_report_matches_sklearn_with_string_and_int_labels(tmp_path):
    from sklearn.metrics import accuracy_score, f1_score, recall_score
    rng = np.random.RandomState(1)
    t, p = rng.randint(0, 5, 500), rng.randint(0, 4, 500)
    rep = classification_report(t, p)
    assert rep['classes'] == ['0', '1', '2', '3', '4']
    assert abs(rep['accuracy'] - accuracy_score(t, p)) < 1e-12 and abs(rep['macro_f1'] - f1_score(t, p, average='macro')) < 1e-12
    assert np.allclose([rep['per_class'][c]['recall'] for c in rep['classes']], recall_score(t, p, average=None, zero_division=0))
    md = report_markdown(classification_report(['a|b', 'c'] * 3, ['a|b'] * 6))
    assert 'a\\|b' in md and md.count('\n') > 8
    png = plot_confusion_png(rep, tmp_path/'sub'/'cm.png')
    assert png.read_bytes()[:4] == b'\x89PNG' and sorted(p.name for p in png.parent.iterdir()) == ['cm.png']

def test_baselines_reject_mismatched_input():
    with pytest.raises(ValueError, match='lengths differ'): tfidf_baseline(['a', 'b'], ['x'], ['c'], ['x'])
    assert 'single class' in _error(lambda: nbsvm_baseline(['a b', 'b c'], ['x', 'x'], ['c'], ['x']))

@pytest.mark.parametrize('labels', [('pos', 'neg'), (1, 0)])
def test_baselines_predict_an_easy_task(labels):
    pos = [f'good great film {i}' for i in range(10)]; neg = [f'bad awful film {i}' for i in range(10)]
    p, n = labels
    for fn in (tfidf_baseline, nbsvm_baseline):
        r = fn(pos + neg, [p] * 10 + [n] * 10, ['a great film', 'an awful film'], [p, n], cv=3)
        assert r['predictions'] == [p, n] and r['accuracy'] == 1.0 and r['cv_macro_f1'], (fn.__name__, r['cv_macro_f1'])

def _bench():
    spec = importlib.util.spec_from_file_location('imdb_baselines', ROOT/'bench'/'imdb_baselines.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def test_bench_smoke_run(tmp_path):
    "`bench/imdb_baselines.py --smoke`: both baselines on the shipped subset, result files written."
    _bench().main(['--smoke', '--out', str(tmp_path)])
    res = json.loads((tmp_path/'imdb_subset_baselines_smoke.json').read_text())
    assert (res['data']['n_train'], res['data']['n_test'], res['smoke']) == (1000, 1000, True)
    for k in ('tfidf_lr', 'nbsvm'):
        r = res['methods'][k]
        assert 0.7 < r['accuracy'] <= 1 and set(r['seconds_by_step']) == {'features', 'choose_C', 'fit_predict'}, r
        assert str(r['C']) in [str(float(c)) for c in r['cv_macro_f1']]   # the chosen C is one of those cross-validated
    md = (tmp_path/'imdb_subset_baselines_smoke.md').read_text()
    assert '91.22%' in md and '| NB-SVM' in md and res['machine']['cpu'] in md
    assert not list(tmp_path.glob('*.tmp'))
