"""Sandboxed Jinja2 expressions: the only way definitions compute values. YAML never
reaches Python's eval; an expression sees only the names it is given."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import DeskbaseError

ENVIRONMENT = ImmutableSandboxedEnvironment()
# Date arithmetic: `record.date + days(30)`, a date thirty days after another.
ENVIRONMENT.globals["days"] = lambda count: timedelta(days=int(count or 0))


class ExpressionError(DeskbaseError):
    """An expression that does not parse, reaches outside the sandbox, or fails on a record."""


@lru_cache(maxsize=1024)
def compile_expression(text: str):
    """A callable for an expression; raises ExpressionError for a syntax error."""
    try:
        return ENVIRONMENT.compile_expression(text, undefined_to_none=True)
    except TemplateSyntaxError as error:
        raise ExpressionError(f"the expression `{text}` does not parse: {error.message}") from None


def evaluate(text: str, names: Mapping[str, Any]) -> Any:
    """The value of an expression given the names it may use."""
    function = compile_expression(text)
    try:
        return function(**names)
    except SecurityError as error:
        raise ExpressionError(f"the expression `{text}` is not allowed: {error}") from None
    except (UndefinedError, TypeError, ValueError, ArithmeticError, AttributeError, KeyError) as error:
        raise ExpressionError(f"the expression `{text}` failed: {error}") from None
