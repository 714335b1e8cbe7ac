"""Tail probabilities and quantiles of the normal, chi-squared, t and F distributions.

Thin wrappers over the ``scipy.special`` functions that ``scipy.stats`` itself evaluates for these
distributions, so the numbers are the same; but importing ``scipy.stats`` costs about half a
second, more than a whole fit of a typical data set, and the command line should start at once.
Outside the support (a negative statistic) the tail probability is 1, as in ``scipy.stats``.
"""

from __future__ import annotations

import numpy as np

# scipy.special is imported in each function, not here: importing it costs a few tenths of a
# second, which the window's start (through engine.hausman) need not wait for.


def normal_sf(x):
    """Upper tail P(Z > x) of the standard normal.

    Parameters
    ----------
    x : float or array_like
        Value(s) of the standard normal variable.

    Returns
    -------
    float or ndarray
        The probability, as ``scipy.stats.norm.sf(x)``.
    """
    from scipy import special

    return special.ndtr(-np.asarray(x, dtype=float))


def normal_quantile(p):
    """The x with P(Z <= x) = p for the standard normal (``scipy.stats.norm.ppf``).

    Parameters
    ----------
    p : float or array_like
        Lower-tail probability in [0, 1].

    Returns
    -------
    float or ndarray
        The quantile.
    """
    from scipy import special

    return special.ndtri(np.asarray(p, dtype=float))


def chi2_sf(x, df):
    """Upper tail P(X > x) of a chi-squared variable with ``df`` degrees of freedom (``chi2.sf``).

    Parameters
    ----------
    x : float or array_like
        The statistic; values below 0 give 1.
    df : float or array_like
        Degrees of freedom (> 0).

    Returns
    -------
    float or ndarray
        The probability.
    """
    from scipy import special

    return special.chdtrc(df, np.maximum(np.asarray(x, dtype=float), 0.0))


def t_sf(x, df):
    """Upper tail P(T > x) of Student's t with ``df`` degrees of freedom (``scipy.stats.t.sf``).

    Parameters
    ----------
    x : float or array_like
        The statistic.
    df : float or array_like
        Degrees of freedom (> 0, not necessarily whole).

    Returns
    -------
    float or ndarray
        The probability.
    """
    from scipy import special

    return special.stdtr(df, -np.asarray(x, dtype=float))


def t_quantile(p, df):
    """The x with P(T <= x) = p for Student's t with ``df`` degrees of freedom (``t.ppf``).

    Parameters
    ----------
    p : float or array_like
        Lower-tail probability in [0, 1].
    df : float or array_like
        Degrees of freedom (> 0).

    Returns
    -------
    float or ndarray
        The quantile.
    """
    from scipy import special

    return special.stdtrit(df, np.asarray(p, dtype=float))


def f_sf(x, dfn, dfd):
    """Upper tail P(F > x) of an F variable with ``dfn`` and ``dfd`` degrees of freedom (``f.sf``).

    Parameters
    ----------
    x : float or array_like
        The statistic; values below 0 give 1.
    dfn, dfd : float or array_like
        Numerator and denominator degrees of freedom (> 0).

    Returns
    -------
    float or ndarray
        The probability.
    """
    from scipy import special

    return special.fdtrc(dfn, dfd, np.maximum(np.asarray(x, dtype=float), 0.0))


def noncentral_t_cdf(x, df, noncentrality):
    """P(T <= x) for a noncentral t with ``df`` degrees of freedom (``scipy.stats.nct.cdf``).

    Parameters
    ----------
    x : float or array_like
        The statistic.
    df : float or array_like
        Degrees of freedom (> 0).
    noncentrality : float or array_like
        The noncentrality parameter.

    Returns
    -------
    float or ndarray
        The probability.
    """
    from scipy import special

    return special.nctdtr(df, noncentrality, np.asarray(x, dtype=float))
