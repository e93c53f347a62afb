"""The verification snippets in docs/webhooks.md accept a real delivery and refuse a forged one."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from handlers.keys import CTX
from service.webhooks.delivery import deliver_once
from tests.factories import bearer_for, make_case, make_client, make_station
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers_webhooks import subscribe

DOC = Path(__file__).resolve().parents[1] / "docs" / "webhooks.md"


def snippet(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    (code,) = [b for b in blocks if "verify" in b]
    return code


async def delivered_request(client: Any, settings: Any) -> tuple[str, Any]:
    receiver = await WebhookReceiver().start()
    try:
        ctx = client.app[CTX]
        await make_station(ctx)
        integrator = await make_client(ctx, scopes=("cases:read", "cases:write", "webhooks:manage"))
        sub = await subscribe(client, bearer_for(settings, integrator), receiver.url("a"))
        await make_case(ctx, integrator)
        await deliver_once(ctx=ctx, worker_id="w1")
        (req,) = receiver.received("a")
        return sub["secret"], req
    finally:
        await receiver.close()


async def test_python_snippet_verifies_a_delivery(client: Any, settings: Any) -> None:
    secret, req = await delivered_request(client, settings)
    scope: dict[str, Any] = {}
    exec(snippet("python"), scope)
    header = req.headers["Huimin-Signature"]
    assert scope["verify"](secret, header, req.body)
    assert not scope["verify"](secret, header, req.body.replace(b"case.created", b"case.resolved"))
    assert not scope["verify"]("whsec_wrong", header, req.body)
    stale = re.sub(r"t=\d+", f"t={int(time.time()) - 3600}", header)
    assert not scope["verify"](secret, stale, req.body)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
async def test_javascript_snippet_verifies_a_delivery(client: Any, settings: Any) -> None:
    secret, req = await delivered_request(client, settings)
    program = snippet("js") + (
        "\nconst [secret, header, body] = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));"
        "\nconst raw = Buffer.from(body, 'base64');"
        "\nconst tampered = Buffer.concat([raw, Buffer.from(' ')]);"
        "\nconsole.log(JSON.stringify([verify(secret, header, raw), verify(secret, header, tampered)]));"
    )
    stdin = json.dumps([secret, req.headers["Huimin-Signature"], base64.b64encode(req.body).decode()])
    out = subprocess.run(["node", "-e", program], input=stdin, capture_output=True, text=True, timeout=30, check=True)
    assert json.loads(out.stdout) == [True, False]
