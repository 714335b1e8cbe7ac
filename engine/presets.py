"""Built-in designs. Each factory returns a fresh ``Design`` the caller may edit."""

from __future__ import annotations

from typing import Callable

from engine.design import (
    OBSERVATION, CovariateDesign, CrossedFactor, Design, LevelDesign, Occasions, RandomSlope, TreatmentDesign, UnitCount,
)
from engine.errors import UserInputError


def tutoring() -> Design:
    """The seed's design: 5 districts x 5 schools x 8 teachers x 20 students x 2 semesters.

    Random-intercept sds 2, 3, 4, 5, residual 6; tutoring (effect 2) given to 20% of
    student-semesters.
    """
    return Design(
        name="tutoring",
        outcome="perform",
        levels=[
            LevelDesign("dist_id", UnitCount.fixed(5), sd=2.0),
            LevelDesign("school_id", UnitCount.fixed(5), sd=3.0),
            LevelDesign("teach_id", UnitCount.fixed(8), sd=4.0),
            LevelDesign("student_id", UnitCount.fixed(20), sd=5.0),
        ],
        occasions=Occasions(name="semester", count=2),
        residual_sd=6.0,
        intercept=0.0,
        treatment=TreatmentDesign(name="tutoring", effect=2.0, probability=0.2, level=OBSERVATION),
    )


def two_level() -> Design:
    """Students (one row each) in 100 schools, with a student covariate and a school covariate."""
    return Design(
        name="two_level",
        outcome="score",
        levels=[
            LevelDesign("school_id", UnitCount.fixed(100), sd=3.0),
            # One row per student: a student intercept would be indistinguishable from the residual.
            LevelDesign("student_id", UnitCount.uniform(15, 35), sd=0.0),
        ],
        residual_sd=6.0,
        intercept=50.0,
        covariates=[
            CovariateDesign("ses", level="student_id", distribution="normal", coef=2.0),
            CovariateDesign("sector", level="school_id", distribution="binary", probability=0.5, coef=1.5),
        ],
    )


def cluster_trial() -> Design:
    """A cluster-randomised trial: exactly half of 40 schools treated, 25 students per school."""
    return Design(
        name="cluster_trial",
        outcome="score",
        levels=[
            LevelDesign("school_id", UnitCount.fixed(40), sd=2.0),
            LevelDesign("student_id", UnitCount.fixed(25), sd=0.0),
        ],
        residual_sd=5.0,
        intercept=0.0,
        treatment=TreatmentDesign(name="treated", effect=1.5, probability=0.5, level="school_id",
                                  allocation="fixed"),
    )


def growth() -> Design:
    """Growth curves: 5 waves (10% missing) of 25 students in each of 40 schools.

    ``time`` = wave - 1; growth of 1.5 per wave whose rate varies across students (sd 0.5).
    """
    return Design(
        name="growth",
        outcome="score",
        levels=[
            LevelDesign("school_id", UnitCount.fixed(40), sd=2.0),
            LevelDesign("student_id", UnitCount.fixed(25), sd=3.0,
                        slopes=[RandomSlope("time", sd=0.5)]),
        ],
        occasions=Occasions(name="wave", count=5, missing_prob=0.1),
        residual_sd=2.0,
        intercept=20.0,
        covariates=[CovariateDesign("time", level=OBSERVATION, distribution="time", coef=1.5)],
    )


def tutoring_binary() -> Design:
    """The seed's design with a pass/fail outcome: logit link, baseline log-odds -0.5, tutoring
    effect 0.5 (log-odds), latent sds district 0.4, school 0.6, teacher 0.8, student 1.0."""
    design = tutoring()
    design.name = "tutoring_binary"
    design.outcome = "pass"
    for level, sd in zip(design.levels, (0.4, 0.6, 0.8, 1.0)):
        level.sd = sd
    design.intercept = -0.5
    design.treatment.effect = 0.5
    design.family, design.link = "binomial", "logit"
    return design


def tutoring_absences() -> Design:
    """The seed's design with a count outcome, days absent per semester: Poisson, log link, a
    baseline of 2 days (log 2), tutoring multiplying the rate by exp(-0.3) = 0.74, latent sds
    district 0.2, school 0.3, teacher 0.3, student 0.5 (on the log-rate scale)."""
    design = tutoring()
    design.name = "tutoring_absences"
    design.outcome = "absences"
    for level, sd in zip(design.levels, (0.2, 0.3, 0.3, 0.5)):
        level.sd = sd
    design.intercept = 0.6931471805599453  # log 2
    design.treatment.effect = -0.3
    design.family, design.link = "poisson", "log"
    return design


def tutoring_moving() -> Design:
    """The seed's design where each student moves to another teacher of the same school in
    semester 2 with probability 0.5: teachers and students are crossed within schools."""
    design = tutoring()
    design.name = "tutoring_moving"
    design.level("teach_id").move_prob = 0.5
    return design


def neighbourhoods() -> Design:
    """Students in schools in districts, crossed with the neighbourhoods they live in.

    20 districts x 6 schools x 30 students (one row each); each district has 15 neighbourhoods
    and each student lives in one of their district's, at random, so a school's students come
    from many neighbourhoods and a neighbourhood's from several schools. Sds: district 1,
    school 2, neighbourhood 2, residual 5; ses (normal) with effect 2.
    """
    return Design(
        name="neighbourhoods",
        outcome="score",
        levels=[
            LevelDesign("dist_id", UnitCount.fixed(20), sd=1.0),
            LevelDesign("school_id", UnitCount.fixed(6), sd=2.0),
            # One row per student: a student intercept would be indistinguishable from the residual.
            LevelDesign("student_id", UnitCount.fixed(30), sd=0.0),
        ],
        residual_sd=5.0,
        intercept=50.0,
        covariates=[CovariateDesign("ses", level="student_id", distribution="normal", coef=2.0)],
        crossed=[CrossedFactor("neigh_id", UnitCount.fixed(15), sd=2.0, within="dist_id")],
    )


PRESETS: dict[str, Callable[[], Design]] = {
    "tutoring": tutoring,
    "two_level": two_level,
    "cluster_trial": cluster_trial,
    "growth": growth,
    "tutoring_binary": tutoring_binary,
    "tutoring_absences": tutoring_absences,
    "tutoring_moving": tutoring_moving,
    "neighbourhoods": neighbourhoods,
}


def get_preset(name: str) -> Design:
    """A fresh copy of the named preset; unknown names raise UserInputError listing the choices."""
    try:
        factory = PRESETS[name]
    except KeyError:
        raise UserInputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    return factory()
