"""Privacy of a synthetic data release: what a synthetic table reveals about its training rows.

* :mod:`~assay.synth.encoding`: the three tables on one mixed-type encoding, nearest
  neighbours in anonymeter's distance.
* :mod:`~assay.synth.risks`: singling out, linkability and inference risk against a holdout
  control (anonymeter's definitions), per protected group.
* :mod:`~assay.synth.roc`: members' scores against non-members' (AUC, TPR at low FPR).
* :mod:`~assay.synth.membership`: a density-ratio membership attack on the release (DOMIAS
  style), distance to closest record beside it.
* :mod:`~assay.synth.marginals`: a DP marginal generator (domain, noisy marginals, sampler)
  at the least noise meeting a risk target.
* :mod:`~assay.synth.shadow`: a shadow-generator membership attack when the generator is
  known.
* :mod:`~assay.synth.run`: `audit_release`, its options and its typed, schema-checked result.
* :mod:`~assay.synth.utility`: a model trained on the release against one trained on the
  real rows (accuracy for classes; MAE and R² for a continuous target).
* :mod:`~assay.synth.dp`: the DP release's utility and its audit (`assay synth-dp`).
"""
