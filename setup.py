"""Packaging for nlpbook_ch, driven by settings.ini (nbdev 2's classic setup.py).

nbdev's original template imported `pkg_resources`, which current setuptools no longer ships; this one
parses requirements with `packaging` instead. The license is written as an SPDX expression (PEP 639,
setuptools 77 or newer: pyproject.toml asks for it), without a license classifier. The pretrained models
in nlpbook_ch/pretrained/ are package data: the wheel, the sdist and a git-URL install carry them.
"""
from configparser import ConfigParser
import setuptools
from packaging.requirements import Requirement
from packaging.version import Version

assert Version(setuptools.__version__) >= Version('77'), 'nlpbook_ch needs setuptools 77 or newer to build (pip install -U setuptools)'

config = ConfigParser(delimiters=['='])
config.read('settings.ini', encoding='utf-8')
cfg = config['DEFAULT']

expected = ('version description keywords author author_email license status min_python python_versions audience '
            'language lib_name user git_url doc_host doc_baseurl').split()
missing = [o for o in expected if o not in cfg]
assert not missing, f'settings.ini is missing: {missing}'

spdx = {'apache2': 'Apache-2.0', 'mit': 'MIT', 'bsd3': 'BSD-3-Clause', 'gpl3': 'GPL-3.0-only'}   # nbdev's names
statuses = ['0 - Pre-Planning', '1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable',
            '6 - Mature', '7 - Inactive']   # settings.ini's status is the number in front (nbdev's list)
py_versions = cfg['python_versions'].split()
assert py_versions[0] == cfg['min_python'], 'settings.ini: python_versions must start at min_python'

def parse_reqs(key):
    "Requirement strings from a space-separated settings.ini entry (each one validated by `packaging`)."
    return [str(Requirement(o)) for o in cfg.get(key, '').split()]

console_scripts = [o.strip() for o in cfg.get('console_scripts', '').splitlines() if o.strip()]
git_url = cfg['git_url'].rstrip('/')

setuptools.setup(
    name=cfg['lib_name'],
    license_expression=spdx.get(cfg['license'].lower(), cfg['license']),
    license_files=['LICENSE'],
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status'])],
        'Intended Audience :: ' + cfg['audience'].title(),
        'Natural Language :: ' + cfg['language'].title(),
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ] + [f'Programming Language :: Python :: {o}' for o in py_versions],
    url=git_url,
    project_urls={'Documentation': cfg['doc_host'].rstrip('/') + cfg['doc_baseurl'], 'Repository': git_url,
                  'Issues': git_url + '/issues'},
    packages=setuptools.find_packages(include=[cfg['lib_name'], cfg['lib_name'] + '.*']),
    package_data={cfg['lib_name']: ['pretrained/*/*']},   # the shipped models, each folder with its model card
    include_package_data=False,   # only what package_data names goes into the wheel (MANIFEST.in shapes the sdist)
    install_requires=parse_reqs('requirements'),
    extras_require={'dev': parse_reqs('dev_requirements')},
    python_requires='>=' + cfg['min_python'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': console_scripts, 'nbdev': [f'{cfg["lib_path"]}={cfg["lib_path"]}._modidx:d']},
    **{k: cfg[k] for k in ('version', 'description', 'keywords', 'author', 'author_email')},
)
