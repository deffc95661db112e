"""nlpbook_ch.data: the lookup order, clear errors, fast offline failure and atomic downloads."""
import os, re, subprocess, sys, time
from pathlib import Path
import pytest
from nlpbook_ch.data import (find_data, imdb_counts, imdb_workdir, check_data, download_extract, DataNotFoundError,
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
    "A set NLPBOOK_DATA that does not hold the data is an error, although the shipped data could be found."
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
    "find_data(path='') searched the current folder (Path('') is '.')."
    for rel in ('train/pos', 'train/neg', 'test/pos', 'test/neg'): (tmp_path/rel).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)   # a current folder that looks like an IMDB copy
    with pytest.raises(ValueError, match='the path is empty'): find_data('imdb', path='')
    with pytest.raises(ValueError, match='the path is empty'): find_data('imdb', path='  ')

def test_arguments_that_are_not_names_or_paths_are_one_line_errors():
    "find_data(path=123) failed deep inside pathlib; find_data(None) did not say which names exist."
    with pytest.raises(TypeError, match='Dataset name must be a string, one of imdb, imdb_full, imdb_sample, gpt2_tokenizer; got None'):
        find_data(None)
    for bad in (123, b'/data/imdb', ['imdb_subset']):
        with pytest.raises(TypeError, match=r'imdb: path must be a folder or file path \(a str or pathlib.Path\), got'): find_data('imdb', path=bad)
        with pytest.raises(TypeError, match='path must be a folder or file path'): check_data('imdb', bad)

def test_imdb_workdir_refuses_a_bool_count(tmp_path):
    "True is an int to Python: imdb_workdir(n_per_label=True) made a working copy of 1 review per label."
    for k in ('n_per_label', 'n_unsup'):
        for bad in (True, False, 0, 2.0, '5'):
            with pytest.raises(ValueError, match=f'{k} must be a positive int'): imdb_workdir(dest=tmp_path/'wd', **{k: bad})
    assert not (tmp_path/'wd').exists()

def test_imdb_workdir_never_deletes_a_folder_it_did_not_make(tmp_path):
    "A dest without imdb_workdir's marker was removed with shutil.rmtree (a user's folder, or one fastai saved models in)."
    mine = tmp_path/'my_reviews'; (mine/'models').mkdir(parents=True); (mine/'models'/'stage2.pth').write_bytes(b'weights')
    with pytest.raises(FileExistsError, match='is not a working copy made by imdb_workdir; pass another dest'): imdb_workdir(dest=mine)
    assert (mine/'models'/'stage2.pth').read_bytes() == b'weights'

def test_imdb_workdir_does_not_reuse_a_copy_of_other_reviews(tmp_path):
    "The same dest asked for with other counts returned the first copy silently (20 reviews per label for 50)."
    wd = imdb_workdir(n_per_label=20, n_unsup=10, dest=tmp_path/'wd')
    assert imdb_workdir(n_per_label=20, n_unsup=10, dest=wd) == wd                 # made the same way: reused
    with pytest.raises(FileExistsError, match=r'with n_per_label=20, n_unsup=10, not of .* with n_per_label=50, n_unsup=10'):
        imdb_workdir(n_per_label=50, n_unsup=10, dest=wd)
    (wd/'.complete').write_text(str(SHARED.resolve()/'imdb_subset'))              # the marker earlier versions wrote: the source
    assert imdb_workdir(n_per_label=20, n_unsup=10, dest=wd) == wd
    assert imdb_counts(wd)['train/pos'] == 20

def test_fastai_on_the_working_copy_writes_nothing_beside_the_data():
    "The documented route for fastai: TextDataLoaders.from_folder(imdb_workdir()) tokenises into the cache, not into shared/data."
    from fastai.text.all import TextDataLoaders
    from nlpbook_ch.core import cache_dir
    before = sorted(p.name for p in SHARED.iterdir())
    wd = imdb_workdir(n_per_label=3, n_unsup=2)
    assert wd.parent == cache_dir('imdb')
    dls = TextDataLoaders.from_folder(wd, valid='test', bs=4)
    assert (len(dls.train_ds), len(dls.valid_ds)) == (6, 6)
    assert (wd.parent/f'{wd.name}_tok'/'counter.pkl').exists()
    assert sorted(p.name for p in SHARED.iterdir()) == before

def test_an_unwritable_cache_does_not_stop_reporting_an_archive(tmp_path, monkeypatch):
    "find_data(unpack=False) only reports where imdb_full is: it needs no cache (it tried to create one, and failed)."
    blocker = tmp_path/'a_file'; blocker.write_text('x')
    monkeypatch.setenv('NLPBOOK_CACHE', str(blocker/'cache'))                      # cannot be created: its parent is a file
    (tmp_path/'data'/'imdb_full').mkdir(parents=True)
    (tmp_path/'data'/'imdb_full'/'imdb.tgz').write_bytes(b'not read')
    monkeypatch.setenv('NLPBOOK_DATA', str(tmp_path/'data'))
    assert find_data('imdb_full', unpack=False) == tmp_path/'data'/'imdb_full'/'imdb.tgz'
    with pytest.raises(OSError, match='set NLPBOOK_CACHE to a writable folder'): find_data('imdb_full')   # unpacking needs it
