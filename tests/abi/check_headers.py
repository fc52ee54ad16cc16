#!/usr/bin/env python3
"""Header test: every public header (globbed now, so new headers are covered) compiles alone.

Usage: check_headers.py INCLUDE_DIR --cc CC... [--cxx CXX...]

For each include/tfx/NAME.h a translation unit includes <tfx/NAME.h> first and twice (include
guard), and takes the address of every function the header declares TFX_API (so each
declaration is really there and well formed). It is compiled
  as C11:  -std=c11 -pedantic -Wall -Wextra -Wstrict-prototypes -Werror
  as C++:  -std=c++11 -pedantic -Wall -Wextra -Werror
and the C++ object's undefined symbols must be the plain C names (the header wraps its
declarations in TFX_BEGIN_DECLS/extern "C"; a mangled _Z...tfx_ name means it does not).
Exit 77 when no C++ compiler is available (the C checks still run and must pass).
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfx_api_decls as api  # noqa: E402

C_FLAGS = ['-std=c11', '-pedantic', '-Wall', '-Wextra', '-Wstrict-prototypes', '-Werror']
CXX_FLAGS = ['-std=c++11', '-pedantic', '-Wall', '-Wextra', '-Werror']


def parse_args(argv):
    include_dir, cc, cxx, cur = None, [], [], None
    for a in argv:
        if a in ('--cc', '--cxx'):
            cur = cc if a == '--cc' else cxx
        elif cur is None:
            include_dir = a
        else:
            cur.append(a)
    if not include_dir or not cc:
        sys.exit(__doc__)
    return include_dir, cc, cxx


def translation_unit(header_name, functions, cplusplus):
    lines = [f'#include <tfx/{header_name}>', f'#include <tfx/{header_name}> /* include guard */']
    if functions:
        cast = 'reinterpret_cast<void (*)(void)>' if cplusplus else '(void (*)(void))'
        lines.append('/* external linkage: no unused warning, and each use is a relocation */')
        lines.append('void (*tfx_header_test_functions[])(void) = {')
        lines += [f'    {cast}(&{f}),' for f in functions]
        lines.append('};')
    else:
        lines.append('int tfx_header_test_dummy;') # ISO C forbids an empty translation unit
    return '\n'.join(lines) + '\n'


def compile_one(cmd, src, obj):
    r = subprocess.run(cmd + ['-c', src, '-o', obj], capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def main():
    include_dir, cc, cxx = parse_args(sys.argv[1:])
    headers = api.public_headers(include_dir)
    if not headers:
        print(f'FAIL: no headers in {include_dir}')
        return 1
    inc_root = os.path.dirname(os.path.abspath(include_dir))
    if not cxx:
        found = shutil.which('g++') or shutil.which('c++')
        cxx = [found] if found else []
    nm = shutil.which('nm')
    failures = []
    with tempfile.TemporaryDirectory(prefix='tfx-headers-') as tmp:
        for h in headers:
            name = os.path.basename(h)
            funcs = api.api_functions(h)
            stem = name[:-2]
            src = os.path.join(tmp, stem + '.c')
            with open(src, 'w') as f:
                f.write(translation_unit(name, funcs, False))
            rc, log = compile_one(cc + C_FLAGS + ['-I', inc_root], src, os.path.join(tmp, stem + '.c.o'))
            status = 'ok' if rc == 0 else 'FAIL'
            if rc:
                failures.append(f'{name} as C11:\n{log}')
            if cxx:
                srcxx = os.path.join(tmp, stem + '.cpp')
                objxx = os.path.join(tmp, stem + '.cpp.o')
                with open(srcxx, 'w') as f:
                    f.write(translation_unit(name, funcs, True))
                rc, log = compile_one(cxx + CXX_FLAGS + ['-I', inc_root], srcxx, objxx)
                if rc:
                    failures.append(f'{name} as C++11:\n{log}')
                    status += ', C++ FAIL'
                elif nm and funcs:
                    und = subprocess.run([nm, '-u', objxx], capture_output=True, text=True).stdout.split()
                    mangled = [s for s in und if s.startswith('_Z') and 'tfx_' in s]
                    plain = {s for s in und if s.startswith('tfx_')}
                    missing = sorted(set(funcs) - plain)
                    if mangled or missing:
                        failures.append(f'{name} as C++: not extern "C": mangled {mangled}, '
                                        f'missing plain {missing}')
                        status += ', C++ linkage FAIL'
                    else:
                        status += ', C++ ok (extern "C")'
                else:
                    status += ', C++ ok'
            print(f'{name}: {len(funcs)} TFX_API functions; C11 {status}')
    for f in failures:
        print('FAIL:', f)
    if failures:
        return 1
    if not cxx:
        print('SKIP: no C++ compiler (g++/c++) found; C11 checks passed')
        return 77
    print(f'OK: {len(headers)} headers compile alone as C11 and C++11')
    return 0


if __name__ == '__main__':
    sys.exit(main())
