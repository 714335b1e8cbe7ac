"""Generalised linear mixed models (binary and count outcomes) on nested levels.

Their own criterion beside the linear one (engine.mixed): penalised IRLS for the conditional
modes, the Laplace approximation or adaptive Gauss-Hermite quadrature for the likelihood.
``engine.mixed.fit_mixed`` dispatches here when the model's family is not Gaussian.
"""

from engine.glmm.fit import fit_glmm

__all__ = ["fit_glmm"]
