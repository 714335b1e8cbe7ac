# R's numbers for tests/test_postestimation_unseen.py (run from the repository root:
#   Rscript tests/r/postestimation_unseen_literals.R). lme4 1.1.31, lmerTest, pbkrtest, emmeans 1.8.4.
# Data: tests/data/postestimation_unseen.csv (12 schools x 4 classes x 8 rows; g a 3-level factor,
# x continuous, y Gaussian, yb binary, yc a count; simulated with numpy, seed 20261130).
suppressMessages({library(lmerTest); library(emmeans); library(pbkrtest)})
emm_options(opt.digits = FALSE)
d <- read.csv("tests/data/postestimation_unseen.csv"); d$g <- factor(d$g)

# Linear model, random slope of x at the class level, REML
m <- lmer(y ~ g*x + (1|school) + (1+x|school:cls), data = d, REML = TRUE, control = lmerControl(optimizer = "bobyqa"))
cat("xb, fitted rows 1, 200, 384:", format(predict(m, re.form = NA)[c(1, 200, 384)], digits = 12),
    format(predict(m)[c(1, 200, 384)], digits = 12), "\n")
for (df in c("kenward-roger", "satterthwaite")) {
  print(as.data.frame(emmeans(m, ~g, lmer.df = df)), digits = 10)                       # margins, at(g)
  print(as.data.frame(emtrends(m, ~1, var = "x", weights = "proportional", lmer.df = df)), digits = 10)  # dydx(x)
  print(as.data.frame(emtrends(m, ~g, var = "x", lmer.df = df)), digits = 10)            # dydx(x) at(g)
  print(as.data.frame(pairs(emmeans(m, ~g|x, at = list(x = c(-1, 1)), lmer.df = df), adjust = "none")), digits = 10)
}
print(KRmodcomp(m, rbind(c(0,0,0,0,1,0), c(0,0,0,0,0,1)))$test, digits = 10)
print(contest(m, rbind(c(0,0,0,0,1,0), c(0,0,0,0,0,1)), ddf = "Satterthwaite", joint = TRUE), digits = 10)

# GLMMs: mean predicted probability / count with random effects at zero (Stata's margins,
# predict(mu fixedonly)), by hand with delta-method SEs from vcov(fit)
for (fam in c("binomial", "poisson")) {
  f <- if (fam == "binomial") yb ~ g*x + (1|school) + (1|school:cls) else yc ~ g*x + (1|school) + (1|school:cls)
  gm <- glmer(f, data = d, family = fam, control = glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5)))
  b <- fixef(gm); V <- as.matrix(vcov(gm)); inv <- family(gm)$linkinv
  print(as.data.frame(emmeans(gm, ~g)), digits = 10)  # margins at(g) on the link scale (linear in x: = asobserved)
  idx <- c(2, 3, 5, 6); cat("Wald chi2(4) of g and g:x", format(drop(t(b[idx]) %*% solve(V[idx, idx]) %*% b[idx]), digits = 10), "\n")
  Xat <- function(gl = NULL, xv = NULL) { dd <- d; if (!is.null(gl)) dd$g <- factor(gl, levels = levels(d$g)); if (!is.null(xv)) dd$x <- xv; model.matrix(~g*x, dd) }
  mm <- function(beta, gl = NULL, xv = NULL) mean(inv(Xat(gl, xv) %*% beta))
  grad <- function(fun) sapply(seq_along(b), function(k) { h <- 1e-6; e <- rep(0, length(b)); e[k] <- h; (fun(b + e) - fun(b - e)) / (2 * h) })
  report <- function(name, fun) { v <- fun(b); gr <- grad(fun); cat(sprintf("%-16s %.10f %.10f\n", name, v, sqrt(drop(gr %*% V %*% gr)))) }
  for (gl in levels(d$g)) report(paste0("mu g=", gl), function(beta) mm(beta, gl))
  report("mu dydx x", function(beta) (mm(beta, xv = d$x + 1e-5) - mm(beta, xv = d$x - 1e-5)) / 2e-5)
  for (gl in c("b", "c")) report(paste0("mu dg ", gl, " x=.5"), function(beta) mm(beta, gl, 0.5) - mm(beta, "a", 0.5))
  for (pr in list(c("a", "b"), c("a", "c"), c("b", "c"))) report(paste0("mu ", pr[2], " vs ", pr[1]), function(beta) mm(beta, pr[2]) - mm(beta, pr[1]))
}
