"""Write README.md from nbs/index.ipynb.

nbdev 2's `nbdev_readme` renders through Quarto, which cannot be installed offline; this does the same job
with nbconvert: markdown cells verbatim, code cells as fenced Python, stored outputs as text blocks.
Usage: `python tools/make_readme.py` (write) or `python tools/make_readme.py --check` (exit 1 if stale).
"""
import sys
from pathlib import Path
import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parents[1]
HEADER = '<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n'

def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    "The README text for the notebook at `nb_path`."
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells = [c for c in nb.cells if not c.source.lstrip().startswith('#| hide')]
    for c in nb.cells:
        if c.cell_type == 'code':
            c.source = '\n'.join(l for l in c.source.splitlines() if not l.startswith('#|'))
    body, _ = MarkdownExporter(exclude_raw=True).from_notebook_node(nb)
    return HEADER + body.strip() + '\n'

def main(argv):
    text, readme = render(), ROOT/'README.md'
    if '--check' in argv:
        ok = readme.exists() and readme.read_text(encoding='utf-8') == text
        if not ok: print('README.md is out of date: run `python tools/make_readme.py`')
        return 0 if ok else 1
    readme.write_text(text, encoding='utf-8')
    return 0

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
