#!/usr/bin/env python3
"""Turns the ```cpp blocks of a Markdown file into C++ a test can compile.

Each block becomes a function `readme_snippet_N(const char* table)`; its
#include lines move to file scope, and the table name "gateway" becomes the
parameter, so a test can run the snippet as written against a table of its
own (never a real "gateway" on the host). Nothing else is changed.

usage: extract_snippets.py README.md OUT.inc
"""
import re
import sys


def main(src: str, out: str) -> int:
    text = open(src, encoding="utf-8").read()
    blocks = re.findall(r"^```cpp\n(.*?)^```", text, flags=re.M | re.S)
    if not blocks:
        print(f"extract_snippets: no ```cpp block in {src}", file=sys.stderr)
        return 1
    includes, bodies = [], []
    for n, block in enumerate(blocks):
        body = []
        for line in block.splitlines():
            if line.startswith("#include"):
                includes.append(line)
            else:
                body.append(line.replace("\"gateway\"", "readme_table"))
        bodies.append(f"// README.md, C++ block {n + 1}\n"
                      f"inline void readme_snippet_{n}(const char* readme_table) {{\n"
                      + "\n".join(body) + "\n}\n")
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"// Generated from {src} by {sys.argv[0]}; do not edit.\n")
        f.write("\n".join(dict.fromkeys(includes)) + "\n\n")
        f.write(f"inline constexpr int kReadmeSnippets = {len(blocks)};\n\n")
        f.write("\n".join(bodies))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]) if len(sys.argv) == 3 else 2)
