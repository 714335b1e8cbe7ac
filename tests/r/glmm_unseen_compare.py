"""Compare the engine's CLI fits (--json) with the glmer fits of tests/r/glmm_unseen_literals.R.

Run from the worktree root (needs the R output, so it is a tool, not a test):
    Rscript tests/r/glmm_unseen_literals.R > /tmp/unseen.jsonl
    PYTHONPATH=$PWD python tests/r/glmm_unseen_compare.py /tmp/unseen.jsonl
Each case is fitted twice: written in Stata syntax and as the glmer(...) call.
"""

import json
import math
import subprocess
import sys
import tempfile

DATA = {"slope": "tests/data/unseen_logit_slope.csv", "nested": "tests/data/unseen_probit_nested.csv",
        "counts": "tests/data/unseen_counts.csv", "binomial": "tests/data/unseen_binomial.csv"}


def agq(label):
    return int(label.rsplit("agq", 1)[1]) if "agq" in label else 1


def cases():
    out = {
        "slope_corr": ("slope", "melogit y x || g: x, covariance(unstructured)", "glmer(y ~ x + (1 + x | g), family = binomial)"),
        "slope_uncorr": ("slope", "melogit y x || g: x", "glmer(y ~ x + (1 + x || g), family = binomial)"),
        "slope_factor_interaction": ("slope", "melogit y c.x##i.f || g: x, covariance(unstructured)",
                                     "glmer(y ~ x * factor(f) + (1 + x | g), family = binomial)"),
        "slope_probit": ("slope", "meprobit y x i.f || g: x, covariance(unstructured)",
                         "glmer(y ~ x + factor(f) + (1 + x | g), family = binomial(link = \"probit\"))"),
        "probit_nested": ("nested", "meprobit y x z || school: || class:",
                          "glmer(y ~ x + z + (1 | school/class), family = binomial(link = \"probit\"))"),
        "logit_nested": ("nested", "melogit y x z || school: || class:",
                         "glmer(y ~ x + z + (1 | school/class), family = binomial)"),
        "probit_nested_boundary": ("nested", "meprobit y0 x z || school: || class:",
                                   "glmer(y0 ~ x + z + (1 | school/class), family = binomial(link = \"probit\"))"),
        "poisson_2level": ("counts", "mepoisson count x || region: || site:, exposure(t)",
                           "glmer(count ~ x + offset(log(t)) + (1 | region/site), family = poisson)"),
        "poisson_3level": ("counts", "mepoisson count x || region: || site: || unit:, exposure(t)",
                           "glmer(count ~ x + offset(log(t)) + (1 | region/site/unit), family = poisson)"),
        "binomial_laplace": ("binomial", "melogit s x || g:, binomial(n)",
                             "glmer(cbind(s, n - s) ~ x + (1 | g), family = binomial)"),
        "binomial_agq12": ("binomial", "melogit s x || g:, binomial(n) intpoints(12)",
                           "glmer(cbind(s, n - s) ~ x + (1 | g), family = binomial, nAGQ = 12)"),
    }
    out.update({
        "binomial_probit_laplace": ("binomial", "meprobit s x || g:, binomial(n)",
                                    "glmer(cbind(s, n - s) ~ x + (1 | g), family = binomial(link = \"probit\"))"),
        "binomial_probit_agq7": ("binomial", "meprobit s x || g:, binomial(n) intpoints(7)",
                                 "glmer(cbind(s, n - s) ~ x + (1 | g), family = binomial(link = \"probit\"), nAGQ = 7)"),
        "nested_inner_slope": ("nested", "melogit y x z || school: || class: x, covariance(unstructured)",
                               "glmer(y ~ x + z + (1 | school) + (1 + x | school:class), family = binomial)"),
        "nested_outer_slope": ("nested", "melogit y x z || school: x, covariance(unstructured) || class:",
                               "glmer(y ~ x + z + (1 + x | school) + (1 | school:class), family = binomial)"),
        "poisson_site_slope": ("counts", "mepoisson count2 x x2 || region: || site: x, covariance(unstructured) exposure(t)",
                               "glmer(count2 ~ x + x2 + offset(log(t)) + (1 | region) + (1 + x | region:site), family = poisson)"),
        "slope3": ("slope", "melogit y3 x w || g: x w, covariance(unstructured)",
                   "glmer(y3 ~ x + w + (1 + x + w | g), family = binomial)"),
        "slope_only": ("slope", "melogit y x || g: x, noconstant", "glmer(y ~ x + (0 + x | g), family = binomial)"),
        "noconstant_factor": ("slope", "melogit y ibn.f x, noconstant || g:",
                              "glmer(y ~ 0 + factor(f) + x + (1 | g), family = binomial)"),
        "poisson_olre": ("counts", "mepoisson count x || region: || obs:, exposure(t)",
                         "glmer(count ~ x + offset(log(t)) + (1 | region) + (1 | obs), family = poisson)"),
        "poisson_olre_nested": ("counts", "mepoisson count x || region: || site: || obs:, exposure(t)",
                                "glmer(count ~ x + offset(log(t)) + (1 | region/site) + (1 | obs), family = poisson)"),
    })
    for q in (1, 5, 12, 25):
        out[f"logit_agq{q}"] = ("slope", f"melogit y x i.f || g:, intpoints({q})",
                                f"glmer(y ~ x + factor(f) + (1 | g), family = binomial, nAGQ = {q})")
        out[f"probit_agq{q}"] = ("slope", f"meprobit y x i.f || g:, intpoints({q})",
                                 f"glmer(y ~ x + factor(f) + (1 | g), family = binomial(link = \"probit\"), nAGQ = {q})")
        out[f"poisson_agq{q}"] = ("counts", f"mepoisson count x || region:, exposure(t) intpoints({q})",
                                  f"glmer(count ~ x + offset(log(t)) + (1 | region), family = poisson, nAGQ = {q})")
    return out


def lme4_term(name):
    if name == "(Intercept)":
        return "_cons"
    if name.startswith("factor(f)"):
        name = name.replace("factor(f)", "f")
    parts = []
    for piece in name.split(":"):
        if piece in ("fa", "fb", "fc"):
            parts.append(f"{piece[1]}.f")
        else:
            parts.append(piece if ":" not in name else f"c.{piece}")
    return "#".join(parts)


DEEPEST_FIRST = ["obs", "unit", "class", "site", "school", "region", "g"]


def lme4_level(grp):
    parts = grp.split(".")[0].replace("(", "").replace(")", "").split(":")
    return min(parts, key=DEEPEST_FIRST.index)


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def run(data, model):
    with tempfile.NamedTemporaryFile(suffix=".json") as handle:
        done = subprocess.run([sys.executable, "main.py", "fit", data, "--model", model, "--json", handle.name, "--quiet"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return None, done.stderr.strip()
        return json.load(open(handle.name)), ""


def compare(ref, res):
    out = {"loglik": rel(res["loglik"], ref["loglik"])}
    fixed = {row["term"]: row for row in res["fixed"]}
    coef_err = se_err = 0.0
    for name, value in ref["fixed"].items():
        row = fixed[lme4_term(name)]
        coef_err = max(coef_err, rel(row["coef"], value))
        se_err = max(se_err, rel(row["se"], ref["se"][name]))
    out["coef"], out["se"] = coef_err, se_err
    random = {(row["level"], row["param"]): row["estimate"] for row in res["random"]}
    sd_err, sd_abs, corr_err = 0.0, 0.0, 0.0
    for row in ref["vc"]:
        level = lme4_level(row["grp"])
        if row.get("var2") not in (None, "NA") and isinstance(row.get("var2"), str):
            a, b = ("_cons" if v == "(Intercept)" else v for v in (row["var1"], row["var2"]))
            key = next(k for k in [(level, f"corr({b},{a})"), (level, f"corr({a},{b})")] if k in random)
            corr_err = max(corr_err, abs(random[key] - row["sdcor"]))
            continue
        term = "_cons" if row["var1"] == "(Intercept)" else row["var1"]
        mine = random[(level, f"sd({term})")]
        sd_abs = max(sd_abs, abs(mine - row["sdcor"]))
        if row["sdcor"] > 1e-4:
            sd_err = max(sd_err, rel(mine, row["sdcor"]))
    out["sd"], out["sd_abs"], out["corr_abs"] = sd_err, sd_abs, corr_err
    if res.get("lr_test"):
        out["lr_abs"] = abs(res["lr_test"]["stat"] - 2 * (ref["loglik"] - ref["llglm"]))
    return out


def main(path):
    refs = {json.loads(line)["label"]: json.loads(line) for line in open(path) if line.strip()}
    worst = {}
    for label, (data, stata, glmer) in cases().items():
        if label not in refs:
            continue
        ref = refs[label]
        for form, model in (("stata", stata), ("glmer", glmer)):
            res, err = run(DATA[data], model)
            if res is None:
                print(f"{label:26s} {form:5s} REFUSED: {err}")
                continue
            if ref["nAGQ"] > 1 and "poisson" in label:
                pass  # the R script already added lme4's dropped constant back
            diffs = compare(ref, res)
            flag = "" if (diffs["loglik"] < 1e-6 and diffs["coef"] < 1e-4 and diffs["se"] < 1e-4
                          and diffs["sd"] < 1e-3) else "  <-- BEYOND"
            print(f"{label:26s} {form:5s} " + " ".join(f"{k}={v:.1e}" for k, v in diffs.items())
                  + f" warn={len(res['warnings'])}{flag}")
            for key, value in diffs.items():
                worst[key] = max(worst.get(key, 0.0), value)
    print("worst:", " ".join(f"{k}={v:.1e}" for k, v in worst.items()))


if __name__ == "__main__":
    main(sys.argv[1])
