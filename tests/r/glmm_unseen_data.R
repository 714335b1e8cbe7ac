# Simulated data for tests/test_glmm_unseen.py (run from the worktree root: Rscript tests/r/glmm_unseen_data.R).
# Each file is small and unbalanced on purpose; the fits are in tests/r/glmm_unseen_literals.R.
set.seed(20261130)

# 1. Binary outcome, 60 groups of 3 to 40 rows, a correlated random slope on x (sds 1.0 and 0.6, corr 0.4),
#    a three-level factor f (letters) and an x:f interaction; a few groups have no 1 at all.
ng <- 60
size <- sample(3:40, ng, replace = TRUE)
g <- rep(seq_len(ng), size)
u <- MASS::mvrnorm(ng, c(0, 0), matrix(c(1, 0.4 * 0.6, 0.4 * 0.6, 0.36), 2))
u[1:4, 1] <- -3.5  # groups 1-4: all (or nearly all) zeros
x <- round(rnorm(length(g)) + 0.3 * rnorm(ng)[g], 4)
f <- sample(c("a", "b", "c"), length(g), replace = TRUE, prob = c(0.5, 0.3, 0.2))
eta <- -0.3 + 0.7 * x + 0.4 * (f == "b") - 0.5 * (f == "c") + 0.3 * x * (f == "c") + u[g, 1] + u[g, 2] * x
y <- rbinom(length(g), 1, plogis(eta))
write.csv(data.frame(g, x, f, y), "tests/data/unseen_logit_slope.csv", row.names = FALSE, quote = FALSE)

# 2. Binary outcome, classes nested in schools (class ids restart in each school), probit link: school sd 0.5,
#    class sd 0.35 for y; class sd 0 (a boundary) for y0. z is a school-level covariate.
nschool <- 30
ncls <- sample(2:5, nschool, replace = TRUE)
school <- rep(seq_len(nschool), ncls)
class <- unlist(lapply(ncls, seq_len))
nstud <- sample(4:25, length(school), replace = TRUE)
row_class <- rep(seq_along(school), nstud)
d <- data.frame(school = school[row_class], class = class[row_class])
d$x <- round(rnorm(nrow(d)), 4)
zs <- round(rnorm(nschool), 3)
d$z <- zs[d$school]
us <- rnorm(nschool, 0, 0.5)
uc <- rnorm(length(school), 0, 0.35)
d$y <- rbinom(nrow(d), 1, pnorm(-0.4 + 0.5 * d$x - 0.3 * d$z + us[d$school] + uc[row_class]))
us0 <- rnorm(nschool, 0, 0.6)
d$y0 <- rbinom(nrow(d), 1, pnorm(0.2 + 0.5 * d$x + 0.2 * d$z + us0[d$school]))
write.csv(d, "tests/data/unseen_probit_nested.csv", row.names = FALSE, quote = FALSE)

# 3. Counts in units in sites in regions (ids restart within the parent), exposure t, Poisson:
#    sds 0.5 (region), 0.3 (site), 0.25 (unit); rate exp(-0.5 + 0.4 x) per unit of t.
nreg <- 10
nsite <- sample(3:6, nreg, replace = TRUE)
site_region <- rep(seq_len(nreg), nsite)
site <- unlist(lapply(nsite, seq_len))
nunit <- sample(2:4, length(site_region), replace = TRUE)
unit_site <- rep(seq_along(site_region), nunit)
unit <- unlist(lapply(nunit, seq_len))
nobs <- sample(2:7, length(unit_site), replace = TRUE)
row_unit <- rep(seq_along(unit_site), nobs)
cnt <- data.frame(region = site_region[unit_site[row_unit]], site = site[unit_site[row_unit]], unit = unit[row_unit])
cnt$x <- round(rnorm(nrow(cnt)), 4)
cnt$t <- round(runif(nrow(cnt), 0.5, 3), 2)
ur <- rnorm(nreg, 0, 0.5); usite <- rnorm(length(site_region), 0, 0.3); uu <- rnorm(length(unit_site), 0, 0.25)
mu <- cnt$t * exp(-0.5 + 0.4 * cnt$x + ur[cnt$region] + usite[unit_site[row_unit]] + uu[row_unit])
cnt$count <- rpois(nrow(cnt), mu)
write.csv(cnt, "tests/data/unseen_counts.csv", row.names = FALSE, quote = FALSE)

# 4. Successes out of trials (aggregated binomial), 25 groups of 3 to 8 rows, 1 to 20 trials per row.
ngb <- 25
sizeb <- sample(3:8, ngb, replace = TRUE)
gb <- rep(seq_len(ngb), sizeb)
xb <- round(rnorm(length(gb)), 4)
trials <- sample(1:20, length(gb), replace = TRUE)
ub <- rnorm(ngb, 0, 0.7)
succ <- rbinom(length(gb), trials, plogis(-0.2 + 0.6 * xb + ub[gb]))
write.csv(data.frame(g = gb, x = xb, n = trials, s = succ), "tests/data/unseen_binomial.csv",
          row.names = FALSE, quote = FALSE)

# 5. Added columns (drawn after the files above, so their columns are unchanged):
#    counts: obs (one id per row, for an observation-level effect), x2, and count2 with a random slope on x
#    per site (sd 0.3, intercept sd 0.4, corr -0.5) besides the region intercept (sd 0.5);
#    binary: w and y3 with random intercept and slopes on x and w per group (sds 0.9, 0.5, 0.4).
cnt$obs <- seq_len(nrow(cnt))
cnt$x2 <- round(rnorm(nrow(cnt)), 4)
us2 <- MASS::mvrnorm(length(site_region), c(0, 0), matrix(c(0.16, -0.06, -0.06, 0.09), 2))
s_row <- unit_site[row_unit]
cnt$count2 <- rpois(nrow(cnt), cnt$t * exp(-0.3 + 0.4 * cnt$x + 0.2 * cnt$x2 + ur[cnt$region] + us2[s_row, 1] +
                                           us2[s_row, 2] * cnt$x))
write.csv(cnt, "tests/data/unseen_counts.csv", row.names = FALSE, quote = FALSE)
bin <- data.frame(g, x, f, y)
bin$w <- round(rnorm(nrow(bin)), 4)
u3 <- cbind(rnorm(ng, 0, 0.9), rnorm(ng, 0, 0.5), rnorm(ng, 0, 0.4))
bin$y3 <- rbinom(nrow(bin), 1, plogis(0.2 + 0.5 * bin$x - 0.4 * bin$w + u3[g, 1] + u3[g, 2] * bin$x + u3[g, 3] * bin$w))
write.csv(bin, "tests/data/unseen_logit_slope.csv", row.names = FALSE, quote = FALSE)
