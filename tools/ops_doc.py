#!/usr/bin/env python3
"""Print docs/ops.md, generated from archc's op table: `python tools/ops_doc.py > docs/ops.md`."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from archc.ir.opdoc import markdown  # noqa: E402

if __name__ == "__main__":
    sys.stdout.write(markdown())
