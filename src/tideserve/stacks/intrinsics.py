"""CloudFormation's intrinsic functions, evaluated over a `Scope` (parameters, pseudo
parameters, mappings, conditions, and the resources made so far).

A reference to a resource that does not exist yet (while a change set is planned) evaluates to
an `Unknown`; any function over an Unknown is Unknown, so the plan can say "this property will
change, its value known only when the stack runs" (CloudFormation's `Evaluation: Dynamic`).
`{"Ref": "AWS::NoValue"}` evaluates to NO_VALUE, which removes the key or list item holding it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tideserve.errors import ValidationError


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class Unknown:
    """The value of a resource reference not resolvable yet (the resource is to be made)."""

    logical_id: str


@dataclass
class Scope:
    params: dict[str, Any]  # parameters and pseudo parameters by name
    mappings: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)
    ref: Callable[[str], Any] = lambda name: Unknown(name)
    get_att: Callable[[str, str], Any] = lambda name, attr: Unknown(name)
    import_value: Callable[[str], Any] = lambda name: _no_export(name)
    resources: frozenset[str] = frozenset()  # the logical ids a Ref or GetAtt may name
    region: str = "us-east-1"


def _no_export(name: str) -> Any:
    raise ValidationError(f"No export named {name} found.")


def template_error(detail: str) -> ValidationError:
    return ValidationError(f"Template error: {detail}")


def resolve(value: Any, scope: Scope) -> Any:
    """`value` with every intrinsic function replaced by its result."""
    if isinstance(value, dict):
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return _ref(arg, scope)
            if key == "Condition" and isinstance(arg, str):
                return condition_value(arg, scope)
            fn = _FUNCTIONS.get(key)
            if fn is not None:
                return fn(arg, scope)
        out = {}
        for k, v in value.items():
            resolved = resolve(v, scope)
            if resolved is not NO_VALUE:
                out[k] = resolved
        return out
    if isinstance(value, list):
        items = [resolve(v, scope) for v in value]
        return [v for v in items if v is not NO_VALUE]
    return value


def is_unknown(value: Any) -> bool:
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(is_unknown(v) for v in value)
    return False


def condition_value(name: str, scope: Scope) -> bool:
    if name not in scope.conditions:
        raise template_error(f"unresolved condition dependency {name} in Fn::If")
    return scope.conditions[name]


def evaluate_conditions(section: dict[str, Any], scope: Scope) -> dict[str, bool]:
    """Each named condition's truth, following `{"Condition": name}` references (a cycle among
    them is a template error)."""
    done: dict[str, bool] = {}
    visiting: set[str] = set()

    def evaluate(name: str) -> bool:
        if name in done:
            return done[name]
        if name not in section:
            raise template_error(f"unresolved condition dependency {name}")
        if name in visiting:
            raise template_error(f"circular condition dependency {name}")
        visiting.add(name)
        lookup = Scope(scope.params, scope.mappings, _LazyConditions(evaluate), scope.ref,
                       scope.get_att, scope.import_value, scope.resources, scope.region)
        result = resolve(section[name], lookup)
        if not isinstance(result, bool):
            raise template_error(f"condition {name} is not a boolean expression")
        done[name] = result
        return result

    for name in section:
        evaluate(name)
    return done


class _LazyConditions(dict):  # type: ignore[type-arg]
    def __init__(self, evaluate: Callable[[str], bool]) -> None:
        super().__init__()
        self._evaluate = evaluate

    def __contains__(self, name: object) -> bool:
        return True

    def __getitem__(self, name: str) -> bool:
        return self._evaluate(name)


def _ref(arg: Any, scope: Scope) -> Any:
    if not isinstance(arg, str):
        raise template_error("Ref takes a string")
    if arg == "AWS::NoValue":
        return NO_VALUE
    if arg in scope.params:
        return scope.params[arg]
    if arg in scope.resources:
        return scope.ref(arg)
    raise ValidationError(f"Template format error: Unresolved resource dependencies [{arg}] in "
                          "the Resources block of the template")


def _get_att(arg: Any, scope: Scope) -> Any:
    if isinstance(arg, str):
        arg = arg.split(".", 1)
    if not isinstance(arg, list) or len(arg) != 2:
        raise template_error("Fn::GetAtt takes [LogicalId, Attribute]")
    logical, attribute = arg[0], resolve(arg[1], scope)
    if logical not in scope.resources:
        raise template_error(f"instance of Fn::GetAtt references undefined resource {logical}")
    return scope.get_att(logical, str(attribute))


_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


def _sub(arg: Any, scope: Scope) -> Any:
    if isinstance(arg, str):
        text, variables = arg, {}
    elif isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
        text, variables = arg[0], {k: resolve(v, scope) for k, v in arg[1].items()}
    else:
        raise template_error("Fn::Sub takes a string or [string, {variables}]")
    pieces: list[Any] = []
    last = 0
    for match in _SUB_VAR.finditer(text):
        pieces.append(text[last:match.start()])
        last = match.end()
        name = match.group(1)
        if name.startswith("!"):  # ${!Literal} stays as ${Literal}
            pieces.append("${" + name[1:] + "}")
        elif name in variables:
            pieces.append(variables[name])
        elif "." in name and not name.startswith("AWS::"):
            pieces.append(_get_att(name.split(".", 1), scope))
        else:
            pieces.append(_ref(name.strip(), scope))
    pieces.append(text[last:])
    if any(is_unknown(p) for p in pieces):
        return Unknown("Fn::Sub")
    return "".join(_text(p) for p in pieces)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def _join(arg: Any, scope: Scope) -> Any:
    if not isinstance(arg, list) or len(arg) != 2:
        raise template_error("Fn::Join takes [delimiter, [values]]")
    delimiter, values = resolve(arg[0], scope), resolve(arg[1], scope)
    if not isinstance(values, list):
        raise template_error("Fn::Join's second argument must be a list")
    if is_unknown(values):
        return Unknown("Fn::Join")
    return str(delimiter).join(_text(v) for v in values)


def _select(arg: Any, scope: Scope) -> Any:
    if not isinstance(arg, list) or len(arg) != 2:
        raise template_error("Fn::Select takes [index, list]")
    index, values = resolve(arg[0], scope), resolve(arg[1], scope)
    if isinstance(values, Unknown):
        return values
    if isinstance(values, str):
        values = values.split(",")
    try:
        position = int(index)
    except (TypeError, ValueError) as exc:
        raise template_error("Fn::Select index must be an integer") from exc
    if not isinstance(values, list) or not 0 <= position < len(values):
        raise template_error(f"Fn::Select cannot select nonexistent value at index {index}")
    return values[position]


def _split(arg: Any, scope: Scope) -> Any:
    if not isinstance(arg, list) or len(arg) != 2:
        raise template_error("Fn::Split takes [delimiter, string]")
    delimiter, text = resolve(arg[0], scope), resolve(arg[1], scope)
    if isinstance(text, Unknown):
        return text
    return str(text).split(str(delimiter))


def _if(arg: Any, scope: Scope) -> Any:
    if not isinstance(arg, list) or len(arg) != 3 or not isinstance(arg[0], str):
        raise template_error("Fn::If takes [condition, value_if_true, value_if_false]")
    chosen = arg[1] if condition_value(arg[0], scope) else arg[2]
    return resolve(chosen, scope)


def _equals(arg: Any, scope: Scope) -> bool:
    if not isinstance(arg, list) or len(arg) != 2:
        raise template_error("Fn::Equals takes two values")
    left, right = (resolve(v, scope) for v in arg)
    return _text(left) == _text(right)


def _condition_operand(value: Any, scope: Scope) -> bool:
    result = resolve(value, scope)
    if isinstance(result, str) and result in ("true", "false"):
        return result == "true"
    if not isinstance(result, bool):
        raise template_error("a condition function's operand must be a condition")
    return result


def _not(arg: Any, scope: Scope) -> bool:
    if not isinstance(arg, list) or len(arg) != 1:
        raise template_error("Fn::Not takes a one-element list")
    return not _condition_operand(arg[0], scope)


def _operands(name: str, arg: Any, scope: Scope) -> list[bool]:
    if not isinstance(arg, list) or not 2 <= len(arg) <= 10:
        raise template_error(f"{name} takes between 2 and 10 conditions")
    return [_condition_operand(v, scope) for v in arg]


def _and(arg: Any, scope: Scope) -> bool:
    return all(_operands("Fn::And", arg, scope))


def _or(arg: Any, scope: Scope) -> bool:
    return any(_operands("Fn::Or", arg, scope))


def _contains(arg: Any, scope: Scope) -> bool:
    if not isinstance(arg, list) or len(arg) != 2:
        raise template_error("Fn::Contains takes [list, value]")
    values, value = resolve(arg[0], scope), resolve(arg[1], scope)
    return _text(value) in [_text(v) for v in (values or [])]


def _find_in_map(arg: Any, scope: Scope) -> Any:
    if not isinstance(arg, list) or len(arg) != 3:
        raise template_error("Fn::FindInMap takes [map, top-level key, second-level key]")
    name, top, second = (_text(resolve(v, scope)) for v in arg)
    try:
        return scope.mappings[name][top][second]
    except (KeyError, TypeError) as exc:
        raise template_error(f"Unable to get mapping for {name}::{top}::{second}") from exc


def _get_azs(arg: Any, scope: Scope) -> list[str]:
    region = _text(resolve(arg, scope)) or scope.region
    return [f"{region}{zone}" for zone in "abc"]


def _import_value(arg: Any, scope: Scope) -> Any:
    name = resolve(arg, scope)
    if isinstance(name, Unknown):
        return name
    return scope.import_value(_text(name))


def _base64(arg: Any, scope: Scope) -> Any:
    text = resolve(arg, scope)
    if isinstance(text, Unknown):
        return text
    return base64.b64encode(_text(text).encode()).decode()


_FUNCTIONS: dict[str, Callable[[Any, Scope], Any]] = {
    "Fn::GetAtt": _get_att, "Fn::Sub": _sub, "Fn::Join": _join, "Fn::Select": _select,
    "Fn::Split": _split, "Fn::If": _if, "Fn::Equals": _equals, "Fn::Not": _not,
    "Fn::And": _and, "Fn::Or": _or, "Fn::Contains": _contains, "Fn::FindInMap": _find_in_map,
    "Fn::GetAZs": _get_azs, "Fn::ImportValue": _import_value, "Fn::Base64": _base64,
}
