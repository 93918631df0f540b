"""Attribute inference: can a model's outputs reveal a sensitive column better than
imputation from the other columns? (``attribute`` section)."""
