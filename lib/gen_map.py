#!/usr/bin/env python3
"""Write the linker version script from the per-folder exports.txt lists.

Usage: gen_map.py OUTPUT EXPORTS...  Each list holds one tfx_* name per line ('#' comments).
Everything not listed stays local, so only the intended names leave libtfx.so.
"""
import re
import sys

names = []
for path in sys.argv[2:]:
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if not re.fullmatch(r'tfx_[a-z0-9_]+', line):
                sys.exit(f'{path}: not an exportable name: {line!r}')
            names.append(line)
dups = sorted({n for n in names if names.count(n) > 1})
if dups:
    sys.exit('exported twice: ' + ', '.join(dups))
with open(sys.argv[1], 'w') as out:
    out.write('TFX_0 {\n  global:\n')
    for n in sorted(names):
        out.write(f'    {n};\n')
    out.write('  local: *;\n};\n')
