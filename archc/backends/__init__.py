"""Backends: how a graph of archc ops runs. Each backend has a lowering table (op -> implementation) and an
executor; the op table in archc/ir/ops.py stays free of them."""
