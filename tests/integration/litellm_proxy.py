"""A real LiteLLM proxy for the tests and the benchmark: started from its own virtualenv, stopped with its
children.

The proxy cannot live in costtop's virtualenv (litellm[proxy] pins rich<14, costtop's UI needs rich>=14.2),
so it runs from `.venv-litellm-proxy`, which scripts/litellm-proxy-env builds (the first run builds it:
about 2 minutes). Its models answer with `mock_response` (no provider is called, no network), prices come from
LiteLLM's bundled cost map, and it has no database (its Prisma client would download engines at run time).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from costtop.demo.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("COSTTOP_LITELLM_VENV", ROOT / ".venv-litellm-proxy"))
SPEND_ROWS = Path(__file__).with_name("litellm_spend_rows.py")

# Two public names: one OpenAI deployment, one Anthropic, so model and provider kills can be told apart.
MODELS = [
    {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-unused",
                                                "mock_response": "hello"}},
    {"model_name": "claude", "litellm_params": {"model": "anthropic/claude-3-5-sonnet-20240620",
                                                "api_key": "sk-unused", "mock_response": "hi"}},
]
CALLBACK = "costtop.integrations.litellm.costtop_callback"


def ensure_venv(timeout: float = 900) -> Path:
    """The proxy's virtualenv, built by the project's script when missing (README's `pytest` on a new clone)."""
    if not (VENV / "bin" / "litellm").exists():
        subprocess.run([str(ROOT / "scripts" / "litellm-proxy-env")], check=True, timeout=timeout,
                       env={**os.environ, "COSTTOP_LITELLM_VENV": str(VENV)}, stdin=subprocess.DEVNULL)
    return VENV


@dataclass
class Proxy:
    url: str
    key: str
    directory: Path
    proc: subprocess.Popen[bytes]

    @property
    def rows_file(self) -> Path:
        return self.directory / "spend_rows.jsonl"

    @property
    def log_file(self) -> Path:
        return self.directory / "proxy.log"

    def rows(self) -> list[dict[str, object]]:
        """The spend-log rows LiteLLM built so far (tests/litellm_spend_rows.py writes them)."""
        if not self.rows_file.exists():
            return []
        return [json.loads(line) for line in self.rows_file.read_text(encoding="utf-8").splitlines() if line]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def stop(self) -> None:
        """SIGTERM to the proxy's process group (uvicorn and anything it forked), SIGKILL after 10 s."""
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass


def start_proxy(directory: Path, redis_url: str, *, with_callback: bool = True, spend_rows: bool = True,
                costtop_toml: str = "", ready_timeout: float = 120,
                litellm_settings: dict[str, object] | None = None) -> Proxy:
    """Write a config in `directory`, start one proxy on a free loopback port, wait until it answers."""
    venv = ensure_venv()
    directory.mkdir(parents=True, exist_ok=True)
    callbacks = ([CALLBACK] if with_callback else []) + (["litellm_spend_rows.spend_rows"] if spend_rows else [])
    key = "sk-" + secrets.token_hex(32)
    config: dict[str, object] = {"model_list": MODELS, "general_settings": {"master_key": key}}
    settings = dict(litellm_settings or {})
    if callbacks:
        settings["callbacks"] = callbacks
    if settings:
        config["litellm_settings"] = settings
    # JSON is YAML: the proxy reads this with yaml.safe_load. The rows logger is found beside the config.
    (directory / "config.yaml").write_text(json.dumps(config, indent=2), encoding="utf-8")
    shutil.copy(SPEND_ROWS, directory / SPEND_ROWS.name)
    (directory / "costtop.toml").write_text(costtop_toml, encoding="utf-8")
    port = free_port()
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONUNBUFFERED": "1",  # the log file is read while the proxy runs
        "COSTTOP_REDIS_URL": redis_url,
        "COSTTOP_CONFIG": str(directory / "costtop.toml"),
        "COSTTOP_TEST_SPEND_ROWS": str(directory / "spend_rows.jsonl"),
        # This checkout's costtop, whichever checkout built the virtualenv.
        "PYTHONPATH": str(ROOT / "src"),
    }
    log = open(directory / "proxy.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [str(venv / "bin" / "litellm"), "--config", str(directory / "config.yaml"), "--host", "127.0.0.1",
         "--port", str(port), "--num_workers", "1"],
        cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    proxy = Proxy(f"http://127.0.0.1:{port}", key, directory, proc)
    deadline = time.monotonic() + ready_timeout
    while True:
        if proc.poll() is not None:
            tail = proxy.log_file.read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeError(f"LiteLLM proxy exited with {proc.returncode}: {' '.join(tail)}")
        try:
            if httpx.get(f"{proxy.url}/health/liveliness", timeout=1.0).status_code == 200:
                return proxy
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proxy.stop()
            raise RuntimeError(f"LiteLLM proxy not ready in {ready_timeout:.0f} s (log: {proxy.log_file})")
        time.sleep(0.2)


def chat_body(model: str, agent: str | None = None, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    if agent is not None:
        body["metadata"] = {"agent_id": agent}
    return body
