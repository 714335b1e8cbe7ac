# Predicted random effects and their conditional sds (ranef(condVar = TRUE)) of the VerbAgg crossed
# logit model, lme4 1.1-31, for tests/test_glmm_crossed.py. Run from the repository root.
suppressMessages(library(lme4))
va <- read.csv("tests/data/verbagg.csv")
ctrl <- glmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e5), tolPwrss = 1e-13)
m <- glmer(r2 ~ anger + male + factor(btype) + self + (1|id) + (1|item), data = va, family = binomial, control = ctrl)
for (i in 1:3) m <- update(m, start = getME(m, c("theta", "fixef")))
re <- ranef(m, condVar = TRUE)
for (g in c("item", "id")) {
  values <- re[[g]][, 1]
  sds <- sqrt(attr(re[[g]], "postVar")[1, 1, ])
  for (k in c(1, 2, 3, nrow(re[[g]]))) cat(sprintf("%s %s %.10f %.10f\n", g, rownames(re[[g]])[k], values[k], sds[k]))
}
