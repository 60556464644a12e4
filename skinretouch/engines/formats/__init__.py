"""Readers for the weight files users download, one module per plug-in family.

Each reader takes a path and returns what it found (the *form*: which public layout, named
for ``doctor`` and errors) with the model's tensors or graph; a file of another form fails
with a :class:`~skinretouch.engines.inpaint_base.WeightsError` that names the forms expected
and the one found.  Nothing here runs code stored in a file.
"""
