"""Generalised linear mixed models (binary and count outcomes) on nested levels or crossed factors.

Their own criterion beside the linear one (engine.mixed): penalised IRLS for the conditional
modes, the Laplace approximation or adaptive Gauss-Hermite quadrature for the likelihood.
Crossed factors have their own criterion (crossed_modes, crossed_criterion, crossed_fit: a sparse
Cholesky instead of the nested recursion), chosen by fit_glmm when the spec has crossed factors.
``engine.mixed.fit_mixed`` dispatches here when the model's family is not Gaussian. The package
imports nothing heavy until ``fit_glmm`` is used (ModelSpec imports ``engine.glmm.spec``).
"""

__all__ = ["fit_glmm"]


def __getattr__(name):
    if name == "fit_glmm":
        from engine.glmm.fit import fit_glmm

        return fit_glmm
    raise AttributeError(name)
