#!/usr/bin/env python
"""Build the carried files for `bench/gpu_check.sh`: `.carry/site312.tar.xz` (the Python 3.12 packages a lent GPU machine
lacks: fastai, spaCy, nbdev, execnb, IPython, nbconvert, ipykernel and their dependencies, from this environment's installed
versions) and `.carry/data.tar.xz` (the shared data the suite and the benches read).

The machine seen in issue 11 has torch, transformers, accelerate, numpy, pandas, scikit-learn, matplotlib and pytest
but no package index. The closure of the roots below is computed from this environment's package metadata, minus
`HAVE`; wheels for CPython 3.12 manylinux are downloaded (`pip download --no-deps`), unpacked, stripped, and packed
with xz. `../shared/tools/site_bundle.sh` does the same for every installed package and failed here on a system
package absent from PyPI; the tracked tree plus both files must stay under the 64 MiB a call can carry.

    python bench/gpu_bundle.py            # writes .carry/site312.tar.xz and .carry/data.tar.xz (.carry/ is git-excluded)
"""
import re, shutil, subprocess, sys, tempfile
from importlib.metadata import distribution, PackageNotFoundError
from pathlib import Path
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
ROOTS = ['fastai', 'spacy', 'nbdev', 'execnb', 'ipython', 'nbformat', 'nbconvert', 'fastprogress', 'plum-dispatch', 'typer',
         'requests', 'six', 'tinycss2', 'ipykernel']   # ipykernel: `nlpbook-ch chapter` (and 04_cli's test of it) runs notebooks in a kernel
HAVE = {'torch', 'torchvision', 'torchaudio', 'triton', 'transformers', 'accelerate', 'numpy', 'pandas', 'scikit-learn', 'scipy',
        'huggingface-hub', 'safetensors', 'tokenizers', 'pyyaml', 'sympy', 'mpmath', 'networkx', 'filelock', 'fsspec', 'jinja2',
        'markupsafe', 'pillow', 'psutil', 'regex', 'tqdm', 'packaging', 'pytest', 'pluggy', 'iniconfig', 'python-dateutil',
        'pytz', 'tzdata', 'joblib', 'threadpoolctl', 'setuptools', 'typing-extensions', 'hf-xet',
        # on the machine already (fastai imported there in an earlier session without them in the bundle), or optional
        'matplotlib', 'fonttools', 'kiwisolver', 'contourpy', 'pyparsing', 'cycler', 'jedi', 'parso',
        'debugpy'}   # ipykernel's debugger: optional (ipykernel runs without it), and its wheel is large
MARKERS = dict(extra='', python_version='3.12', python_full_version='3.12.3', sys_platform='linux', platform_system='Linux',
               implementation_name='cpython', platform_python_implementation='CPython', os_name='posix', platform_machine='x86_64')
PLATFORMS = ['manylinux_2_17_x86_64', 'manylinux2014_x86_64', 'manylinux1_x86_64', 'manylinux_2_24_x86_64', 'manylinux_2_27_x86_64',
             'manylinux_2_28_x86_64', 'manylinux_2_31_x86_64', 'manylinux_2_34_x86_64', 'manylinux_2_35_x86_64']
DATA = ['imdb_subset', 'imdb_sample.csv', 'gpt2_tokenizer', 'README.md']

def norm(n): return re.sub(r'[-_.]+', '-', n).lower()

def closure(roots=ROOTS, have=HAVE) -> dict:
    "name -> installed version for `roots` and everything they require here (markers for Linux, CPython 3.12), minus `have`."
    seen = {}
    def visit(name):
        n = norm(name)
        if n in seen or n in have: return
        try: d = distribution(name)
        except PackageNotFoundError: seen[n] = None; return
        seen[n] = d.version
        for r in d.requires or []:
            req = Requirement(r)
            if req.marker is None or req.marker.evaluate(MARKERS): visit(req.name)
    for r in roots: visit(r)
    return {k: v for k, v in sorted(seen.items()) if v}

def main():
    carry = ROOT/'.carry'; carry.mkdir(exist_ok=True)
    pins = closure()
    print(f'{len(pins)} packages')
    with tempfile.TemporaryDirectory() as t:
        t = Path(t); (t/'pins.txt').write_text(''.join(f'{k}=={v}\n' for k, v in pins.items()))
        plat = [a for p in PLATFORMS for a in ('--platform', p)]
        subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:', '--python-version', '3.12',
                        '--implementation', 'cp', *plat, '-d', str(t/'whl'), '-r', str(t/'pins.txt')], check=True)
        site = t/'b'/'site312'; site.mkdir(parents=True)
        for w in sorted((t/'whl').glob('*.whl')): shutil.unpack_archive(w, site, 'zip')
        for so in site.rglob('*.so'): subprocess.run(['strip', '--strip-unneeded', str(so)], check=False)
        for d in [p for p in site.rglob('*') if p.is_dir() and p.name in ('tests', 'test')]: shutil.rmtree(d, ignore_errors=True)
        for p in site.rglob('*.pyi'): p.unlink()
        subprocess.run(f'tar -cf - -C {t/"b"} site312 | xz -T2 -6 > {carry/"site312.tar.xz"}', shell=True, check=True)
    shared = ROOT.parent/'shared'/'data'
    subprocess.run(['tar', '-cJf', str(carry/'data.tar.xz'), '-C', str(shared), *DATA], check=True)
    for f in ('site312.tar.xz', 'data.tar.xz'): print(f'.carry/{f}: {(carry/f).stat().st_size / 2**20:.1f} MiB')

if __name__ == '__main__': main()
