"""The built-in toy-physics model: a tiny SVD-structured backbone and InterDyn branch trained on CPU."""
