"""The Prometheus client: result parsing and every fault, against a real Prometheus where one can
produce the case and a small stdlib HTTP(S) server where it cannot (403, slow answers, HTML)."""

from __future__ import annotations

import argparse
import json
import math
import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_fixture import require_binary

from kcockpit.cli_options import add_prometheus_arguments, prometheus_config_from_args, prometheus_from_args
from kcockpit.sources.prometheus_runner import free_port, start_prometheus
from kcockpit.wire.prometheus import (
    PrometheusAuthError,
    PrometheusBadQuery,
    PrometheusClient,
    PrometheusConfig,
    PrometheusConfigError,
    PrometheusExecutionError,
    PrometheusNotFound,
    PrometheusProtocolError,
    PrometheusTimeout,
    PrometheusUnreachable,
)

# ---------------------------------------------------------------------------- a real Prometheus


@pytest.fixture(scope="module")
def prometheus():
    require_binary("prometheus")
    running = start_prometheus([])
    yield running
    running.stop()


@pytest.mark.prometheus
async def test_vector_scalar_string_and_matrix_results_with_special_values(prometheus):
    async with PrometheusClient(prometheus.url) as client:
        vector = await client.query('label_replace(vector(+Inf), "kind", "inf", "", "") or vector(NaN)', time=1000)
        values = {s.labels.get("kind", ""): s.value for s in vector.samples}
        assert vector.result_type == "vector" and values["inf"] == math.inf and math.isnan(values[""])
        assert all(s.timestamp == 1000 for s in vector.samples)
        scalar = await client.query("-1/0")
        assert scalar.result_type == "scalar" and scalar.scalar() == -math.inf
        text = await client.query('"hello"')
        assert text.result_type == "string" and text.text == "hello"
        matrix = await client.query_range("vector(time())", start=1000, end=1020, step_s=10)
        assert matrix.result_type == "matrix"
        assert matrix.series[0].points == [(1000, 1000), (1010, 1010), (1020, 1020)]
        assert (await client.query("absent(nonexistent_metric)")).scalar() == 1


@pytest.mark.prometheus
async def test_readiness_and_build_info(prometheus):
    async with PrometheusClient(prometheus.url) as client:
        assert await client.ready()
        info = await client.buildinfo()
        assert info.version.startswith("2.") and info.go_version.startswith("go")


@pytest.mark.prometheus
async def test_bad_promql_names_the_query_and_the_server_message(prometheus):
    async with PrometheusClient(prometheus.url) as client:
        with pytest.raises(PrometheusBadQuery) as error:
            await client.query("sum(rate(hubble_http_requests_total[1m])")
    message = str(error.value)
    assert "sum(rate(hubble_http_requests_total[1m])" in message and "parse error" in message
    assert "\n" not in message


@pytest.mark.prometheus
async def test_execution_error_is_422(prometheus):
    duplicate = 'label_replace(vector(1) or label_replace(vector(2), "a", "b", "", ""), "a", "", "", "")'
    async with PrometheusClient(prometheus.url) as client:
        with pytest.raises(PrometheusExecutionError) as error:
            await client.query(duplicate)
    assert "same labelset" in str(error.value) and duplicate in str(error.value)


@pytest.mark.prometheus
async def test_wrong_path_prefix_is_a_plain_404(prometheus):
    async with PrometheusClient(prometheus.url + "/prometheus") as client:
        with pytest.raises(PrometheusNotFound) as error:
            await client.query("up")
    assert "wrong URL or path prefix" in str(error.value) and "/prometheus/api/v1/query" in str(error.value)


async def test_server_down_names_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    async with PrometheusClient(url) as client:
        with pytest.raises(PrometheusUnreachable) as error:
            await client.query("up")
    assert url in str(error.value) and "connection refused" in str(error.value)


# ---------------------------------------------------------------------------- a fake server


class FakeServer:
    """Answers every path with the configured (status, content type, body) after `delay_s`,
    and records the last request's headers and form body."""

    def __init__(self, tls_context: ssl.SSLContext | None = None) -> None:
        self.status, self.content_type, self.body, self.delay_s = 200, "application/json", b"{}", 0.0
        self.headers: dict[str, str] = {}
        self.form = ""
        self.methods: list[str] = []
        self.refuse_post = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                fake.headers = dict(self.headers)
                length = int(self.headers.get("Content-Length") or 0)
                fake.form = self.rfile.read(length).decode() if length else ""
                time.sleep(fake.delay_s)
                fake.methods.append(self.command)
                refused = fake.refuse_post and self.command == "POST"
                try:
                    self.send_response(405 if refused else fake.status)
                    self.send_header("Content-Type", fake.content_type)
                    self.send_header("Content-Length", str(len(fake.body)))
                    self.end_headers()
                    self.wfile.write(fake.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first: that is what the timeout test wants

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls_context:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def answer(self, status: int, body, content_type: str = "application/json", delay_s: float = 0.0) -> None:
        self.status, self.content_type, self.delay_s = status, content_type, delay_s
        self.body = json.dumps(body).encode() if not isinstance(body, bytes) else body

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    server = FakeServer()
    yield server
    server.stop()


def error_body(error_type: str, message: str) -> dict:
    return {"status": "error", "errorType": error_type, "error": message}


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error_class", "fragment"),
    [
        (403, b"Forbidden\n", "text/plain", PrometheusAuthError, "403 Forbidden"),
        (401, b"", "text/plain", PrometheusAuthError, "--prometheus-token"),
        (403, error_body("forbidden", "tenant not allowed"), "application/json", PrometheusAuthError, "tenant not allowed"),
        (503, error_body("timeout", "query timed out in expression evaluation"), "application/json", PrometheusTimeout, "timed out"),
        (503, b"<html>maintenance</html>", "text/html", PrometheusTimeout, "unavailable"),
        (200, b"<html><body>Grafana login</body></html>", "text/html", PrometheusProtocolError, "not Prometheus JSON"),
        (502, b"Bad Gateway", "text/plain", PrometheusProtocolError, "HTTP 502"),
        (200, {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, 2]}]}}, "application/json",
         PrometheusProtocolError, "malformed"),
        (200, {"status": "success", "data": {"resultType": "histogram", "result": []}}, "application/json",
         PrometheusProtocolError, "unknown resultType"),
    ],
)
async def test_http_faults_become_typed_one_line_errors(fake, status, body, content_type, error_class, fragment):
    fake.answer(status, body, content_type)
    async with PrometheusClient(fake.url) as client:
        with pytest.raises(error_class) as error:
            await client.query("up")
    assert fragment in str(error.value) and "\n" not in str(error.value)


async def test_client_timeout_names_the_url_and_the_query(fake):
    # The server answers after 5 s, so a loaded machine cannot let the answer win the race;
    # giving up within 2 s shows the 0.2 s timeout cut the request, not a default of seconds.
    fake.answer(200, {"status": "success", "data": {"resultType": "vector", "result": []}}, delay_s=5.0)
    async with PrometheusClient(PrometheusConfig(fake.url, timeout_s=0.2)) as client:
        started = time.monotonic()
        with pytest.raises(PrometheusTimeout) as error:
            await client.query("slow_query")
    assert time.monotonic() - started < 2.0
    assert fake.url in str(error.value) and "slow_query" in str(error.value)


async def test_warnings_are_surfaced_and_auth_headers_sent(fake):
    fake.answer(
        200,
        {
            "status": "success",
            "warnings": ["PromQL info: metric might not be a counter"],
            "data": {"resultType": "vector", "result": [{"metric": {"job": "x"}, "value": [5, "+Inf"]}]},
        },
    )
    config = PrometheusConfig(fake.url, bearer_token="s3cret", headers={"X-Scope-OrgID": "tenant1"})
    async with PrometheusClient(config) as client:
        result = await client.query("rate(x[1m])", time=5, timeout_s=2.5)
    assert result.warnings == ["PromQL info: metric might not be a counter"]
    assert result.samples[0].labels == {"job": "x"} and result.samples[0].value == math.inf
    assert fake.headers["Authorization"] == "Bearer s3cret" and fake.headers["X-Scope-OrgID"] == "tenant1"
    assert "timeout=2500ms" in fake.form and "time=5.0" in fake.form


async def test_get_when_a_proxy_refuses_post(fake):
    fake.answer(200, {"status": "success", "data": {"resultType": "scalar", "result": [1, "7"]}})
    fake.refuse_post = True
    async with PrometheusClient(fake.url) as client:
        assert (await client.query("seven")).scalar() == 7
    assert fake.methods == ["POST", "GET"]


async def test_basic_auth(fake):
    fake.answer(200, {"status": "success", "data": {"resultType": "scalar", "result": [1, "1"]}})
    async with PrometheusClient(PrometheusConfig(fake.url, username="admin", password="pw")) as client:
        assert (await client.query("1")).scalar() == 1
    assert fake.headers["Authorization"] == "Basic YWRtaW46cHc="


# ---------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.skip("openssl is not on PATH to make a test certificate (apt-get install openssl)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.fixture
def tls_fake(certificate):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server = FakeServer(context)
    server.answer(200, {"status": "success", "data": {"resultType": "scalar", "result": [1, "42"]}})
    yield server
    server.stop()


async def test_tls_untrusted_then_ca_file_then_insecure(tls_fake, certificate):
    async with PrometheusClient(tls_fake.url) as client:
        with pytest.raises(PrometheusUnreachable) as error:
            await client.query("x")
    assert "not trusted" in str(error.value) and "--prometheus-ca-file" in str(error.value)
    async with PrometheusClient(PrometheusConfig(tls_fake.url, ca_file=certificate[0])) as client:
        assert (await client.query("x")).scalar() == 42
    async with PrometheusClient(PrometheusConfig(tls_fake.url, insecure_skip_verify=True)) as client:
        assert (await client.query("x")).scalar() == 42


# ---------------------------------------------------------------------------- options


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_prometheus_arguments(parser)
    return parser.parse_args(argv)


def test_options_from_flags_env_and_files(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    assert prometheus_from_args(parse([])) is None
    monkeypatch.setenv("PROMETHEUS_URL", "http://prom.example:9090/prefix/")
    token = tmp_path / "token"
    token.write_text("abc\n")
    config = prometheus_config_from_args(
        parse(["--prometheus-token-file", str(token), "--prometheus-header", "X-Scope-OrgID: t1", "--prometheus-timeout", "3"])
    )
    assert config.url == "http://prom.example:9090/prefix"
    assert config.bearer_token == "abc" and dict(config.headers) == {"X-Scope-OrgID": "t1"} and config.timeout_s == 3


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--prometheus", "prom:9090"], "must start with http://"),
        (["--prometheus", "http://p", "--prometheus-header", "novalue"], "must look like 'Name: value'"),
        (["--prometheus", "http://p", "--prometheus-ca-file", "/nonexistent/ca.pem"], "does not exist"),
        (["--prometheus", "http://p", "--prometheus-token-file", "/nonexistent/token"], "cannot read"),
        (["--prometheus", "http://p", "--prometheus-token", "t", "--prometheus-user", "u"], "not both"),
        (["--prometheus", "http://p", "--prometheus-timeout", "0"], "must be positive"),
    ],
)
def test_unusable_options_give_one_line_errors(argv, fragment):
    with pytest.raises(PrometheusConfigError) as error:
        prometheus_config_from_args(parse(argv))
    assert fragment in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--prometheus-header", "novalue"], "must look like 'Name: value'"),
        (["--prometheus-timeout", "-1"], "must be positive"),
        (["--prometheus-timeout", "nan"], "must be positive"),
    ],
)
def test_unusable_options_are_refused_even_without_a_url(monkeypatch, argv, fragment):
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    with pytest.raises(PrometheusConfigError) as error:
        prometheus_config_from_args(parse(argv))
    assert fragment in str(error.value)
