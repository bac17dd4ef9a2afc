"""The stack alone: a Flask app that parses the comment JSON and answers like the intake.

The intake benchmark runs it under the same gunicorn settings as the service, so the
ratio of the two throughputs is the share of the stack's ceiling the service reaches.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import BadRequest


def create_app() -> Flask:
    """A Flask app with one route, ``POST /v1/comments``, that parses the body and answers 202."""
    app = Flask(__name__)

    @app.post("/v1/comments")
    def post_comment() -> Any:
        try:
            body = json.loads(request.get_data(cache=False))
        except ValueError:
            raise BadRequest("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise BadRequest("the JSON body must be an object")
        return jsonify(id=1, status="received"), 202

    return app
