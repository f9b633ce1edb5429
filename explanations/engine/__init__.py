"""Batch engines behind the explainers: the same algorithms as lime, anchor-exp and shap, computed for many rows at once.

The reference libraries explain one row at a time and spend most of it outside the model. These modules
sample for a batch of rows, call the model once on the stacked samples, and solve the per-row problems
with vectorised linear algebra. Every row still draws from its own random stream (``row_seed``), so a row's
explanation does not depend on which rows share its batch. No Django here.
"""
