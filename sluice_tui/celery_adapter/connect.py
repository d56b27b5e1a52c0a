"""Find the Celery app and broker to monitor, the way Celery itself would."""

from __future__ import annotations

import os
import sys

from celery import Celery
from celery.app.utils import find_app
from kombu.utils.url import maybe_sanitize_url


class SetupError(Exception):
    """A problem the user can fix: a bad app path or broker URL.  The text says how."""


def load_app(app_path: str | None = None, broker: str | None = None) -> Celery:
    """The app named by ``-A`` (or a bare one), with ``--broker`` taking precedence."""
    app = _import_app(app_path) if app_path else Celery("sluice-tui", set_as_current=False)
    if broker:
        override_broker(app, broker)
    _check_transport(app)
    return app


def override_broker(app: Celery, broker: str) -> None:
    """Point ``app`` at ``broker`` whatever its config says (``--broker`` with ``-A``)."""
    # Celery lets CELERY_BROKER_URL override the config; `celery -b` sets
    # that variable, and so does --broker here, so it wins the same way.
    os.environ["CELERY_BROKER_URL"] = broker
    app.conf.broker_url = broker
    # Settings that would otherwise still send reads, writes or the transport
    # class to the app's own broker: an app on filesystem:// names its
    # transport class, and kombu prefers that to the new URL's scheme.
    app.conf.broker_read_url = broker
    app.conf.broker_write_url = broker
    if "://" in broker:
        app.conf.broker_transport = None


def broker_label(app: Celery) -> str:
    """The broker URL as it may be shown: the password is always masked."""
    configured = app.conf.broker_url
    if isinstance(configured, str) and configured:
        return mask_url(configured)
    return app.connection_for_read().as_uri()  # kombu masks the password itself


def mask_url(url: str) -> str:
    """Every password masked, in each URL of a failover list (``a;b``) too."""
    masked = []
    for part in url.split(";"):
        try:
            masked.append(maybe_sanitize_url(part.strip()))
        except ValueError:  # a URL kombu cannot parse: show its scheme only
            scheme = part.partition("://")[0].strip()
            masked.append(f"{scheme}://**" if "://" in part else "**")
    return ";".join(masked)


def _import_app(app_path: str) -> Celery:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # -A resolves from the current directory, as in Celery
    try:
        app = find_app(app_path)
    except ModuleNotFoundError as exc:
        raise SetupError(
            f"cannot import the Celery app {app_path!r}: no module named {exc.name!r}. "
            "Run sluice-tui from your project's directory, or check the -A value "
            "(for example: -A proj or -A proj.celery:app)."
        ) from None
    except (ImportError, AttributeError) as exc:
        raise SetupError(f"cannot load the Celery app {app_path!r}: {exc}") from None
    except Exception as exc:  # importing user code can raise anything
        raise SetupError(
            f"importing the Celery app {app_path!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(app, Celery):
        raise SetupError(
            f"{app_path!r} is a {type(app).__name__}, not a Celery app; "
            "name the app instance, for example -A proj.celery:app"
        )
    return app


def _check_transport(app: Celery) -> None:
    try:
        conn = app.connection_for_read()
        conn.transport_cls  # noqa: B018 - resolving the transport validates the URL
        conn.transport  # noqa: B018
    except Exception as exc:
        url = mask_url(str(app.conf.broker_url or "amqp://localhost//"))
        raise SetupError(f"unusable broker URL {url}: {exc}") from None


def describe_error(exc: BaseException) -> str:
    """The first line of an exception's message, short enough for a status line."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
