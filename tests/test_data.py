"""nlpbook_ch.data: the lookup order, clear errors, fast offline failure and atomic downloads."""
import os, re, subprocess, sys, time
from pathlib import Path
import pytest
from nlpbook_ch.data import (find_data, imdb_counts, check_data, download_extract, DataNotFoundError,
                             DataLayoutError, DATASETS)

SHARED = Path(__file__).resolve().parents[2]/'shared'/'data'

def _readme_counts():
    "The per-folder counts from the subset's README table."
    text = (SHARED/'imdb_subset'/'README.md').read_text()
    rows = dict(re.findall(r'^\| (train/pos|train/neg|test/pos|test/neg|unsup)\s*\|\s*(\d+)', text, re.M))
    return {k: int(v) for k, v in rows.items()}

def test_imdb_resolves_to_shared_subset_with_readme_counts():
    p = find_data('imdb')
    assert p == SHARED/'imdb_subset'
    assert imdb_counts(p) == _readme_counts()

def test_each_dataset_is_found():
    assert find_data('imdb_sample') == SHARED/'imdb_sample.csv'
    assert (find_data('gpt2_tokenizer')/'vocab.json').exists()

def test_env_var_comes_before_shared_data(tmp_path, monkeypatch):
    d = tmp_path/'gpt2_tokenizer'; d.mkdir()
    for f in ('vocab.json', 'merges.txt'): (d/f).write_text('{}')
    monkeypatch.setenv('NLPBOOK_DATA', str(tmp_path))
    assert find_data('gpt2_tokenizer') == d

def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match='known datasets: imdb, imdb_full, imdb_sample, gpt2_tokenizer'): find_data('imbd')
    with pytest.raises(TypeError): find_data(None)

def test_wrong_layout_names_missing_subfolder(tmp_path):
    (tmp_path/'train'/'pos').mkdir(parents=True); (tmp_path/'train'/'neg').mkdir()
    with pytest.raises(DataLayoutError, match="lacks 'test/pos', 'test/neg'"): find_data('imdb', tmp_path)
    with pytest.raises(DataNotFoundError, match='does not exist'): find_data('imdb', tmp_path/'nope')

_NOT_FOUND = """
import time, sys
from nlpbook_ch.data import find_data, DataNotFoundError
t0 = time.time()
try: find_data(sys.argv[1])
except DataNotFoundError as e: print(f'{time.time()-t0:.2f}'); print(e)
else: print('FOUND')
"""

@pytest.mark.parametrize('name', ['imdb', 'gpt2_tokenizer'])
def test_offline_not_found_is_fast_and_names_env_var(name, tmp_path):
    "In a fresh process, with the real connectivity check (no offline switch set), shared data hidden."
    # NLPBOOK_DATA unset: when set, it is the only place searched and no download is tried (see test_bad_env_var_is_an_error)
    env = {k: v for k, v in os.environ.items() if k not in ('NLPBOOK_OFFLINE', 'HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'NLPBOOK_DATA')}
    env.update(NLPBOOK_SKIP_SHARED='1', FASTAI_HOME=str(tmp_path/'fastai'), HF_HOME=str(tmp_path/'hf'))
    t0 = time.time()
    out = subprocess.run([sys.executable, '-c', _NOT_FOUND, name], env=env, capture_output=True, text=True, timeout=60).stdout
    if out.startswith('FOUND'): pytest.skip('this machine is online: the dataset was downloaded')
    assert time.time() - t0 < 10 + 5   # process start and imports included
    secs, msg = out.split('\n', 1)
    assert float(secs) < 10
    assert 'NLPBOOK_DATA' in msg and str(tmp_path) in msg and 'download: skipped, this machine is offline' in msg, msg

def test_interrupted_download_leaves_nothing(tmp_path):
    def fetch(url, dest):
        Path(dest).write_bytes(b'partial'); raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): download_extract(DATASETS['imdb'].url, tmp_path/'imdb', fetch=fetch)
    assert list(tmp_path.iterdir()) == []

@pytest.mark.parametrize('layout', ['empty', 'file', 'missing', 'broken'])
def test_bad_env_var_is_an_error(layout, tmp_path, monkeypatch):
    "A set NLPBOOK_DATA that does not hold the data is an error, although the shipped data could be found (issue 14, item 7)."
    assert find_data('imdb') == SHARED/'imdb_subset'
    d = tmp_path/'data'; d.mkdir()
    if layout == 'file': d = tmp_path/'data.txt'; d.write_text('x')
    if layout == 'missing': d = tmp_path/'nope'
    if layout == 'broken': (d/'imdb'/'train'/'pos').mkdir(parents=True)
    monkeypatch.setenv('NLPBOOK_DATA', str(d))
    with pytest.raises(DataNotFoundError) as e: find_data('imdb')
    msg = str(e.value)
    assert f'NLPBOOK_DATA={d}' in msg, msg
    if layout == 'broken': assert "lacks 'train/neg'" in msg

def test_empty_path_is_refused_not_the_current_folder(tmp_path, monkeypatch):
    "Issue 14, item 13: find_data(path='') searched the current folder (Path('') is '.')."
    for rel in ('train/pos', 'train/neg', 'test/pos', 'test/neg'): (tmp_path/rel).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)   # a current folder that looks like an IMDB copy
    with pytest.raises(ValueError, match='the path is empty'): find_data('imdb', path='')
    with pytest.raises(ValueError, match='the path is empty'): find_data('imdb', path='  ')
