"""Datasets and data preparation for training the InterDyn control branch (the synthetic collision world
itself is the library's: :mod:`interdyn.data.synthetic`)."""
