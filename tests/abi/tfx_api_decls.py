"""Shared helpers of the ABI tests: the public headers, the functions they declare TFX_API,
and the names listed in lib/*/exports*.txt. Plain text parsing, no compiler needed."""
import glob
import os
import re


def public_headers(include_dir):
    """Every public header, found by globbing so new headers are covered automatically."""
    return sorted(glob.glob(os.path.join(include_dir, '*.h')))


def _strip_c(text):
    """Remove comments, string literals and preprocessor lines (with continuations)."""
    text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
    text = re.sub(r'//[^\n]*', ' ', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    out, in_pp = [], False
    for line in text.split('\n'):
        if in_pp or line.lstrip().startswith('#'):
            in_pp = line.rstrip().endswith('\\')
            continue
        out.append(line)
    return '\n'.join(out)


_DECL = re.compile(r'\bTFX_API\b([^;{}]*?)\b([A-Za-z_]\w*)\s*\(', re.S)


def api_functions(header):
    """Names of the functions a header declares TFX_API."""
    with open(header, encoding='utf-8') as f:
        text = _strip_c(f.read())
    names = []
    for m in _DECL.finditer(text):
        names.append(m.group(2))
    return names


def all_api_functions(include_dir):
    """{name: header} over all public headers; a name declared twice is reported."""
    found, dups = {}, []
    for h in public_headers(include_dir):
        for n in api_functions(h):
            if n in found:
                dups.append(f'{n} ({os.path.basename(found[n])} and {os.path.basename(h)})')
            found[n] = h
    return found, dups


def export_names(path):
    """Names in one exports*.txt (one per line, '#' comments), as lib/gen_map.py reads them."""
    names = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                names.append(line)
    return names


def export_files(source_root):
    return sorted(glob.glob(os.path.join(source_root, 'lib', '*', 'exports*.txt')))
