"""Errors the user can act on. Their message is shown as is, in the CLI and in the GUI."""


class UserInputError(ValueError):
    """Bad input (file, column, value, model): the message names the problem."""


class Cancelled(Exception):
    """A long job was stopped at the user's request."""
