#!/usr/bin/env python3
"""Install test: `meson install --destdir` of the build under test, then an outside program
built only through pkg-config, the way a user builds against an installed libtfx.

Usage: check_install.py --meson MESON... --build BUILD_ROOT --source SOURCE_ROOT
                        --version X.Y.Z --variant shared|static --cc CC...
(BUILD_ROOT defaults to $MESON_BUILD_ROOT.)

shared: cc outside.c $(pkg-config --cflags --libs libtfx), run with LD_LIBRARY_PATH into the
        DESTDIR; the program must load libtfx.so.0 from there.
static: cc outside.c $(pkg-config --static --cflags --libs libtfx) with -ltfx taken as
        libtfx.a (-l:libtfx.a, since the .so sits next to it); the program must not need
        libtfx.so at all.
pkg-config finds the DESTDIR's libtfx.pc through PKG_CONFIG_PATH, and PKG_CONFIG_SYSROOT_DIR
maps its /usr/local paths into the DESTDIR (--define-prefix guesses the prefix wrong for
Debian's multiarch libdir lib/x86_64-linux-gnu/pkgconfig). Exit 77 if pkg-config is missing.
"""
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def parse_args(argv):
    opts, cur = {'meson': [], 'cc': []}, None
    for a in argv:
        if a.startswith('--'):
            cur = a[2:]
            if cur not in opts:
                opts[cur] = []
        elif cur is None:
            sys.exit(__doc__)
        else:
            opts[cur].append(a)
    if not opts.get('build') and os.environ.get('MESON_BUILD_ROOT'):
        opts['build'] = [os.environ['MESON_BUILD_ROOT']]
    for k in ('meson', 'build', 'source', 'version', 'variant', 'cc'):
        if not opts.get(k):
            sys.exit(f'missing --{k}\n' + __doc__)
    return opts


def run(cmd, env=None, check=True):
    print('$', ' '.join(shlex.quote(c) for c in cmd), flush=True)
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    if out:
        print(out)
    if check and r.returncode != 0:
        raise SystemExit(f'FAIL: exit status {r.returncode}')
    return r


def sanitize_flags(build):
    """An ASan/UBSan build installs a sanitized libtfx: the outside program needs the same runtime."""
    try:
        with open(os.path.join(build, 'meson-info', 'intro-buildoptions.json')) as f:
            options = {o['name']: o['value'] for o in json.load(f)}
    except (OSError, ValueError, KeyError):
        return []
    san = options.get('b_sanitize', 'none')
    return [] if san in ('none', '', None) else ['-fsanitize=' + san]


def find_file(root, name):
    for d, _, files in os.walk(root):
        if name in files:
            return os.path.join(d, name)
    return None


def check_output(out, version):
    """The program prints its version, the seed model's size and a softmax row."""
    lines = dict(line.split(' ', 1) for line in out.strip().splitlines() if ' ' in line)
    errors = []
    if lines.get('libtfx') != f'version {version}':
        errors.append(f'version line is {lines.get("libtfx")!r}, want "version {version}"')
    if lines.get('params') != '11170250':
        errors.append(f'params line is {lines.get("params")!r}, want 11170250')
    try:
        p = [float(v) for v in lines.get('prediction', '').split()]
    except ValueError:
        p = []
    if len(p) != 10 or not all(0.0 < v < 1.0 for v in p) or abs(sum(p) - 1.0) > 1e-4:
        errors.append(f'prediction is not 10 probabilities summing to 1: {lines.get("prediction")!r}')
    if lines.get('error') is None or not lines['error'].startswith('TFX_EINVAL'):
        errors.append(f'error line is {lines.get("error")!r}')
    return errors


def main():
    o = parse_args(sys.argv[1:])
    build, source = o['build'][0], o['source'][0]
    version, variant, cc = o['version'][0], o['variant'][0], o['cc']
    if shutil.which('pkg-config') is None:
        print('SKIP: pkg-config not found')
        return SKIP
    outside = os.path.join(source, 'tests', 'abi', 'outside.c')
    tmp = tempfile.mkdtemp(prefix=f'tfx-install-{variant}-')
    try:
        destdir = os.path.join(tmp, 'destdir')
        run(o['meson'] + ['install', '-C', build, '--destdir', destdir, '--no-rebuild', '--quiet'])
        pc = find_file(destdir, 'libtfx.pc')
        if not pc:
            raise SystemExit('FAIL: meson install put no libtfx.pc into the DESTDIR')
        print('installed', os.path.relpath(pc, destdir))

        # every public header is installed
        src_headers = sorted(f for f in os.listdir(os.path.join(source, 'include', 'tfx')) if f.endswith('.h'))
        tfx_h = find_file(destdir, 'tfx.h')
        inst_headers = sorted(os.listdir(os.path.dirname(tfx_h))) if tfx_h else []
        if inst_headers != src_headers:
            raise SystemExit(f'FAIL: installed headers {inst_headers} != include/tfx {src_headers}')

        env = dict(os.environ)
        env['PKG_CONFIG_PATH'] = os.path.dirname(pc)
        env['PKG_CONFIG_SYSROOT_DIR'] = destdir
        env.pop('LD_LIBRARY_PATH', None)
        pkg = ['pkg-config'] + (['--static'] if variant == 'static' else []) + ['--cflags', '--libs', 'libtfx']
        flags = shlex.split(run(pkg, env=env).stdout)
        # The sysroot also prefixes the -L/-I of the system packages libtfx requires (hdf5's
        # lib/x86_64-linux-gnu/hdf5/serial with the keras feature), which exist only outside the
        # DESTDIR: map those back to the system paths.
        def unroot(f):
            if f[:2] in ('-L', '-I') and f[2:].startswith(destdir):
                real = f[2:][len(destdir):]
                if not os.path.exists(f[2:]) and os.path.isdir(real):
                    return f[:2] + real
            return f
        flags = [unroot(f) for f in flags]
        libdirs = [f[2:] for f in flags if f.startswith('-L') and f[2:].startswith(destdir)]
        if not any(f.startswith('-I' + destdir) for f in flags) or not libdirs:
            raise SystemExit(f'FAIL: pkg-config flags do not point into the DESTDIR: {flags}')
        libdir = libdirs[0]
        if variant == 'static':
            if '-ltfx' not in flags:
                raise SystemExit(f'FAIL: no -ltfx in {flags}')
            flags = ['-l:libtfx.a' if f == '-ltfx' else f for f in flags]
        prog = os.path.join(tmp, f'outside-{variant}')
        # the program is strict C11 too: the installed headers must not need extensions
        cmd = cc + ['-std=c11', '-pedantic', '-Wall', '-Wextra', '-Werror'] + sanitize_flags(build) + \
            [outside, '-o', prog] + flags
        r = run(cmd, env=env, check=False)
        if r.returncode != 0:
            raise SystemExit(f'FAIL: the outside program does not build with the {variant} pkg-config flags'
                             + (' (is Libs.private/Requires.private missing from libtfx.pc?)'
                                if variant == 'static' else ''))

        needed = subprocess.run(['readelf', '-d', prog], capture_output=True, text=True).stdout \
            if shutil.which('readelf') else None
        run_env = dict(env)
        if variant == 'shared':
            run_env['LD_LIBRARY_PATH'] = libdir
            if needed is not None and '[libtfx.so.0]' not in needed:
                raise SystemExit('FAIL: the program does not NEED libtfx.so.0')
            if shutil.which('ldd'):
                ldd = run(['ldd', prog], env=run_env).stdout
                line = next((x for x in ldd.splitlines() if 'libtfx.so.0' in x), '')
                if os.path.join(libdir, 'libtfx.so.0') not in line and \
                        os.path.realpath(libdir) not in line:
                    raise SystemExit(f'FAIL: libtfx.so.0 is not loaded from the DESTDIR: {line.strip()!r}')
        elif needed is not None and 'libtfx' in needed:
            raise SystemExit('FAIL: the static variant still needs a shared libtfx')
        r = run([prog], env=run_env, check=False)
        if r.returncode != 0:
            raise SystemExit(f'FAIL: the outside program exited with {r.returncode}')
        errors = check_output(r.stdout, version)
        for e in errors:
            print('FAIL:', e)
        if errors:
            return 1
        print(f'OK: {variant} build against the DESTDIR install works')
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
