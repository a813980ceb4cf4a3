"""ISGPS and Clavien-Dindo rules of a postoperative complication, pure (no ORM).

- ISGPS 2016 pancreatic fistula (Bassi et al., Surgery 2017): biochemical leak, grade B or C;
  grade A no longer exists. Every grade needs a drain amylase above 3 × the upper limit of
  normal of the serum amylase (ULN 135 U/L in assessments/analytes.py, so above 405 U/L).
- Delayed gastric emptying (ISGPS 2007) and post-pancreatectomy haemorrhage (ISGPS 2007):
  grade A, B or C.
- Other complications carry no ISGPS grade.
- A grade B/C fistula changes the management, so it cannot be Clavien-Dindo I.

`complication_errors` returns {field: [messages]} so model clean() and tests share it.
"""

from django.utils.translation import gettext as _

SERUM_AMYLASE_ULN_U_L = 135
POPF_DRAIN_AMYLASE_ABOVE_U_L = 3 * SERUM_AMYLASE_ULN_U_L  # 405

POPF, DGE, PPH = "popf", "dge", "pph"
GRADES: dict[str, tuple[str, ...]] = {
    POPF: ("BL", "B", "C"),
    DGE: ("A", "B", "C"),
    PPH: ("A", "B", "C"),
}
CLAVIEN_DINDO = ("I", "II", "IIIa", "IIIb", "IVa", "IVb", "V")


def _add(errors: dict, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def complication_errors(
    *, kind: str, isgps_grade: str, clavien_dindo: str, drain_amylase_u_l: int | None
) -> dict[str, list[str]]:
    """The rule violations of one complication, keyed by the field to fix (empty if none)."""
    errors: dict[str, list[str]] = {}
    allowed = GRADES.get(kind)
    if clavien_dindo and clavien_dindo not in CLAVIEN_DINDO:
        _add(
            errors,
            "clavien_dindo",
            _("“%(grade)s” is not a Clavien-Dindo grade.") % {"grade": clavien_dindo},
        )
    if allowed is None:
        if isgps_grade:
            _add(
                errors,
                "isgps_grade",
                _(
                    "An ISGPS grade applies to a pancreatic fistula, delayed gastric emptying or a "
                    "post-pancreatectomy haemorrhage only: leave it empty."
                ),
            )
        if drain_amylase_u_l is not None and kind != POPF:
            _add(
                errors,
                "drain_amylase_u_l",
                _("The drain amylase is recorded for a pancreatic fistula only: leave it empty."),
            )
        return errors
    if not isgps_grade:
        _add(errors, "isgps_grade", _("Give the ISGPS grade of this complication."))
        return errors
    if kind == POPF and isgps_grade == "A":
        _add(
            errors,
            "isgps_grade",
            _(
                "Grade A no longer exists for a pancreatic fistula (ISGPS 2016): a leak without "
                "clinical impact is a biochemical leak (BL)."
            ),
        )
        return errors
    if isgps_grade not in allowed:
        _add(
            errors,
            "isgps_grade",
            _("Grade %(grade)s is not an ISGPS grade of this complication (%(allowed)s).")
            % {"grade": isgps_grade, "allowed": ", ".join(allowed)},
        )
        return errors
    if kind == POPF:
        if drain_amylase_u_l is None:
            _add(
                errors,
                "drain_amylase_u_l",
                _(
                    "Give the drain amylase: a pancreatic fistula needs more than %(limit)s U/L "
                    "(3 × the serum amylase upper limit of %(uln)s U/L)."
                )
                % {"limit": POPF_DRAIN_AMYLASE_ABOVE_U_L, "uln": SERUM_AMYLASE_ULN_U_L},
            )
        elif drain_amylase_u_l <= POPF_DRAIN_AMYLASE_ABOVE_U_L:
            _add(
                errors,
                "drain_amylase_u_l",
                _(
                    "A drain amylase of %(value)s U/L is not above %(limit)s U/L (3 × the serum "
                    "amylase upper limit of %(uln)s U/L): this is not a pancreatic fistula "
                    "(ISGPS 2016)."
                )
                % {
                    "value": drain_amylase_u_l,
                    "limit": POPF_DRAIN_AMYLASE_ABOVE_U_L,
                    "uln": SERUM_AMYLASE_ULN_U_L,
                },
            )
        if isgps_grade in ("B", "C") and clavien_dindo == "I":
            _add(
                errors,
                "clavien_dindo",
                _(
                    "A grade %(grade)s pancreatic fistula changes the management, so it is at "
                    "least Clavien-Dindo II, not I."
                )
                % {"grade": isgps_grade},
            )
    elif drain_amylase_u_l is not None:
        _add(
            errors,
            "drain_amylase_u_l",
            _("The drain amylase is recorded for a pancreatic fistula only: leave it empty."),
        )
    return errors
