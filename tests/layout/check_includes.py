#!/usr/bin/env python3
"""The dependency direction of lib/ (docs/architecture.md): each folder may include only the
folders listed for it. Public headers (tfx/...) and system headers are always allowed.
Usage: check_includes.py <source root>; prints each backward include and exits 1 if any."""
import os
import re
import sys

ALLOWED = {
    'core': {'core'},
    'layers': {'core', 'layers'},
    'model': {'core', 'layers', 'model'},
    'train': {'core', 'layers', 'model', 'saving', 'train'},  # ModelCheckpoint saves
    'saving': {'core', 'layers', 'model', 'saving'},
    'render': {'core', 'render'},
    'data': {'core', 'data'},
    'explain': {'core', 'layers', 'model', 'render', 'explain'},
    'tensorboard': {'core', 'layers', 'model', 'train', 'render', 'explain', 'tensorboard'},
    'onnx': {'core', 'layers', 'model', 'onnx'},    # ONNX import and export
    'keras': {'core', 'layers', 'model', 'keras'},  # Keras .h5 / .keras import
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main():
    lib = os.path.join(sys.argv[1], 'lib')
    bad = []
    seen = set()
    for folder in sorted(os.listdir(lib)):
        path = os.path.join(lib, folder)
        if not os.path.isdir(path):
            continue
        seen.add(folder)
        if folder not in ALLOWED:
            bad.append(f'lib/{folder}: a folder the include rules do not know (add it to ALLOWED)')
            continue
        for name in sorted(os.listdir(path)):
            if not name.endswith(('.c', '.h')):
                continue
            with open(os.path.join(path, name), encoding='utf-8') as f:
                for no, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    target = m.group(1)
                    top = target.split('/')[0] if '/' in target else folder
                    if top == 'tfx':
                        continue
                    if top not in ALLOWED[folder]:
                        bad.append(f'lib/{folder}/{name}:{no}: includes "{target}" '
                                   f'({folder} may include only {", ".join(sorted(ALLOWED[folder]))})')
    for b in bad:
        print(b)
    print(f'{len(seen)} folders checked, {len(bad)} backward includes')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
