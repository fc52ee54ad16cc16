#!/usr/bin/env python3
"""Symbol test: libtfx.so exports exactly the intended tfx_* names.

Usage: check_symbols.py LIBTFX_SO SOURCE_ROOT [MAP_INPUT_EXPORTS...]

Checks, printing every difference:
  1. `nm -D --defined-only` of the library == union of lib/*/exports*.txt (globbed now);
  2. that union == the functions declared TFX_API in include/tfx/*.h;
  3. no defined dynamic symbol outside tfx_* (apart from the version node), all at TFX_0;
  4. the export files globbed here are exactly the ones the version script was built from
     (MAP_INPUT_EXPORTS, from lib/meson.build), so a new list cannot be silently ignored;
  5. soname libtfx.so.0 (readelf -d).
Exit 77 (skipped) when nm or readelf is missing.
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfx_api_decls as api  # noqa: E402

SKIP = 77
VERSION_NODE = 'TFX_0'


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    lib, root = sys.argv[1], sys.argv[2]
    map_inputs = sys.argv[3:]
    for tool in ('nm', 'readelf'):
        if shutil.which(tool) is None:
            print(f'SKIP: {tool} not found')
            return SKIP
    errors = []

    # 1. what the library exports
    out = subprocess.run(['nm', '-D', '--defined-only', lib], check=True, capture_output=True,
                         text=True).stdout
    exported, others = set(), []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        kind, sym = parts[-2], parts[-1]
        name, _, version = sym.partition('@')
        version = version.lstrip('@')
        if kind == 'A' and name == VERSION_NODE:
            continue
        if not re.fullmatch(r'tfx_[a-z0-9_]+', name):
            others.append(f'{sym} ({kind})')
            continue
        if kind not in ('T', 'W', 'i'):
            others.append(f'{sym} ({kind}: not a function)')
        if version and version != VERSION_NODE:
            errors.append(f'{name} has version {version!r}, expected {VERSION_NODE}')
        exported.add(name)
    if others:
        errors.append('non-tfx_ or non-function dynamic symbols: ' + ', '.join(sorted(others)))
    if not exported:
        errors.append(f'{lib}: no tfx_ symbols exported at all')

    # 2. what the export lists promise
    files = api.export_files(root)
    listed = {}
    for path in files:
        for n in api.export_names(path):
            if n in listed:
                errors.append(f'{n} listed twice ({listed[n]} and {os.path.relpath(path, root)})')
            listed[n] = os.path.relpath(path, root)
    if map_inputs:
        used = {os.path.realpath(p) for p in map_inputs}
        found = {os.path.realpath(p) for p in files}
        for p in sorted(found - used):
            errors.append(f'{os.path.relpath(p, root)} exists but lib/meson.build does not pass it to the '
                          'version script (tfx_exports)')
        for p in sorted(used - found):
            errors.append(f'tfx_exports names {p}, which the glob lib/*/exports*.txt does not find')

    # 3. what the headers declare
    declared, dups = api.all_api_functions(os.path.join(root, 'include', 'tfx'))
    for d in dups:
        errors.append(f'declared TFX_API twice: {d}')

    def diff(a, a_name, b, b_name, where=None):
        for n in sorted(a - b):
            extra = f' [{where(n)}]' if where else ''
            errors.append(f'{n}: {a_name} but not {b_name}{extra}')

    diff(exported, 'exported by the library', set(listed), 'listed in any exports*.txt')
    diff(set(listed), 'listed in exports', exported, 'exported by the library (not implemented?)',
         lambda n: listed[n])
    diff(set(declared), 'declared TFX_API', set(listed), 'listed in any exports*.txt',
         lambda n: os.path.relpath(declared[n], root))
    diff(set(listed), 'listed in exports', set(declared), 'declared TFX_API in include/tfx',
         lambda n: listed[n])

    # 5. soname
    dyn = subprocess.run(['readelf', '-d', lib], check=True, capture_output=True, text=True).stdout
    m = re.search(r'\(SONAME\)\s+Library soname: \[([^\]]+)\]', dyn)
    if not m:
        errors.append(f'{lib}: no SONAME')
    elif m.group(1) != 'libtfx.so.0':
        errors.append(f'soname is {m.group(1)}, expected libtfx.so.0')

    print(f'{len(exported)} exported, {len(listed)} listed in {len(files)} export files, '
          f'{len(declared)} declared TFX_API in {len(api.public_headers(os.path.join(root, "include", "tfx")))} '
          f'headers; soname {m.group(1) if m else "?"}')
    if errors:
        for e in errors:
            print('FAIL:', e)
        return 1
    print('OK: the exported, listed and declared sets are equal')
    return 0


if __name__ == '__main__':
    sys.exit(main())
