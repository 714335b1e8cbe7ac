"""The Monte Carlo tab's alpha: the study carries it, the summary is the engine's at that level,
and the plots draw the (1 - alpha) coverage and the level-alpha power lines."""

from test_gui_montecarlo import run_to_end, view  # noqa: F401  (fixture)

from engine.montecarlo import summarise_records


def plot_titles(panel) -> list[str]:
    layout = panel.canvas.ci.layout
    items = [layout.itemAt(i) for i in range(layout.count())]
    return [item.titleLabel.text for item in items if hasattr(item, "titleLabel")]


def test_alpha_sets_the_level_of_coverage_and_power(qtbot, view):  # noqa: F811
    view.reps_spin.setValue(8)
    view.alpha_spin.setValue(0.1)
    assert view.study().alpha == 0.1
    result = run_to_end(qtbot, view)
    assert result.study.alpha == 0.1
    assert result.summary == summarise_records(result.records, 0.1)
    assert any("Coverage of the 90% CI" in title for title in plot_titles(view.accuracy_plot))
    assert any("at the 10% level" in title for title in plot_titles(view.power_plot))
