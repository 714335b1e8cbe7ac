# Reference numbers for tests/test_glmm_crossed.py (crossed random factors, Laplace), lme4 1.1-31.
# Run from the repository root: Rscript tests/r/glmm_crossed_literals.R [write]
# With "write" it first writes tests/data/verbagg.csv and tests/data/absences_crossed.csv; with a case's
# label it fits only that case. tests/data/seed_moving_binary.csv was simulated by the project
# (preset tutoring_binary with move_prob 0.5 at teach_id, seed 3; the id, treatment and outcome columns).
suppressMessages(library(lme4)); library(numDeriv)
args <- commandArgs(trailingOnly = TRUE)
if (length(args) && args[1] == "write") {
  data(VerbAgg)
  v <- data.frame(r2 = as.integer(VerbAgg$r2 == "Y"), anger = VerbAgg$Anger,
                  male = as.integer(VerbAgg$Gender == "M"), btype = as.integer(VerbAgg$btype),
                  self = as.integer(VerbAgg$situ == "self"), id = as.integer(as.character(VerbAgg$id)),
                  item = as.integer(VerbAgg$item))
  write.csv(v, "tests/data/verbagg.csv", row.names = FALSE)
  set.seed(20261130)
  n <- 1500; schools <- 50; hoods <- 40
  school <- sample(schools, n, replace = TRUE)
  hood <- ((school + sample(0:12, n, replace = TRUE)) %% hoods) + 1  # neighbourhoods overlap schools
  x <- round(rnorm(n), 3); days <- sample(100:180, n, replace = TRUE)
  u <- rnorm(schools, sd = 0.4); s <- rnorm(schools, sd = 0.15); w <- rnorm(hoods, sd = 0.3)
  eta <- -3 + 0.3 * x + u[school] + s[school] * x + w[hood]
  absences <- rpois(n, days * exp(eta))
  write.csv(data.frame(absences, x, days, school, hood), "tests/data/absences_crossed.csv", row.names = FALSE)
}
central_hessian <- function(f, x, h) {
  n <- length(x); H <- matrix(0, n, n)
  for (i in 1:n) for (j in 1:i) {
    ei <- replace(numeric(n), i, h); ej <- replace(numeric(n), j, h)
    H[i, j] <- H[j, i] <- (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (4 * h * h)
  }
  H
}
fitcase <- function(label, formula, data, family) {
  ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5), tolPwrss = 1e-13)
  t0 <- proc.time()[["elapsed"]]
  m <- glmer(formula, data = data, family = family, control = ctrl)
  elapsed <- proc.time()[["elapsed"]] - t0
  for (i in 1:3) m <- update(m, start = getME(m, c("theta", "fixef")))
  dev <- update(m, devFunOnly = TRUE)
  par <- c(getME(m, "theta"), fixef(m))
  nth <- length(getME(m, "theta"))
  # bobyqa stops ~1e-8 short in -2 log L, which moves flat directions by ~1e-4: polish by Newton steps
  for (i in 1:4) {
    h <- hessian(function(p) dev(p), par, method.args = list(r = 6))
    g <- grad(function(p) dev(p), par, method.args = list(r = 6))
    step <- solve(h, g)
    if (dev(par - step) < dev(par)) par <- par - step
  }
  h <- hessian(function(p) dev(p), par, method.args = list(r = 6))
  v <- solve(h / 2)
  se <- sqrt(diag(v))[-(1:nth)]
  # lme4's deviance carries PIRLS noise (~1e-6 at some points) that Richardson's small steps amplify:
  # plain central second differences with step 0.01 are the robust SEs (used for the random-slope case)
  v2 <- solve(central_hessian(dev, par, 0.01) / 2)
  cat(sprintf("  se.central.0.01 %s\n", paste(sprintf("%.10f", sqrt(diag(v2))[-(1:nth)]), collapse = " ")))
  cat(sprintf("CASE %s glmer loglik=%.12f polished loglik=%.12f (%.1f s)\n", label, as.numeric(logLik(m)),
              -dev(par) / 2, elapsed))
  beta <- par[-(1:nth)]
  cat(sprintf("  fix %s %.12f %.12f\n", names(fixef(m)), beta, se), sep = "")
  cat(sprintf("  theta %s %.12f\n", names(getME(m, "theta")), par[1:nth]), sep = "")  # sds follow from theta
  cat(sprintf("  vcov.glmer.se %s\n", paste(sprintf("%.10f", sqrt(diag(as.matrix(vcov(m))))), collapse = " ")))
}
only <- if (length(args) && args[1] != "write") args[1] else NULL
run <- function(label, ...) if (is.null(only) || only == label) fitcase(label, ...)
va <- read.csv("tests/data/verbagg.csv")
run("verbagg_logit", r2 ~ anger + male + factor(btype) + self + (1|id) + (1|item), va, binomial)
run("verbagg_probit", r2 ~ anger + male + factor(btype) + self + (1|id) + (1|item), va, binomial(link = "probit"))
ab <- read.csv("tests/data/absences_crossed.csv")
run("absences_crossed_poisson", absences ~ x + offset(log(days)) + (1|school) + (1|hood), ab, poisson)
run("absences_crossed_slope", absences ~ x + offset(log(days)) + (1 + x|school) + (1|hood), ab, poisson)
run("verbagg_item_slope", r2 ~ anger + male + factor(btype) + self + (1|id) + (1 + male|item), va, binomial)
sm <- read.csv("tests/data/seed_moving_binary.csv")
run("seed_moving_binary", pass ~ tutoring + (1|dist_id) + (1|dist_id:school_id) + (1|teach_id) + (1|student_id),
    sm, binomial)
