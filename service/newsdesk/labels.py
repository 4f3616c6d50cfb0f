"""The digest's template strings ("Why it matters:", "Read on:"), per language.

They live in ``templates/labels/<language>.toml`` so that a curator adds a language by
dropping a file into their template folder, and overrides a single label with
``[labels]`` in newsdesk.toml. English is the fallback for a label a language lacks.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from newsdesk.errors import ConfigError

BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
"""The shipped templates (``templates/`` at the top of the project, linked into the package)."""

FALLBACK = "en"


def label_keys() -> frozenset[str]:
    """Every label a template may ask for: the keys of the shipped English file."""
    return frozenset(_read(BUILTIN_TEMPLATES / "labels" / f"{FALLBACK}.toml"))


def shipped_languages() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in (BUILTIN_TEMPLATES / "labels").glob("*.toml")))


def load_labels(
    language: str, *, folder: Path | None = None, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """English, then the language's shipped file, then the curator's folder, then config.

    ``language`` may carry a region (``de-AT``): ``de`` is used when no ``de-AT`` file exists.
    """
    labels: dict[str, str] = {}
    for name in _candidates(language):
        for base in (BUILTIN_TEMPLATES, folder):
            if base is not None:
                path = base / "labels" / f"{name}.toml"
                if path.is_file():
                    labels.update(_read(path))
    labels.update(overrides or {})
    return labels


def _candidates(language: str) -> list[str]:
    """``de-AT`` -> en, de, de-AT: the later ones win."""
    base = language.split("-", 1)[0].lower()
    names = [FALLBACK, base, language]
    return list(dict.fromkeys(names))


def _read(path: Path) -> dict[str, str]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read labels: {exc}"]) from None
    bad = [key for key, value in raw.items() if not isinstance(value, str)]
    if bad:
        raise ConfigError([f"{path}: {key}: expected a string" for key in bad])
    return {key: str(value) for key, value in raw.items()}
