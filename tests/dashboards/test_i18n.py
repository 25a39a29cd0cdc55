"""The translation catalogues stay complete: this test is how every engineer keeps zh-CN and en in step.

- both catalogues have exactly the same keys, no empty texts, the same ``{placeholders}``;
- every literal ``t("key")`` in ``dashboards/`` exists in both; every ``t(f"prefix.{x}")`` matches some key;
- keys built from data (layers, roles, error codes) exist for every value of that data.
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from flask import Flask

from dashboards import i18n
from dashboards.i18n import COOKIE, LANGUAGES, catalogue, current_lang, normalize_lang, t, vocab_label
from layers.store import vocab
from layers.store.settings import Settings

DASHBOARDS = Path(i18n.__file__).resolve().parent


def _t_calls() -> list[tuple[Path, int, ast.expr]]:
    """(file, line, first argument) of every call to ``t(...)`` or ``<x>.t(...)`` under dashboards/."""
    calls = []
    for path in sorted(DASHBOARDS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            f = node.func
            if (isinstance(f, ast.Name) and f.id == "t") or (isinstance(f, ast.Attribute) and f.attr == "t"):
                calls.append((path, node.lineno, node.args[0]))
    return calls


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def test_catalogues_have_the_same_keys_and_no_empty_texts() -> None:
    zh, en = catalogue("zh-CN"), catalogue("en")
    assert sorted(set(zh) - set(en)) == [], "keys missing in en.json"
    assert sorted(set(en) - set(zh)) == [], "keys missing in zh-CN.json"
    for lang in LANGUAGES:
        empty = sorted(k for k, v in catalogue(lang).items() if not isinstance(v, str) or not v.strip())
        assert empty == [], f"empty texts in {lang}.json"


def test_placeholders_agree_between_languages() -> None:
    zh, en = catalogue("zh-CN"), catalogue("en")
    differ = sorted(k for k in zh if _placeholders(zh[k]) != _placeholders(en[k]))
    assert differ == []


def test_catalogue_files_are_valid_json_without_duplicate_keys() -> None:
    import json

    for lang in LANGUAGES:
        pairs_seen: list[list[tuple[str, str]]] = []
        json.loads((i18n.TRANSLATIONS_DIR / f"{lang}.json").read_text(encoding="utf-8"),
                   object_pairs_hook=lambda pairs, seen=pairs_seen: seen.append(pairs) or dict(pairs))
        keys = [k for k, _ in pairs_seen[-1]]
        assert len(keys) == len(set(keys)), f"duplicate keys in {lang}.json"


def test_every_t_key_used_in_dashboards_exists_in_both_catalogues() -> None:
    calls = _t_calls()
    assert len(calls) >= 10, "the scanner found almost no t() calls: is it still finding them?"
    keys = set(catalogue("zh-CN")) & set(catalogue("en"))
    missing = []
    for path, line, arg in calls:
        where = f"{path.relative_to(DASHBOARDS.parent)}:{line}"
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            if arg.value not in keys:
                missing.append(f"{where}: {arg.value!r}")
        elif isinstance(arg, ast.JoinedStr):  # t(f"layer.{name}"): some key must fit the pattern
            pattern = "".join(re.escape(v.value) if isinstance(v, ast.Constant) else r"[\w.-]+" for v in arg.values)
            if not any(re.fullmatch(pattern, k) for k in keys):
                missing.append(f"{where}: no key matches {pattern!r}")
    assert missing == []


def test_keys_built_from_data_exist() -> None:
    from dashboards.errors import ERROR_TABLE
    from dashboards.pages import home
    from layers.store.models import FEATURE_MODELS

    keys = set(catalogue("zh-CN")) & set(catalogue("en"))
    needed = {f"layer.{name}" for name in FEATURE_MODELS}
    needed |= {f"role.{role}.{part}" for role, _ in home.ROLES for part in ("name", "desc")}
    needed |= {f"error.{code}" for _, _, code in ERROR_TABLE if code}
    needed |= {f"error.{c}" for c in ("invalid_parameter", "unknown_parameter", "missing_parameter", "invalid_json",
                                      "unknown_layer", "bad_request", "not_found", "method_not_allowed",
                                      "internal_error", "invalid_geometry", "crs_error", "geoops_error", "http")}
    needed |= {f"lang.{code}" for code in ("zh", "en")}
    assert sorted(needed - keys) == []


@pytest.fixture(scope="module", autouse=True)
def _an_app_exists():
    # dash.register_page (run when dashboards.pages.* is imported) needs an app; build one without a database
    from dashboards.app import create_app

    create_app(Settings(database_url="postgresql+psycopg://x:y@127.0.0.1:1/none"))


def test_language_precedence_query_then_cookie_then_settings() -> None:
    app = Flask("i18n-test")
    app.config["SITROOM_SETTINGS"] = Settings(language="en")
    with app.test_request_context("/"):
        assert current_lang() == "en"
    with app.test_request_context("/", headers={"Cookie": f"{COOKIE}=zh-CN"}):
        assert current_lang() == "zh-CN"
        assert t("app.title") == catalogue("zh-CN")["app.title"]
    with app.test_request_context("/?lang=en", headers={"Cookie": f"{COOKIE}=zh-CN"}):
        assert current_lang() == "en"
        assert t("app.title") == catalogue("en")["app.title"]
    with app.test_request_context("/?lang=fr", headers={"Cookie": f"{COOKIE}=klingon"}):
        assert current_lang() == "en"  # nonsense falls through to the settings


def test_t_formats_and_falls_back_without_failing() -> None:
    assert t("app.title", "en-GB") == catalogue("en")["app.title"]
    assert t("no.such.key", "en") == "no.such.key"  # a wall never fails on a missing text
    assert t("app.title", "en", unused=1) == catalogue("en")["app.title"]


@pytest.mark.parametrize(("tag", "expected"), [
    ("en", "en"), ("EN", "en"), ("en-US", "en"), ("en_GB", "en"), ("zh", "zh-CN"), ("zh-cn", "zh-CN"),
    ("zh-Hans", "zh-CN"), ("zh-TW", "zh-CN"), ("fr", None), ("", None), (None, None), (3, None),
])
def test_normalize_lang(tag, expected) -> None:
    assert normalize_lang(tag) == expected


def test_vocab_label_delegates_to_layers_vocab() -> None:
    for name, entries in vocab.VOCABULARIES.items():
        for key in entries:
            for lang in LANGUAGES:
                assert vocab_label(name, key, lang) == vocab.label(name, key, lang)
    assert vocab_label("shelter_kind", "central", "zh") == "中心避难场所"
