#!/usr/bin/env python3
"""Every size_t parameter of a public function (include/tfx/*.h, TFX_API) must be either walked
by tests/reliability/test_counts.c (its `cases` table: {"function", "param", ...}) or listed in its
`exempt` array ("function.param: why"), so a new count-taking function is noticed (issue 16).
Also fails on table entries that name no public parameter (a renamed or removed one)."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2])
public = set()
for h in sorted((root / "include" / "tfx").glob("*.h")):
    text = re.sub(r"/\*.*?\*/", " ", h.read_text(), flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    for m in re.finditer(r"TFX_API\s+[^;{]*?\b(tfx_\w+)\s*\(([^;{]*?)\)\s*;", text, flags=re.S):
        fn, params = m.group(1), " ".join(m.group(2).split())
        for p in params.split(","):
            p = p.strip()
            mm = re.fullmatch(r"(?:const\s+)?size_t\s+(\w+)", p)
            if mm:
                public.add(f"{fn}.{mm.group(1)}")

test = (root / "tests" / "reliability" / "test_counts.c").read_text()
walked = {f"{a}.{b}" for a, b in re.findall(r'\{\s*"(tfx_\w+)",\s*"(\w+)"', test)}
exempt = set(re.findall(r'"(tfx_\w+\.\w+):', test))

problems = []
for name in sorted(public - walked - exempt):
    problems.append(f"{name}: a public size_t parameter neither walked by test_counts.c's cases nor exempt")
for name in sorted(exempt - public):
    problems.append(f"{name}: exempt in test_counts.c but not a public size_t parameter")
# Walked entries may also name options fields (fit's validation_n); those need not be parameters.
if not public:
    problems.append("no public size_t parameter found: the header scan is broken")
for p in problems:
    print(p)
print(f"{len(public)} public size_t parameters: {len(public & walked)} walked, {len(public & exempt)} exempt")
sys.exit(1 if problems else 0)
