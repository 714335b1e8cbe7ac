"""Errors the user can act on. Their message is shown as is, in the CLI and in the GUI."""


class UserInputError(ValueError):
    """Bad input (file, column, value, model): the message names the problem."""


def require_columns(names, columns, noun: str = "column", context: str = "") -> None:
    """Raise UserInputError naming the first of ``names`` that is not among ``columns``, with the
    column spelled the same in another case as a hint: "{context}unknown {noun} 'x' (did you mean 'X'?)"."""
    columns = list(columns)
    for name in names:
        if name not in columns:
            close = [c for c in columns if str(c).lower() == str(name).lower()]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserInputError(f"{context}unknown {noun} {name!r}{hint}")


class Cancelled(Exception):
    """A long job was stopped at the user's request."""
