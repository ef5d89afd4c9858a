#!/usr/bin/env python3
"""write-section.py DOC REPORT HEADING: replace the section of DOC that starts with the line HEADING (up to
the next "## " heading) with the contents of REPORT, or append REPORT when DOC has no such section. Other
sections stay as they are. Used by the bench scripts' --write."""
import sys

doc, new, heading = sys.argv[1], open(sys.argv[2]).read().rstrip("\n") + "\n", sys.argv[3]
lines = open(doc).read().splitlines(keepends=True)
start = next((i for i, l in enumerate(lines) if l.rstrip("\n") == heading), None)
if start is None:
    text = "".join(lines).rstrip("\n") + "\n\n" + new
else:
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    rest = "".join(lines[end:])
    text = "".join(lines[:start]) + new + ("\n" + rest if rest else "")
open(doc, "w").write(text)
