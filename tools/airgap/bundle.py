#!/usr/bin/env python
"""Pack what an air-gapped GPU server needs to run the package's notebooks, tests and benchmarks: the Python packages it
lacks (`site<version>.tar.xz`: fastai, spaCy, nbdev, execnb, IPython, nbconvert, ipykernel and their dependencies, at the
versions installed here, as wheels for the server's Python) and the shared data (`data.tar.xz`: the IMDB subset, the
1,000-review sample, GPT-2's tokenizer). Run it here, where the package index is reachable; copy the repository and the
two files to the server; there `tools/airgap/run.sh` unpacks them and runs a command.

A server with CUDA often comes with torch, transformers, numpy, pandas, scikit-learn, matplotlib and pytest already
(`HAVE`): those are left out, so that the server's CUDA build of torch is the one used. The closure of `ROOTS` is computed
from this environment's package metadata (markers evaluated for Linux x86-64 and the server's Python); wheels are
downloaded with `pip download --no-deps`, unpacked, stripped of tests, type stubs and debug symbols, and packed with xz.

    python tools/airgap/bundle.py                       # Python 3.12 server; writes tools/airgap/build/site312.tar.xz, data.tar.xz
    python tools/airgap/bundle.py --python 3.11 --have debugpy --out DIR
"""
import argparse, re, shutil, subprocess, sys, tempfile
from importlib.metadata import distribution, PackageNotFoundError
from pathlib import Path
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
ROOTS = ['fastai', 'spacy', 'nbdev', 'execnb', 'ipython', 'nbformat', 'nbconvert', 'fastprogress', 'plum-dispatch', 'typer',
         'requests', 'six', 'tinycss2', 'ipykernel']   # ipykernel: `nlpbook-ch chapter` runs notebooks in a kernel
HAVE = {'torch', 'torchvision', 'torchaudio', 'triton', 'transformers', 'accelerate', 'numpy', 'pandas', 'scikit-learn', 'scipy',
        'huggingface-hub', 'safetensors', 'tokenizers', 'pyyaml', 'sympy', 'mpmath', 'networkx', 'filelock', 'fsspec', 'jinja2',
        'markupsafe', 'pillow', 'psutil', 'regex', 'tqdm', 'packaging', 'pytest', 'pluggy', 'iniconfig', 'python-dateutil',
        'pytz', 'tzdata', 'joblib', 'threadpoolctl', 'setuptools', 'typing-extensions', 'hf-xet',
        'matplotlib', 'fonttools', 'kiwisolver', 'contourpy', 'pyparsing', 'cycler', 'jedi', 'parso',
        'debugpy'}   # ipykernel's debugger: optional (ipykernel runs without it), and its wheel is large
PLATFORMS = ['manylinux_2_17_x86_64', 'manylinux2014_x86_64', 'manylinux1_x86_64', 'manylinux_2_24_x86_64', 'manylinux_2_27_x86_64',
             'manylinux_2_28_x86_64', 'manylinux_2_31_x86_64', 'manylinux_2_34_x86_64', 'manylinux_2_35_x86_64']
DATA = ['imdb_subset', 'imdb_sample.csv', 'gpt2_tokenizer', 'README.md']

def norm(n): return re.sub(r'[-_.]+', '-', n).lower()

def markers(python:str) -> dict:
    "Environment markers of a CPython `python` ('3.12') server on Linux x86-64."
    return dict(extra='', python_version=python, python_full_version=f'{python}.0', sys_platform='linux', platform_system='Linux',
                implementation_name='cpython', platform_python_implementation='CPython', os_name='posix', platform_machine='x86_64')

def closure(roots=ROOTS, have=HAVE, python='3.12') -> dict:
    "name -> installed version for `roots` and everything they require here (markers of the server), minus `have`."
    seen, env = {}, markers(python)
    def visit(name):
        n = norm(name)
        if n in seen or n in have: return
        try: d = distribution(name)
        except PackageNotFoundError: seen[n] = None; return
        seen[n] = d.version
        for r in d.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate(env): visit(req.name)
    for r in roots: visit(r)
    return {k: v for k, v in sorted(seen.items()) if v}

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--python', default='3.12', help="the server's Python version, major.minor (default 3.12)")
    p.add_argument('--have', nargs='*', default=[], help='more packages the server already has (left out of the bundle)')
    p.add_argument('--out', type=Path, default=ROOT/'tools'/'airgap'/'build', help='output folder (default tools/airgap/build, git-ignored)')
    p.add_argument('--data', type=Path, default=ROOT.parent/'shared'/'data', help='the shared data folder to pack (default ../shared/data)')
    a = p.parse_args(argv)
    if not re.fullmatch(r'3\.\d+', a.python): p.error(f'--python must look like 3.12, got {a.python!r}')
    missing = [d for d in DATA if not (a.data/d).exists()]
    if missing: p.error(f"{a.data} lacks {', '.join(missing)}: pass --data, the folder holding the shared data")
    site = f"site{a.python.replace('.', '')}"
    a.out.mkdir(parents=True, exist_ok=True)
    pins = closure(have=HAVE | {norm(h) for h in a.have}, python=a.python)
    print(f'{len(pins)} packages for Python {a.python}')
    with tempfile.TemporaryDirectory() as t:
        t = Path(t); (t/'pins.txt').write_text(''.join(f'{k}=={v}\n' for k, v in pins.items()))
        plat = [x for pl in PLATFORMS for x in ('--platform', pl)]
        subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:', '--python-version', a.python,
                        '--implementation', 'cp', *plat, '-d', str(t/'whl'), '-r', str(t/'pins.txt')], check=True)
        dest = t/'b'/site; dest.mkdir(parents=True)
        for w in sorted((t/'whl').glob('*.whl')): shutil.unpack_archive(w, dest, 'zip')
        for so in dest.rglob('*.so'): subprocess.run(['strip', '--strip-unneeded', str(so)], check=False)
        for d in [q for q in dest.rglob('*') if q.is_dir() and q.name in ('tests', 'test')]: shutil.rmtree(d, ignore_errors=True)
        for q in dest.rglob('*.pyi'): q.unlink()
        tmp = a.out/f'.{site}.tar.xz.tmp'
        subprocess.run(f'tar -cf - -C {t/"b"} {site} | xz -T2 -6 > {tmp}', shell=True, check=True)
        tmp.replace(a.out/f'{site}.tar.xz')
    tmp = a.out/'.data.tar.xz.tmp'
    subprocess.run(['tar', '-cJf', str(tmp), '-C', str(a.data), *DATA], check=True)
    tmp.replace(a.out/'data.tar.xz')
    for f in (f'{site}.tar.xz', 'data.tar.xz'): print(f'{a.out/f}: {(a.out/f).stat().st_size / 2**20:.1f} MiB')

if __name__ == '__main__': main()
