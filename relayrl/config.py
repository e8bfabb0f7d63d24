"""One typed config object per service; flags and RELAYRL_* environment variables map onto it.

A service declares a dataclass whose fields carry a ``help`` string in their metadata. Each field
``foo_bar`` becomes the flag ``--foo-bar`` and the variable ``RELAYRL_FOO_BAR``; a flag beats a
variable, which beats a preset (a class may merge one in with a ``with_preset`` classmethod), which beats
the default. Nothing else in RelayRL reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

ENV_PREFIX = "RELAYRL_"

T = TypeVar("T")
P = ParamSpec("P")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the flag and its variable."""


def option(default: Any, help: str, choices: Sequence[Any] | None = None, secret: bool = False) -> Any:
    """A config field: its default, the help text shown by --help and the allowed values.

    A ``secret`` field (a token) is left out of the dataclass's repr and shown as "<redacted>" by
    ``redacted()``, which is what anything that prints or saves a config must use.
    """
    return dataclasses.field(
        default=default, repr=not secret, metadata={"help": help, "choices": choices, "secret": secret}
    )


REDACTED = "<redacted>"


def redacted(config: Any) -> dict[str, Any]:
    """The config as a dict, tuples as lists, every secret that is set replaced by "<redacted>"."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.metadata.get("secret") and value is not None:
            value = REDACTED
        out[field.name] = list(value) if isinstance(value, tuple) else value
    return out


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def describe(field_name: str) -> str:
    """How a user names a field: both its flag and its variable."""
    return f"{flag_name(field_name)} (${env_name(field_name)})"


def _base_type(tp: Any) -> tuple[Any, bool]:
    """The concrete type of an annotation and whether None is allowed."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0], True
    return tp, False


def _convert(field_name: str, tp: Any, raw: str) -> Any:
    base, optional = _base_type(tp)
    if optional and raw.strip().lower() in ("", "none"):
        return None
    try:
        if base is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if typing.get_origin(base) is tuple:
            item = typing.get_args(base)[0]
            return tuple(item(part) for part in raw.replace(" ", "").split(",") if part)
        return base(raw)
    except ValueError as exc:
        raise ConfigError(f"{describe(field_name)}: invalid value {raw!r} ({exc})") from None


def build_parser(cls: type, prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        base, _ = _base_type(hints[field.name])
        default = field.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        if field.metadata.get("secret") and default is not None:
            shown = REDACTED
        text = f"{field.metadata.get('help', '')} [default: {shown}; env {env_name(field.name)}]"
        if base is bool:
            parser.add_argument(
                flag_name(field.name),
                dest=field.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=text,
            )
        else:
            parser.add_argument(flag_name(field.name), dest=field.name, default=None, help=text)
    return parser


def load(
    cls: type[T],
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    prog: str = "relayrl",
    description: str = "",
) -> T:
    """Build ``cls`` from flags, then RELAYRL_* variables, then defaults; validate; fail naming the value.

    Raises ConfigError on a bad value; argparse exits with status 2 on an unknown flag.
    """
    environ = os.environ if environ is None else environ
    parser = build_parser(cls, prog, description)
    args = parser.parse_args(argv)
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        given = getattr(args, field.name)
        if given is None and env_name(field.name) in environ:
            given = environ[env_name(field.name)]
        if given is None:
            continue
        values[field.name] = given if isinstance(given, bool) else _convert(field.name, hints[field.name], given)
        _check_choice(field, values[field.name])
    with_preset = getattr(cls, "with_preset", None)
    if with_preset is not None:
        values = with_preset(values)
    config = cls(**values)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def _check_choice(field: dataclasses.Field, value: Any) -> None:
    choices = field.metadata.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{describe(field.name)}: {value!r} is not one of {', '.join(map(str, choices))}")


def coerce(cls: type, field_name: str, value: Any, origin: str) -> Any:
    """A typed value from a data file (a preset's TOML) converted and checked as that field's flag would be."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, list):
        text = ",".join(map(str, value))
    else:
        text = str(value)
    field = next(f for f in dataclasses.fields(cls) if f.name == field_name)
    try:
        converted = _convert(field_name, typing.get_type_hints(cls)[field_name], text)
        _check_choice(field, converted)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    return converted


TOKEN_RULE = "must be at least 16 printable ASCII characters, no spaces"


def token_ok(token: str) -> bool:
    """A bearer token fit for gRPC metadata and long enough not to be guessed."""
    return len(token) >= 16 and token.isascii() and token.isprintable() and " " not in token


def check_credentials(config: Any) -> None:
    """The TLS files and bearer token both services take (fields tls_cert, tls_key, tls_ca, auth_token,
    auth_token_file): the certificate and its key go together, every file is readable, a token file is read
    into auth_token (one of the two, not both), the token is fit to send."""
    require((config.tls_cert is None) == (config.tls_key is None), "tls_cert", "--tls-cert and --tls-key go together")
    for name in ("tls_ca", "tls_cert", "tls_key", "auth_token_file"):
        path = getattr(config, name)
        require(path is None or os.path.isfile(path), name, f"{path!r} is not a readable file")
    if config.auth_token_file is not None:
        require(config.auth_token is None, "auth_token_file", "give the token or its file, not both")
        path = config.auth_token_file
        try:
            with open(path, encoding="ascii") as file:
                config.auth_token = file.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{describe('auth_token_file')}: cannot read {path!r} ({exc})") from None
        require(token_ok(config.auth_token), "auth_token_file", f"the token in {path!r} {TOKEN_RULE}")
    require(config.auth_token is None or token_ok(config.auth_token), "auth_token", TOKEN_RULE)


def service_config(cls: type[T], argv: Sequence[str] | None, service: str, description: str) -> T:
    """How a service's main() starts: log lines tagged with the service, then its configuration (load)."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {service} %(levelname)s %(message)s")
    return load(cls, argv, prog=f"relayrl {service}", description=description)


def config_errors_exit_2(prog: str) -> Callable[[Callable[P, int]], Callable[P, int]]:
    """For a command's main(): a ConfigError raised in it (a bad flag or variable, or a mismatch only the
    service itself can find) prints "PROG: error: MESSAGE" and makes main return 2, argparse's status."""

    def decorate(main: Callable[P, int]) -> Callable[P, int]:
        @functools.wraps(main)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> int:
            try:
                return main(*args, **kwargs)
            except ConfigError as exc:
                print(f"{prog}: error: {exc}", file=sys.stderr)
                return 2

        return wrapped

    return decorate


def require(condition: bool, field_name: str, message: str) -> None:
    """Raise a ConfigError naming the field unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{describe(field_name)}: {message}")
