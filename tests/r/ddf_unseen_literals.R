# Reference numbers for tests/test_ddf_unseen.py: designs the other df tests do not cover.
# Run from the repository root: Rscript tests/r/ddf_unseen_literals.R
# (lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2, R 4.2.2). The tests carry the printed numbers.
# Runs of this script agree to about 1e-7 (relative) in df and SEs, not to every digit: the
# tests carry the numbers of the run saved in ddf_unseen_literals.out, with tolerances of 1e-5.
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest)})

# tests/data/ddf_unseen_nested.csv: 9 schools, 2-5 classes each (class ids 1..k repeat across
# schools), 3-15 pupils per class; pupil covariate x (3 values missing), school covariate w, class
# covariate z, pupil factor g with string levels a/b/c; correlated random intercept and slope of x
# at both levels. y2: the same with no class-level slope (its variance near zero); y3: no school
# slope at all (a singular fit when it is modelled). Rows shuffled.
make_nested <- function(path) {
  set.seed(4242)
  rows <- list()
  for (s in 1:9) {
    n_class <- sample(2:5, 1)
    w <- round(rnorm(1), 3)
    us <- MASS::mvrnorm(1, c(0, 0), matrix(c(1, 0.4 * 0.5, 0.4 * 0.5, 0.25), 2))
    for (k in 1:n_class) {
      n <- sample(3:15, 1)
      z <- round(rnorm(1), 3)
      uc <- MASS::mvrnorm(1, c(0, 0), matrix(c(0.64, -0.3 * 0.8 * 0.3, -0.3 * 0.8 * 0.3, 0.09), 2))
      x <- round(rnorm(n, sd = 1.3), 3)
      g <- sample(c("a", "b", "c"), n, replace = TRUE)
      fixed <- 1 + 0.5 * x + 0.7 * w - 0.3 * x * w + 0.4 * z + c(a = 0, b = 0.5, c = -0.3)[g]
      e <- rnorm(n, sd = 1.5)
      y <- fixed + us[1] + us[2] * x + uc[1] + uc[2] * x + e
      y2 <- fixed + us[1] + us[2] * x + uc[1] + e
      y3 <- fixed + us[1] + uc[1] + uc[2] * x + e
      rows[[length(rows) + 1]] <- data.frame(school = sprintf("sch%02d", s), class = k, x = x, w = w, z = z,
                                             g = g, y = round(y, 4), y2 = round(y2, 4), y3 = round(y3, 4))
    }
  }
  d <- do.call(rbind, rows)
  d$x[c(5, 40, 77)] <- NA
  d <- d[sample(nrow(d)), ]
  write.csv(d, path, row.names = FALSE, quote = FALSE, na = "")
}

# tests/data/ddf_unseen_crossed.csv: 8 schools x 3 classes x 5 pupils (120 pupils); 7 raters,
# each pupil rated by 3 raters drawn at random. Pupil covariate x, school treatment trt (4 of 8).
make_crossed <- function(path) {
  set.seed(777)
  school <- rep(1:8, each = 15)
  class <- rep(rep(1:3, each = 5), 8)
  pupil <- 1:120
  trt <- c(1, 0, 1, 0, 0, 1, 1, 0)[school]
  x <- round(rnorm(120), 3)
  u_school <- rnorm(8, sd = 0.8)
  u_class <- rnorm(24, sd = 0.6)
  u_pupil <- rnorm(120, sd = 1)
  u_rater <- rnorm(7, sd = 0.7)
  rows <- list()
  for (i in pupil) {
    raters <- sample(1:7, 3)
    y <- 2 + 0.6 * x[i] + 0.5 * trt[i] + u_school[school[i]] + u_class[(school[i] - 1) * 3 + class[i]] +
      u_pupil[i] + u_rater[raters] + rnorm(3, sd = 1.2)
    rows[[i]] <- data.frame(school = school[i], class = class[i], pupil = i, rater = sprintf("R%d", raters),
                            trt = trt[i], x = x[i], y = round(y, 4))
  }
  d <- do.call(rbind, rows)
  d <- d[sample(nrow(d)), ]
  write.csv(d, path, row.names = FALSE, quote = FALSE)
}

# tests/data/ddf_unseen_boundary.csv: 10 schools, 1-4 classes each, a quarter of the classes with a
# single pupil; no school slope of x (seed chosen so that lme4 estimates its variance as exactly 0);
# rater: a label drawn at random for each row, with no effect.
make_boundary <- function(path) {
  set.seed(8)
  rows <- list()
  for (s in 1:10) {
    n_class <- sample(1:4, 1); us <- rnorm(1, sd = 0.8)
    for (k in 1:n_class) {
      n <- if (runif(1) < 0.25) 1 else sample(2:9, 1)
      uc <- rnorm(1, sd = 0.6)
      x <- round(rnorm(n), 3); z <- round(rnorm(1), 3)
      y <- 1 + 0.4 * x + 0.3 * z + us + uc + rnorm(n, sd = 1)
      rows[[length(rows) + 1]] <- data.frame(school = s, class = k, x = x, z = z, y = round(y, 4))
    }
  }
  d <- do.call(rbind, rows)
  set.seed(99)
  d$rater <- sample(1:5, nrow(d), replace = TRUE)
  write.csv(d, path, row.names = FALSE, quote = FALSE)
}

if (!file.exists("tests/data/ddf_unseen_boundary.csv")) make_boundary("tests/data/ddf_unseen_boundary.csv")
if (!file.exists("tests/data/ddf_unseen_nested.csv")) make_nested("tests/data/ddf_unseen_nested.csv")
if (!file.exists("tests/data/ddf_unseen_crossed.csv")) make_crossed("tests/data/ddf_unseen_crossed.csv")

tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
fit_tight <- function(formula, data, REML = TRUE) {
  m <- lmer(formula, data = data, REML = REML, control = tight)
  for (i in 1:3) m <- update(m, start = getME(m, "theta"))
  m
}

report <- function(label, m, methods = c("Satterthwaite", "Kenward-Roger"), ftests = character(0)) {
  cat(sprintf("CASE %s loglik=%.12f theta=%s singular=%s\n", label, as.numeric(logLik(m)),
              paste(sprintf("%.8g", getME(m, "theta")), collapse = ","), isSingular(m)))
  print(VarCorr(m), digits = 8)
  for (ddf in methods) {
    s <- summary(m, ddf = ddf)$coefficients
    for (term in rownames(s)) {
      ci_half <- qt(0.975, s[term, "df"]) * s[term, "Std. Error"]
      cat(sprintf("  %s %s coef=%.12g se=%.12g df=%.12g t=%.12g p=%.12g lo=%.12g hi=%.12g\n", ddf, term,
                  s[term, "Estimate"], s[term, "Std. Error"], s[term, "df"], s[term, "t value"],
                  s[term, "Pr(>|t|)"], s[term, "Estimate"] - ci_half, s[term, "Estimate"] + ci_half))
    }
    if (length(ftests)) {
      a <- anova(m, ddf = ddf)
      for (term in ftests)
        cat(sprintf("  F %s %s NumDF=%d DenDF=%.12g F=%.12g p=%.12g\n", ddf, term, a[term, "NumDF"],
                    a[term, "DenDF"], a[term, "F value"], a[term, "Pr(>F)"]))
    }
  }
}

report_ml <- function(label, m) {
  cat(sprintf("CASE %s loglik=%.12f theta=%s\n", label, as.numeric(logLik(m)),
              paste(sprintf("%.8g", getME(m, "theta")), collapse = ",")))
  print(VarCorr(m), digits = 8)
  s <- summary(m)$coefficients
  for (term in rownames(s)) cat(sprintf("  ML %s coef=%.12g se=%.12g\n", term, s[term, "Estimate"], s[term, "Std. Error"]))
}

nd <- read.csv("tests/data/ddf_unseen_nested.csv", stringsAsFactors = TRUE)
nd <- nd[complete.cases(nd), ]

# 1. two levels, correlated slope (REML; ML)
report("n2_slope", fit_tight(y ~ x + (1 + x | school), nd))
report_ml("n2_slope_ml", fit_tight(y ~ x + (1 + x | school), nd, REML = FALSE))
# 1. three levels, correlated slope at both levels
report("n3_slopes_both", fit_tight(y ~ x + (1 + x | school) + (1 + x | school:class), nd))
report_ml("n3_slopes_both_ml", fit_tight(y ~ x + (1 + x | school) + (1 + x | school:class), nd, REML = FALSE))
# 1./2. three levels, slope at the class level only; class covariate, pupil factor
report("n3_class_slope", fit_tight(y ~ x + z + g + (1 | school) + (1 + x | school:class), nd), ftests = "g")
# 2. school covariate with a cross-level interaction, 3-level factor, slope at school
report("n3_crosslevel", fit_tight(y ~ x * w + z + g + (1 + x | school) + (1 | school:class), nd),
       ftests = c("g", "x:w"))
# 2. no constant
report("n3_nocons", fit_tight(y ~ 0 + x + w + z + (1 + x | school) + (1 | school:class), nd))
# 5. class slope variance near zero (y2), school slope absent (y3: singular)
report("n3_y2_slope_near_zero", fit_tight(y2 ~ x + w + (1 + x | school) + (1 + x | school:class), nd))
report("n3_y3_singular", fit_tight(y3 ~ x + w + (1 + x | school) + (1 | school:class), nd))

cd <- read.csv("tests/data/ddf_unseen_crossed.csv", stringsAsFactors = TRUE)
# 3. pupils x raters; nested school/class with raters crossed
report("c_pupil_rater", fit_tight(y ~ x + trt + (1 | pupil) + (1 | rater), cd))
report("c_nested_rater", fit_tight(y ~ x + trt + (1 | school / class) + (1 | rater), cd))
report("c_nested_pupil_rater", fit_tight(y ~ x + trt + (1 | school / class / pupil) + (1 | rater), cd))

# 4. more contrasts in n3_crosslevel: a difference of factor levels (lincom c.g - b.g), a predictive
# margin at g = a (Stata's margins, other predictors as observed), the joint test of x, w and x:w,
# and the overall test of every coefficient but the constant (the report's header F)
m <- fit_tight(y ~ x * w + z + g + (1 + x | school) + (1 | school:class), nd)
X <- getME(m, "X")
at_a <- colMeans(X); at_a[c("gb", "gc")] <- 0
L_joint <- diag(ncol(X))[match(c("x", "w", "x:w"), colnames(X)), ]
L_all <- diag(ncol(X))[-1, ]
for (ddf in c("Satterthwaite", "Kenward-Roger")) {
  for (item in list(list("lincom_gc_gb", c(0, 0, 0, 0, -1, 1, 0)), list("margin_g_a", unname(at_a)))) {
    r <- contest1D(m, item[[2]], ddf = ddf)
    cat(sprintf("C1 %s %s estimate=%.12g se=%.12g df=%.12g t=%.12g p=%.12g\n", ddf, item[[1]], r$Estimate,
                r$`Std. Error`, r$df, r$`t value`, r$`Pr(>|t|)`))
  }
  for (item in list(list("joint_x_w_xw", L_joint), list("overall", L_all))) {
    r <- contest(m, item[[2]], joint = TRUE, ddf = ddf)
    cat(sprintf("CJ %s %s NumDF=%d DenDF=%.12g F=%.12g p=%.12g\n", ddf, item[[1]], r$NumDF, r$DenDF,
                r$`F value`, r$`Pr(>F)`))
  }
}

# 5. variances at zero: the school slope (independent of the intercept), singleton classes; the
# same with a correlated slope; a crossed factor with no effect
bd <- read.csv("tests/data/ddf_unseen_boundary.csv")
report("b_slope_zero", fit_tight(y ~ x + z + (1 + x || school) + (1 | school:class), bd))
report("b_slope_zero_un", fit_tight(y ~ x + z + (1 + x | school) + (1 | school:class), bd))
report("b_rater_crossed", fit_tight(y ~ x + z + (1 | school / class) + (1 | rater), bd))

# 3./4. crossed: a correlated random slope per rater below nested levels; a 3-level fixed factor
# (class position 1-3) with its F test
report("c_nested_rater_slope", fit_tight(y ~ x + trt + (1 | school / class) + (1 + x | rater), cd))
cd$classf <- factor(cd$class)
report("c_factor_f", fit_tight(y ~ x + classf + (1 | school) + (1 | rater) + (1 | pupil), cd), ftests = "classf")
