# glmer (lme4 1.1-31) fits behind tests/test_glmm_unseen.py; run from the worktree root after
# tests/r/glmm_unseen_data.R: Rscript tests/r/glmm_unseen_literals.R > /tmp/unseen.jsonl
# Tight optimum (bobyqa to 1e-12, PIRLS to 1e-13, refitted from its optimum), SEs from numDeriv's Richardson
# Hessian of lme4's deviance in (theta, beta), as the project's other GLMM literals; the log-likelihood is the
# full one (lme4 drops sum(lgamma(y + 1)) for Poisson with nAGQ > 1, added back here); llglm is the
# single-level glm's, for the LR test.
suppressMessages(library(lme4)); library(numDeriv); library(jsonlite)
only <- commandArgs(trailingOnly = TRUE)  # optional labels to run
fitcase <- function(label, formula, data, family, nAGQ = 1) {
  if (length(only) && !(label %in% only)) return(invisible())
  ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5), tolPwrss = 1e-13)
  m <- suppressWarnings(glmer(formula, data = data, family = family, nAGQ = nAGQ, control = ctrl))
  for (i in 1:3) m <- suppressWarnings(update(m, start = getME(m, c("theta", "fixef"))))
  dev <- update(m, devFunOnly = TRUE)
  par <- c(getME(m, "theta"), fixef(m))
  nth <- length(getME(m, "theta"))
  # a theta at its boundary (0) is held there, as Stata does: drop its row and column
  keep <- c(getME(m, "theta") > 1e-6 | !(getME(m, "lower") == 0), rep(TRUE, length(fixef(m))))
  sefrom <- function(d) {
    h <- hessian(function(p) dev(p), par, method.args = list(r = 6, d = d))
    v <- solve(h[keep, keep] / 2)
    sqrt(diag(v))[(sum(keep) - length(fixef(m)) + 1):sum(keep)]
  }
  se <- sefrom(0.1)
  # lme4's deviance is not smooth at the 1e-6 level where PIRLS stops short: a second step size shows it
  se_small_step <- sefrom(0.01)
  ll <- as.numeric(logLik(m))
  # lme4's logLik with nAGQ > 1 is minus half the deviance, which leaves out the saturated model's log-likelihood
  y <- m@resp$y; n <- m@resp$weights
  if (nAGQ > 1 && m@resp$family$family == "poisson") ll <- ll + sum(ifelse(y > 0, y * log(y), 0) - y - lgamma(y + 1))
  if (nAGQ > 1 && m@resp$family$family == "binomial") {
    k <- round(y * n)
    ll <- ll + sum(lchoose(n, k) + ifelse(k > 0, k * log(y), 0) + ifelse(k < n, (n - k) * log(1 - y), 0))
  }
  g0 <- glm(nobars(formula), data = data, family = family)
  vc <- as.data.frame(VarCorr(m))
  cat(toJSON(list(label = label, formula = deparse(formula, width.cutoff = 500L), nAGQ = nAGQ,
                  loglik = ll, llglm = as.numeric(logLik(g0)), theta = unname(getME(m, "theta")),
                  fixed = as.list(fixef(m)), se = as.list(setNames(se, names(fixef(m)))),
                  se_small_step = se_small_step,
                  vc = vc, vcov_lme4 = sqrt(diag(as.matrix(vcov(m))))),
             auto_unbox = TRUE, digits = 15), "\n")
}
ls <- read.csv("tests/data/unseen_logit_slope.csv")
fitcase("slope_corr", y ~ x + (1 + x | g), ls, binomial)
fitcase("slope_uncorr", y ~ x + (1 + x || g), ls, binomial)
fitcase("slope_factor_interaction", y ~ x * f + (1 + x | g), ls, binomial)
fitcase("slope_probit", y ~ x + f + (1 + x | g), ls, binomial(link = "probit"))
for (q in c(1, 5, 12, 25)) {
  fitcase(sprintf("logit_agq%d", q), y ~ x + f + (1 | g), ls, binomial, q)
  fitcase(sprintf("probit_agq%d", q), y ~ x + f + (1 | g), ls, binomial(link = "probit"), q)
}
pn <- read.csv("tests/data/unseen_probit_nested.csv")
fitcase("probit_nested", y ~ x + z + (1 | school/class), pn, binomial(link = "probit"))
fitcase("logit_nested", y ~ x + z + (1 | school/class), pn, binomial)
fitcase("probit_nested_boundary", y0 ~ x + z + (1 | school/class), pn, binomial(link = "probit"))
cn <- read.csv("tests/data/unseen_counts.csv")
fitcase("poisson_2level", count ~ x + offset(log(t)) + (1 | region/site), cn, poisson)
fitcase("poisson_3level", count ~ x + offset(log(t)) + (1 | region/site/unit), cn, poisson)
for (q in c(1, 5, 12, 25)) fitcase(sprintf("poisson_agq%d", q), count ~ x + offset(log(t)) + (1 | region), cn, poisson, q)
bn <- read.csv("tests/data/unseen_binomial.csv")
fitcase("binomial_laplace", cbind(s, n - s) ~ x + (1 | g), bn, binomial)
fitcase("binomial_agq12", cbind(s, n - s) ~ x + (1 | g), bn, binomial, 12)
fitcase("binomial_probit_laplace", cbind(s, n - s) ~ x + (1 | g), bn, binomial(link = "probit"))
fitcase("binomial_probit_agq7", cbind(s, n - s) ~ x + (1 | g), bn, binomial(link = "probit"), 7)
fitcase("nested_inner_slope", y ~ x + z + (1 | school) + (1 + x | school:class), pn, binomial)
fitcase("nested_outer_slope", y ~ x + z + (1 + x | school) + (1 | school:class), pn, binomial)
fitcase("poisson_site_slope", count2 ~ x + x2 + offset(log(t)) + (1 | region) + (1 + x | region:site), cn, poisson)
fitcase("slope3", y3 ~ x + w + (1 + x + w | g), ls, binomial)
fitcase("slope_only", y ~ x + (0 + x | g), ls, binomial)
fitcase("noconstant_factor", y ~ 0 + f + x + (1 | g), ls, binomial)
fitcase("poisson_olre", count ~ x + offset(log(t)) + (1 | region) + (1 | obs), cn, poisson)
fitcase("poisson_olre_nested", count ~ x + offset(log(t)) + (1 | region/site) + (1 | obs), cn, poisson)
