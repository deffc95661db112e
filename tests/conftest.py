"""Test-session settings: offline, no writes to the home folder, deliberate thread count.

These run before any test module imports torch, fastai or transformers, so the libraries read them.
"""
import os, tempfile
from pathlib import Path
import pytest

_TMP = Path(tempfile.mkdtemp(prefix='nlpbook_ch_tests_'))
# Download-capable libraries are switched offline, so no test can wait on a network retry loop.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('NLPBOOK_OFFLINE', '1')
# fastai, Hugging Face and the package write their caches into the session's temp folder.
os.environ.setdefault('FASTAI_HOME', str(_TMP/'fastai'))
os.environ.setdefault('HF_HOME', str(_TMP/'hf'))
os.environ.setdefault('NLPBOOK_CACHE', str(_TMP/'nlpbook_cache'))
os.environ.setdefault('MPLBACKEND', 'Agg')
# One torch/OpenMP thread per process. Measured on the 2-core test machine: with a second busy process on
# the cores, 2 threads made a small fastai training run 3-35x slower (OpenMP threads spinning against each
# other), while on an idle machine 2 threads ran 04_ulmfit 1.9x faster than 1. Override with OMP_NUM_THREADS
# (.ci/run sets 2: CI has the machine to itself).
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')

def pytest_addoption(parser):
    parser.addoption('--nb-flags', default='', help='space-separated notebook test flags to run as well (e.g. "slow cuda online")')

def pytest_configure(config):
    # Cells flagged `online` need the network: when they are asked for, lift the offline switches
    # (this runs before test modules import huggingface_hub, which reads HF_HUB_OFFLINE at import).
    if 'online' in config.getoption('--nb-flags').split():
        for k in ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'NLPBOOK_OFFLINE'): os.environ[k] = '0'

@pytest.fixture(scope='session')
def nb_flags(request): return request.config.getoption('--nb-flags').split()

@pytest.fixture(scope='session')
def tmp_root(): return _TMP
