# Reference numbers for tests/test_crossed_ddf.py: Satterthwaite (lmerTest) and Kenward-Roger
# (pbkrtest, through lmerTest's ddf = "Kenward-Roger") for crossed random factors.
# Run from the repository root: Rscript tests/r/crossed_ddf_literals.R
# (lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2, R 4.2.2). The tests carry the printed numbers.
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest)})

# tests/data/crossed_ddf.csv: 12 teachers crossed with 80 students (each seen 4 times by teachers drawn
# at random), a row covariate x, a teacher covariate z (constant within teacher) and a student
# factor grp (3 levels); random intercept and slope of x per teacher, random intercept per student.
make_data <- function(path) {
  set.seed(20261130)
  n_teach <- 12; n_stud <- 80; per <- 4
  student <- rep(seq_len(n_stud), each = per)
  teach <- sample(seq_len(n_teach), n_stud * per, replace = TRUE)
  grp <- rep(sample(1:3, n_stud, replace = TRUE), each = per)
  z_t <- round(rnorm(n_teach), 3)
  x <- round(rnorm(n_stud * per), 3)
  u <- MASS::mvrnorm(n_teach, c(0, 0), matrix(c(1.2^2, 0.3 * 1.2 * 0.6, 0.3 * 1.2 * 0.6, 0.6^2), 2))
  w <- rnorm(n_stud, sd = 1)
  y <- 2 + 0.8 * x + 0.5 * z_t[teach] + c(0, 0.6, -0.4)[grp] + u[teach, 1] + u[teach, 2] * x + w[student] +
    rnorm(n_stud * per, sd = 1.5)
  out <- data.frame(teach = teach, student = student, grp = grp, x = x, z = z_t[teach], y = round(y, 4))
  write.csv(out, path, row.names = FALSE, quote = FALSE)
}
if (!file.exists("tests/data/crossed_ddf.csv")) make_data("tests/data/crossed_ddf.csv")

tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5))
fit_tight <- function(formula, data) {
  m <- lmer(formula, data = data, REML = TRUE, control = tight)
  for (i in 1:3) m <- update(m, start = getME(m, "theta"))
  m
}

report <- function(label, m, methods = c("Satterthwaite", "Kenward-Roger"), ftest = NULL) {
  cat(sprintf("CASE %s loglik=%.12f\n", label, as.numeric(logLik(m))))
  for (ddf in methods) {
    s <- summary(m, ddf = ddf)$coefficients
    for (term in rownames(s)) {
      ci_half <- qt(0.975, s[term, "df"]) * s[term, "Std. Error"]
      cat(sprintf("  %s %s coef=%.12g se=%.12g df=%.12g t=%.12g p=%.12g lo=%.12g hi=%.12g\n", ddf, term,
                  s[term, "Estimate"], s[term, "Std. Error"], s[term, "df"], s[term, "t value"],
                  s[term, "Pr(>|t|)"], s[term, "Estimate"] - ci_half, s[term, "Estimate"] + ci_half))
    }
    if (!is.null(ftest)) {
      a <- anova(m, ddf = ddf)
      cat(sprintf("  F %s %s NumDF=%d DenDF=%.12g F=%.12g p=%.12g\n", ddf, ftest, a[ftest, "NumDF"],
                  a[ftest, "DenDF"], a[ftest, "F value"], a[ftest, "Pr(>F)"]))
    }
  }
}

# (a) lme4's Penicillin
pen <- read.csv("tests/data/penicillin.csv")
report("penicillin", fit_tight(diameter ~ 1 + (1 | plate) + (1 | sample), pen))

# (b) the simulated crossed design, correlated and independent teacher slopes
cd <- read.csv("tests/data/crossed_ddf.csv"); cd$grp <- factor(cd$grp)
report("crossed_unstructured", fit_tight(y ~ x + z + grp + (1 + x | teach) + (1 | student), cd), ftest = "grp")
report("crossed_intercepts", fit_tight(y ~ x + z + grp + (1 | teach) + (1 | student), cd), ftest = "grp")
report("crossed_independent", fit_tight(y ~ x + z + grp + (1 + x || teach) + (1 | student), cd), ftest = "grp")

# (c) the seed's moving-teacher design (shared/reference crossed_seed_d5_reml), Satterthwaite only:
# pbkrtest forms 8,000 x 8,000 matrices
seed <- read.csv("tests/data/seed_d5_crossed.csv")
report("seed_d5_crossed", fit_tight(perform ~ tutoring + (1 | dist_id) + (1 | dist_id:school_id) + (1 | teach_id) +
                                     (1 | student_id), seed), methods = "Satterthwaite")

# (d) one contrast, 2.grp - 3.grp (lincom), in the intercept model: lmerTest's contest1D
m <- fit_tight(y ~ x + z + grp + (1 | teach) + (1 | student), cd)
for (ddf in c("Satterthwaite", "Kenward-Roger")) {
  r <- contest1D(m, c(0, 0, 0, 1, -1), ddf = ddf)
  cat(sprintf("LINCOM %s estimate=%.12g se=%.12g df=%.12g t=%.12g p=%.12g\n", ddf, r$Estimate, r$`Std. Error`,
              r$df, r$`t value`, r$`Pr(>|t|)`))
}
