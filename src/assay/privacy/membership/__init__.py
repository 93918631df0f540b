"""Membership inference: LOSS, LiRA and RMIA on a population of models and on the user's
own model, their estimators, per-group vulnerability, records, and the ``privacy`` section."""
