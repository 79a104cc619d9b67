"""The Python Functions Framework peer of the benchmark: the same two functions as the Rust
side, registered with the framework's own API and served by gunicorn as in production."""

import functions_framework


@functions_framework.http
def hello(request):
    """GET /: an HTTP function answering OK."""
    return "OK"


@functions_framework.cloud_event
def cloudevent(event):
    """POST /: a binary-mode CloudEvent whose JSON data the framework decodes; nothing else."""
    if not event["id"] or event.data is None:
        raise ValueError("event without id or data")
