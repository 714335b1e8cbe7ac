"""Report tables show every term's full name, or an abbreviation no other term shares."""

import json

import main
from engine.report import abbreviate, name_column
from tests.reference_cases import DATA

HSB = str(DATA / "hsb.csv")


def test_interaction_names_are_printed_in_full_and_json_keeps_them(tmp_path, capsys):
    out = tmp_path / "fit.json"
    assert main.main(["fit", HSB, "--reml", "--center", "ses_c=ses:group:school", "--json", str(out), "--model",
                      "mathach c.meanses##c.ses_c i.sector##c.ses_c || school: ses_c, covariance(unstructured)"]) == 0
    report = capsys.readouterr().out
    table = report[report.index("Coef."):].split("\n\n")[0]  # the coefficient table
    rows = {line.split("|")[0].strip() for line in table.splitlines() if "|" in line}
    for name in ("meanses", "ses_c", "c.meanses#c.ses_c", "1.sector", "1.sector#c.ses_c", "_cons"):
        assert name in rows
    terms = [row["term"] for row in json.loads(out.read_text())["fixed"]]
    assert terms == ["meanses", "ses_c", "c.meanses#c.ses_c", "1.sector", "1.sector#c.ses_c", "_cons"]
    # every line of the coefficient table has its bar at the same place
    bars = {line.index("|") for line in table.splitlines()[1:] if "|" in line}
    assert len(bars) == 1


def test_names_too_long_for_the_column_are_abbreviated_uniquely():
    names = ["c.achievement_motivation_score#c.socioeconomic_status_a",
             "c.achievement_motivation_score#c.socioeconomic_status_b", "ses", "_cons"]
    width, labels = name_column(names, 12)
    shown = list(labels.values())
    assert len(set(shown)) == len(names)  # never two alike
    assert all(len(label) <= width for label in shown) and width <= 32
    assert labels["ses"] == "ses" and "~" in labels[names[0]]
    assert labels[names[0]].endswith("_a") and labels[names[1]].endswith("_b")


def test_abbreviation_widens_until_labels_differ():
    names = ["x" * 30 + "_first_" + "y" * 10 + "end", "x" * 30 + "_other_" + "y" * 10 + "end"]
    width, labels = name_column(names, 12, limit=20)
    assert labels[names[0]] != labels[names[1]] and width > 20
    assert abbreviate("short", 12) == "short"
