"""Settings: environment first, overrides on top, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import describe_settings, load_settings
from service.db import make_engine
from service.errors import ConfigError


def test_defaults_are_the_embedded_ones() -> None:
    settings = load_settings({})
    assert settings.database == f"sqlite:///{Path('instance') / 'moderation.db'}"
    assert settings.models == Path("instance") / "models"
    assert not settings.redis_url and not settings.is_production


def test_environment_values_are_typed() -> None:
    settings = load_settings(
        {
            "MODERATION_PREMODERATION": "yes",
            "MODERATION_REVIEW_THRESHOLD": "0.4",
            "ALLOWED_REDIRECT_HOSTS": "News.example, www.news.example",
            "MAX_BODY_BYTES": "1000",
        }
    )
    assert settings.premoderation is True
    assert settings.review_threshold == 0.4
    assert load_settings({"MODERATION_REJECT_THRESHOLD": ""}).reject_threshold is None
    assert settings.allowed_redirect_hosts == ("News.example", "www.news.example")
    assert settings.max_body_bytes == 1000


def test_a_list_with_a_trailing_or_doubled_comma_has_no_empty_item() -> None:
    settings = load_settings({"ALLOWED_REDIRECT_HOSTS": "news.example,, www.news.example, "})
    assert settings.allowed_redirect_hosts == ("news.example", "www.news.example")


def test_a_switch_set_but_empty_keeps_its_default() -> None:
    # As a compose file's `${RETRAIN_AUTO_ACTIVATE:-}` passes it when unset on the host.
    settings = load_settings({"RETRAIN_AUTO_ACTIVATE": "", "RETRAIN_SHADOW": " ", "SQLITE_FULL_SYNC": ""})
    assert settings.retrain_auto_activate is True and settings.retrain_shadow is True
    assert settings.sqlite_full_sync is False
    assert load_settings({"RETRAIN_AUTO_ACTIVATE": "off"}).retrain_auto_activate is False


def test_a_blank_model_folder_is_the_data_folder_s_as_an_empty_one_is() -> None:
    assert load_settings({"MODEL_DIR": " "}).models == Path("instance") / "models"


def test_overrides_win_over_the_environment() -> None:
    assert load_settings({"JOB_RETRIES": "5"}, {"job_retries": 1}).job_retries == 1


def test_a_review_threshold_equal_to_the_reject_threshold_is_accepted() -> None:
    settings = load_settings({"MODERATION_REVIEW_THRESHOLD": "0.8", "MODERATION_REJECT_THRESHOLD": "0.8"})
    assert settings.review_threshold == settings.reject_threshold == 0.8
    assert load_settings({"MODERATION_REVIEW_THRESHOLD": "1"}).review_threshold == 1.0


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"JOB_RETRIES": "many"}, "JOB_RETRIES"),
        ({"MODERATION_PREMODERATION": "maybe"}, "MODERATION_PREMODERATION"),
        ({"MODERATION_REVIEW_THRESHOLD": "1.5"}, "MODERATION_REVIEW_THRESHOLD must be above 0"),
        ({"MODERATION_REJECT_THRESHOLD": "0"}, "MODERATION_REJECT_THRESHOLD must be above 0"),
        (
            {"MODERATION_REVIEW_THRESHOLD": "0.9", "MODERATION_REJECT_THRESHOLD": "0.8"},
            "must not exceed MODERATION_REJECT_THRESHOLD",
        ),
        ({"MODERATION_ENV": "production"}, "MODERATION_SECRET_KEY, DATABASE_URL, REDIS_URL"),
        ({"MODERATION_ENV": "Production"}, "MODERATION_ENV must be development or production, not 'Prod"),
        ({"LOG_LEVEL": "verbose"}, "LOG_LEVEL must be a level such as INFO or DEBUG, not 'verbose'"),
        ({"DATABASE_URL": "notaurl"}, "DATABASE_URL is not a URL SQLAlchemy can read"),
        ({"DATABASE_URL": "mysql://db/moderation"}, "DATABASE_URL must be a sqlite:/// or postgresql"),
        ({"DATABASE_URL": "postgresql+psycopg2://db/x"}, "DATABASE_URL must be a sqlite:/// or postgresql"),
        ({"DATABASE_URL": "sqlite://"}, "DATABASE_URL names an in-memory SQLite database"),
        ({"DATABASE_URL": "sqlite:///:memory:"}, "DATABASE_URL names an in-memory SQLite database"),
        ({"DATABASE_URL": "sqlite:///file:/srv/m.db?uri=true"}, "not as a file: URI"),
        ({"DATABASE_URL": "sqlite:///file::memory:?uri=true"}, "not as a file: URI"),
        # An unescaped password: the message must not repeat any of it.
        ({"DATABASE_URL": "postgresql://moderation:pa@ss:w0rd@db/x"}, r"is not a URL SQLAlchemy can read \("),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must be a redis://, rediss:// or unix:// URL"),
        ({"JOB_TIMEOUT_SECONDS": "0"}, "JOB_TIMEOUT_SECONDS must be at least 1"),
        ({"MAX_BODY_BYTES": "-5"}, "MAX_BODY_BYTES must be at least 1"),
        ({"JOB_RETRIES": "-1"}, "JOB_RETRIES must be 0"),
        ({"DISPATCH_INTERVAL_SECONDS": "0"}, "DISPATCH_INTERVAL_SECONDS must be above 0"),
        ({"REDIS_TIMEOUT_SECONDS": "-1"}, "REDIS_TIMEOUT_SECONDS must be above 0"),
        ({"MODEL_CHECK_SECONDS": "nan"}, "MODEL_CHECK_SECONDS must be 0 or more"),
        ({"SWEEP_INTERVAL_SECONDS": "-1"}, "SWEEP_INTERVAL_SECONDS must be 0 or more"),
        ({"SWEEP_GRACE_SECONDS": "inf"}, "SWEEP_GRACE_SECONDS must be 0 or more"),
        ({"WORKER_PROCESSES": "0"}, "WORKER_PROCESSES must be at least 1"),
        ({"CLASSIFY_BATCH": "0"}, "CLASSIFY_BATCH must be at least 1"),
        ({"TRUSTED_AFTER_APPROVED": "-1"}, "TRUSTED_AFTER_APPROVED must be 0"),
        ({"RETRAIN_AFTER_LABELS": "-5"}, "RETRAIN_AFTER_LABELS must be 0"),
        ({"MODEL_VERSIONS_KEPT": "-1"}, "MODEL_VERSIONS_KEPT must be 0"),
        ({"TRUSTED_PROXIES": "-1"}, "TRUSTED_PROXIES must be 0 or more"),
        ({"ALLOWED_REDIRECT_HOSTS": "news.example:8080"}, "ALLOWED_REDIRECT_HOSTS must name hosts alone"),
        ({"ALLOWED_REDIRECT_HOSTS": "https://news.example"}, "without scheme, port, path"),
        ({"ALLOWED_REDIRECT_HOSTS": "[::1]:8080"}, "without scheme, port, path"),
        ({"ALLOWED_REDIRECT_HOSTS": "*.news.example"}, "path or wildcard: '\\*.news.example'"),
        ({"CLASSIFY_QUEUE": " "}, "CLASSIFY_QUEUE must name a queue"),
        ({"RETRAIN_QUEUE": ""}, "RETRAIN_QUEUE must name a queue"),
        ({"HONEYPOT_FIELD": "email"}, "HONEYPOT_FIELD must not name a field of the comment form: 'email'"),
        ({"HONEYPOT_FIELD": "redirect"}, "HONEYPOT_FIELD must not name a field"),
        ({"HONEYPOT_FIELD": "website "}, "HONEYPOT_FIELD must not start or end with spaces: 'website '"),
        ({"HONEYPOT_FIELD": " "}, "HONEYPOT_FIELD must not start or end with spaces"),
        ({"WEBHOOK_URL": "ftp://news.example/hook"}, "WEBHOOK_URL must be an http:// or https:// URL"),
        ({"WEBHOOK_URL": "https:///hook"}, "WEBHOOK_URL must be an http:// or https:// URL"),
        (
            {"WEBHOOK_URL": "https://news.example:99999/hook?token=w0rd"},
            "with a host name \\(and a valid port\\)",
        ),
        ({"WEBHOOK_URL": "https://news.example:80a/hook"}, "with a host name \\(and a valid port\\)"),
        ({"WEBHOOK_URL": "https://news.example:0/hook"}, "with a host name \\(and a valid port\\)"),
        ({"WEBHOOK_URL": "https://news.example/hook"}, "WEBHOOK_URL needs WEBHOOK_SECRET"),
        (
            {"WEBHOOK_URL": "https://news.example/hook", "WEBHOOK_SECRET": "whsec_c2hvcnQ="},
            "WEBHOOK_SECRET must be .* it holds 5 bytes; 24 to 64 are needed",
        ),
        (
            {"WEBHOOK_URL": "https://news.example/hook", "WEBHOOK_SECRET": "whsec_not base64!"},
            "WEBHOOK_SECRET must be .* it is not base64",
        ),
        ({"WEBHOOK_TIMEOUT_SECONDS": "0"}, "WEBHOOK_TIMEOUT_SECONDS must be above 0"),
        ({"MIN_SECONDS_TO_SUBMIT": "-1"}, "MIN_SECONDS_TO_SUBMIT must be 0"),
        ({"MIN_SECONDS_TO_SUBMIT": "nan"}, "MIN_SECONDS_TO_SUBMIT must be 0"),
        ({"MIN_SECONDS_TO_SUBMIT": "inf"}, "MIN_SECONDS_TO_SUBMIT must be 0"),
        ({"WEBHOOK_TIMEOUT_SECONDS": "inf"}, "WEBHOOK_TIMEOUT_SECONDS must be above 0"),
        # Read as a path, empty is the working directory: the key and database would go there.
        ({"MODERATION_DATA_DIR": ""}, "MODERATION_DATA_DIR: must name a folder"),
        ({"MODERATION_DATA_DIR": "  "}, "MODERATION_DATA_DIR: must name a folder"),
    ],
)
def test_bad_configuration_stops_start_up(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as refused:
        load_settings(environ)
    assert "w0rd" not in str(refused.value)


@pytest.mark.parametrize("url", ["postgres://db/x", "postgresql://db/x", "postgresql+psycopg://db/x"])
def test_postgresql_urls_as_hosting_providers_write_them_open_with_psycopg(url: str) -> None:
    assert load_settings({"DATABASE_URL": url}).database_url == url
    engine = make_engine(url)
    assert engine.url.drivername == "postgresql+psycopg" and engine.dialect.driver == "psycopg"
    engine.dispose()


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({}, {"colour": "blue"})


def test_every_setting_is_described() -> None:
    rows = describe_settings()
    assert all(variable and description for variable, _default, description in rows)
    assert len({variable for variable, _default, _description in rows}) == len(rows)
