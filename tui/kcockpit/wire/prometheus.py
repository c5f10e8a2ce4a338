"""Async client for the Prometheus HTTP API (Prometheus, Thanos, Mimir, VictoriaMetrics).

Everything that can go wrong on the way (refused connection, timeout, TLS, a proxy's HTML
page, a path prefix missing from the URL, bad PromQL) becomes a `PrometheusError`
subclass whose message is one line naming the URL and, for query errors, the PromQL, so
the UI can show it in a status line and carry on.
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

DEFAULT_TIMEOUT_S = 10.0


# ---------------------------------------------------------------------------- errors


class PrometheusError(Exception):
    """Base of every error this client raises; str() is a one-line message."""


class PrometheusConfigError(PrometheusError):
    """The options given for the connection are unusable (missing CA file, bad header...)."""


class PrometheusUnreachable(PrometheusError):
    """Connection refused, unknown host, TLS handshake failure: nothing answered."""


class PrometheusTimeout(PrometheusError):
    """The client gave up waiting, or the server reported its own query timeout (503)."""


class PrometheusAuthError(PrometheusError):
    """401 or 403: credentials missing, wrong or not allowed."""


class PrometheusNotFound(PrometheusError):
    """A plain 404: the URL or its path prefix is not a Prometheus API."""


class PrometheusBadQuery(PrometheusError):
    """400 bad_data: the PromQL or a parameter was rejected."""


class PrometheusExecutionError(PrometheusError):
    """422 execution: the query parsed but failed while running."""


class PrometheusProtocolError(PrometheusError):
    """The server answered something that is not the Prometheus API's JSON."""


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Sample:
    """One element of an instant vector."""

    labels: dict[str, str]
    timestamp: float
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    """One element of a range matrix: labels and (timestamp, value) points, oldest first."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A decoded query answer. `samples` holds vector and scalar results (a scalar is one
    sample without labels), `series` holds matrix results, `text` holds string results."""

    query: str
    result_type: str
    samples: list[Sample] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    text: str | None = None
    warnings: list[str] = field(default_factory=list)

    def scalar(self) -> float | None:
        """The single value of a scalar or one-element vector; None when empty."""
        if not self.samples:
            return None
        if len(self.samples) > 1:
            raise PrometheusProtocolError(
                f"expected one value for {self.query!r}, got {len(self.samples)} series"
            )
        return self.samples[0].value


@dataclass(frozen=True, slots=True)
class BuildInfo:
    version: str
    revision: str
    go_version: str


def parse_value(text: Any) -> float:
    """A sample value as Prometheus sends it: a string, which may be NaN, +Inf or -Inf."""
    if not isinstance(text, str):
        raise ValueError(f"sample value {text!r} is not a string")
    return float(text)  # float() accepts "NaN", "+Inf", "-Inf" exactly as Prometheus writes them


def format_value(value: float) -> str:
    """The inverse of parse_value, for messages and OpenMetrics text."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def _parse_result(query: str, data: Any, warnings: list[str]) -> QueryResult:
    try:
        result_type = data["resultType"]
        result = data["result"]
        if result_type == "vector":
            samples = [
                Sample(dict(item.get("metric", {})), float(item["value"][0]), parse_value(item["value"][1]))
                for item in result
            ]
            return QueryResult(query, result_type, samples=samples, warnings=warnings)
        if result_type == "matrix":
            series = [
                Series(dict(item.get("metric", {})), [(float(t), parse_value(v)) for t, v in item["values"]])
                for item in result
            ]
            return QueryResult(query, result_type, series=series, warnings=warnings)
        if result_type == "scalar":
            sample = Sample({}, float(result[0]), parse_value(result[1]))
            return QueryResult(query, result_type, samples=[sample], warnings=warnings)
        if result_type == "string":
            return QueryResult(query, result_type, text=str(result[1]), warnings=warnings)
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise PrometheusProtocolError(f"malformed query result for {query!r}: {error!r}") from None
    raise PrometheusProtocolError(f"unknown resultType {result_type!r} for {query!r}")


# ---------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class PrometheusConfig:
    url: str
    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        url = self.url.strip()
        if not url.startswith(("http://", "https://")):
            raise PrometheusConfigError(
                f"Prometheus URL {self.url!r} must start with http:// or https:// (e.g. http://localhost:9090)"
            )
        object.__setattr__(self, "url", url.rstrip("/"))
        if self.ca_file and not os.path.isfile(self.ca_file):
            raise PrometheusConfigError(f"Prometheus CA file {self.ca_file!r} does not exist")
        if self.bearer_token and self.username:
            raise PrometheusConfigError("give either a Prometheus bearer token or a user name, not both")
        check_timeout(self.timeout_s)


def check_timeout(timeout_s: float) -> None:
    if not 0 < timeout_s < float("inf"):  # also refuses nan
        raise PrometheusConfigError(f"Prometheus timeout must be positive (seconds), got {timeout_s}")


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' (or 'Name=value') as given on the command line."""
    for separator in (":", "="):
        name, found, value = text.partition(separator)
        if found and name.strip():
            return name.strip(), value.strip()
    raise PrometheusConfigError(f"header {text!r} must look like 'Name: value' (e.g. 'X-Scope-OrgID: tenant1')")


# ---------------------------------------------------------------------------- client


class PrometheusClient:
    """Async Prometheus API client. Use as `async with PrometheusClient(config) as client`
    or call `aclose()`; every method raises only PrometheusError subclasses."""

    def __init__(self, config: PrometheusConfig | str) -> None:
        self.config = PrometheusConfig(config) if isinstance(config, str) else config
        self.url = self.config.url
        import httpx  # here: the command line's checks import this module before the first frame

        self._http = httpx.AsyncClient(
            headers=self._headers(),
            auth=(self.config.username, self.config.password or "") if self.config.username else None,
            verify=self._verify(),
            timeout=self.config.timeout_s,
            follow_redirects=True,
            trust_env=False,  # a proxy from the environment would turn loopback URLs into proxy errors
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "kcockpit"}
        if self.config.bearer_token:
            headers["Authorization"] = f"Bearer {self.config.bearer_token}"
        headers.update(self.config.headers)
        return headers

    def _verify(self) -> ssl.SSLContext | bool:
        if self.config.insecure_skip_verify:
            return False
        if self.config.ca_file:
            try:
                return ssl.create_default_context(cafile=self.config.ca_file)
            except (OSError, ssl.SSLError) as error:
                raise PrometheusConfigError(
                    f"Prometheus CA file {self.config.ca_file!r} is not a usable PEM bundle: {error}"
                ) from None
        return True

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --------------------------------------------------------------- transport

    async def _request(
        self, method: str, path: str, *, params: Any = None, data: Any = None, query: str | None = None
    ) -> httpx.Response:
        import httpx

        url = self.url + path
        try:
            return await self._http.request(method, url, params=params, data=data)
        except httpx.TimeoutException:
            raise PrometheusTimeout(
                f"Prometheus at {self.url} did not answer within {self.config.timeout_s:g} s"
                + (f" (query {query!r})" if query else "")
            ) from None
        except httpx.ConnectError as error:
            raise PrometheusUnreachable(f"cannot connect to Prometheus at {self.url}: {_reason(error)}") from None
        except httpx.HTTPError as error:
            raise PrometheusUnreachable(f"request to Prometheus at {self.url} failed: {_reason(error)}") from None

    async def _api(self, path: str, params: Any, query: str | None = None, post: bool = False) -> dict:
        """Call an /api/v1 endpoint and return the decoded JSON body of a success."""
        if post:
            response = await self._request("POST", path, data=params, query=query)
            if response.status_code == 405:  # a read-only proxy in front that allows GET only
                response = await self._request("GET", path, params=params, query=query)
        else:
            response = await self._request("GET", path, params=params, query=query)
        body = _json_body(response)
        where = f"{self.url}{path}"
        if body is None:
            raise self._non_json_error(response, where)
        if response.status_code in (401, 403) and body.get("status") != "error":
            raise PrometheusAuthError(_auth_message(response.status_code, where))
        if body.get("status") == "success":
            return body
        error_type = body.get("errorType", "")
        message = _one_line(str(body.get("error", "")) or f"HTTP {response.status_code}")
        for_query = f" in {query!r}" if query else ""
        if response.status_code in (401, 403):
            raise PrometheusAuthError(_auth_message(response.status_code, where) + f": {message}")
        if error_type == "bad_data" or response.status_code == 400:
            raise PrometheusBadQuery(f"Prometheus rejected the query{for_query}: {message}")
        if error_type == "execution" or response.status_code == 422:
            raise PrometheusExecutionError(f"Prometheus failed to run the query{for_query}: {message}")
        if error_type == "timeout" or response.status_code == 503:
            raise PrometheusTimeout(f"Prometheus at {self.url} timed out running the query{for_query}: {message}")
        if response.status_code == 404:
            raise PrometheusNotFound(f"{where} answered 404 ({message}): wrong URL or path prefix?")
        raise PrometheusProtocolError(
            f"Prometheus at {self.url} answered HTTP {response.status_code} {error_type or 'error'}{for_query}: {message}"
        )

    def _non_json_error(self, response: httpx.Response, where: str) -> PrometheusError:
        status = response.status_code
        if status in (401, 403):
            return PrometheusAuthError(_auth_message(status, where))
        if status == 404:
            return PrometheusNotFound(f"{where} answered 404 (not a Prometheus API): wrong URL or path prefix?")
        if status == 503:
            return PrometheusTimeout(f"Prometheus at {self.url} is unavailable (HTTP 503)")
        snippet = _one_line(response.text)[:80]
        kind = response.headers.get("content-type", "no content type")
        return PrometheusProtocolError(
            f"{where} answered HTTP {status} with {kind}, not Prometheus JSON"
            + (f": {snippet!r}" if snippet else "")
        )

    # --------------------------------------------------------------- API

    async def query(self, promql: str, time: float | None = None, timeout_s: float | None = None) -> QueryResult:
        """Instant query at `time` (unix seconds; default: the server's now)."""
        params = {"query": promql}
        if time is not None:
            params["time"] = format_value(float(time))
        if timeout_s is not None:
            params["timeout"] = _duration(timeout_s)
        body = await self._api("/api/v1/query", params, query=promql, post=True)
        return _parse_result(promql, body.get("data"), list(body.get("warnings") or []))

    async def query_range(
        self, promql: str, start: float, end: float, step_s: float, timeout_s: float | None = None
    ) -> QueryResult:
        """Range query from `start` to `end` (unix seconds) every `step_s` seconds."""
        params = {"query": promql, "start": format_value(start), "end": format_value(end), "step": f"{step_s:g}"}
        if timeout_s is not None:
            params["timeout"] = _duration(timeout_s)
        body = await self._api("/api/v1/query_range", params, query=promql, post=True)
        return _parse_result(promql, body.get("data"), list(body.get("warnings") or []))

    async def label_names(self, match: list[str] | None = None, start: float | None = None) -> list[str]:
        """Label names present on the series selected by `match` (all series when None)."""
        params: list[tuple[str, str]] = [("match[]", m) for m in match or []]
        if start is not None:
            params.append(("start", format_value(start)))
        body = await self._api("/api/v1/labels", params)
        return _string_list(body, "/api/v1/labels")

    async def label_values(self, label: str, match: list[str] | None = None, start: float | None = None) -> list[str]:
        params: list[tuple[str, str]] = [("match[]", m) for m in match or []]
        if start is not None:
            params.append(("start", format_value(start)))
        body = await self._api(f"/api/v1/label/{label}/values", params)
        return _string_list(body, f"/api/v1/label/{label}/values")

    async def series(self, match: list[str], start: float | None = None) -> list[dict[str, str]]:
        params: list[tuple[str, str]] = [("match[]", m) for m in match]
        if start is not None:
            params.append(("start", format_value(start)))
        body = await self._api("/api/v1/series", params, query=" or ".join(match))
        data = body.get("data")
        if not isinstance(data, list):
            raise PrometheusProtocolError(f"{self.url}/api/v1/series returned {type(data).__name__}, not a list")
        return [dict(item) for item in data]

    async def ready(self) -> bool:
        """True when /-/ready answers 200; False when it answers anything else (still starting).
        Unreachable servers raise PrometheusUnreachable."""
        response = await self._request("GET", "/-/ready")
        return response.status_code == 200

    async def buildinfo(self) -> BuildInfo:
        body = await self._api("/api/v1/status/buildinfo", None)
        data = body.get("data") or {}
        return BuildInfo(
            version=str(data.get("version", "")),
            revision=str(data.get("revision", "")),
            go_version=str(data.get("goVersion", "")),
        )


# ---------------------------------------------------------------------------- helpers


def _json_body(response: httpx.Response) -> dict | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _auth_message(status: int, where: str) -> str:
    if status == 401:
        return f"{where} answered 401 Unauthorized: give --prometheus-token or --prometheus-user/--prometheus-password"
    return f"{where} answered 403 Forbidden: the credentials are not allowed to read this API"


def _reason(error: Exception) -> str:
    """The innermost cause of an httpx error, which names what actually failed."""
    cause: BaseException = error
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({cause.verify_message}); give --prometheus-ca-file or --prometheus-insecure-skip-verify"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused (is Prometheus running there?)"
    text = _one_line(str(cause) or str(error) or type(cause).__name__)
    return text


def _duration(seconds: float) -> str:
    """A Prometheus duration; whole milliseconds, as "1e-06s" is not one."""
    return f"{max(1, round(seconds * 1000))}ms"


def _string_list(body: dict, where: str) -> list[str]:
    data = body.get("data")
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        raise PrometheusProtocolError(f"{where} did not return a list of strings")
    return list(data)
