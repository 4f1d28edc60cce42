"""Settings: ``dexscan/default.toml`` (shipped in the package) layered with a user file and the environment.

Every key is declared with its type and range, so a typo or a wrong value fails at start-up
with one line naming the key and the file, never deep inside a running scanner. The plugin sections
(``[strategies.<name>]``, ``[gates]``) are built from each plugin's ``Params`` model
(:mod:`dexscan.plugins`); the rest is declared here. Secrets come only from the environment (or a
local ``secrets.env`` that is never committed) and are masked whenever settings are shown.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, Field, SecretStr, ValidationError, create_model, field_validator

from dexscan.errors import ConfigError
from dexscan.params import SECTION_CONFIG, P
from dexscan.plugins import GATES, STRATEGIES

# The defaults travel with the package (package data), so a wheel, pipx or zip install has them too.
DEFAULT_CONFIG: Traversable = files("dexscan") / "default.toml"

ENV_TELEGRAM_TOKEN = "DEXSCAN_TELEGRAM_TOKEN"
ENV_BIRDEYE_KEY = "DEXSCAN_BIRDEYE_API_KEY"
ENV_JUPITER_KEY = "DEXSCAN_JUPITER_API_KEY"
ENV_RPC_URLS = "DEXSCAN_RPC_URLS"
ENV_DB = "DEXSCAN_DB"
ENV_DATA_DIR = "DEXSCAN_DATA_DIR"
ENV_SECRETS_FILE = "DEXSCAN_SECRETS_FILE"


def _url_with(schemes: tuple[str, ...]) -> Callable[[str], str]:
    """A check that a setting is a URL with one of ``schemes`` and a host (not a typo'd path)."""

    def check(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ValueError(f"{mask_url(value)!r} is not a {'/'.join(schemes)} URL, e.g. {schemes[-1]}://host")
        return value

    return check


HttpUrl = Annotated[str, AfterValidator(_url_with(("http", "https")))]
WsUrl = Annotated[str, AfterValidator(_url_with(("ws", "wss")))]


class _Section(BaseModel):
    model_config = SECTION_CONFIG


class AppSettings(_Section):
    db_path: str = ""
    log_file: str = ""
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    timezone: str = "Asia/Kolkata"
    reports_dir: str = "reports"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {v!r} (e.g. 'UTC', 'Asia/Kolkata')") from exc
        return v


class StoreSettings(_Section):
    """The SQLite file's use (:mod:`dexscan.store`)."""

    # a write that finds the file locked by another connection waits this long, then gives up
    # (dexscan.store.connection.LockWait.give_up_after_s); at most a week
    lock_wait_s: float = Field(1800.0, gt=0, le=7 * 86_400)


class HttpSettings(_Section):
    timeout_s: float = Field(15.0, gt=0, le=300)
    retries: int = Field(4, ge=0, le=20)
    backoff_base_s: float = Field(0.5, ge=0, le=60)
    backoff_max_s: float = Field(30.0, ge=0, le=600)
    max_retry_after_s: float = Field(120.0, ge=0, le=3600)
    breaker_failures: int = Field(5, ge=1, le=1000)
    breaker_cooldown_s: float = Field(30.0, ge=0, le=3600)
    user_agent: str = "dexscan/0.1"
    max_compressed_bytes: int = Field(16 << 20, ge=1024, le=1 << 30)
    max_body_bytes: int = Field(16 << 20, ge=1024, le=1 << 30)


class SourceSettings(_Section):
    """What every market-data source's table holds: the switch and the API's address (each source
    sets its own default URL). Each source adds its documented budget(s) and per-call caps."""

    enabled: bool = True
    base_url: HttpUrl


#: A provider's documented request budget per minute.
PerMinute = Annotated[float, Field(gt=0, le=100_000)]


def _per_call(api_max: int) -> Any:
    """Items per call (mints, ids, rows): 1 to the API's own maximum, which is also the default."""
    return Field(api_max, ge=1, le=api_max)


class JupiterSettings(SourceSettings):
    base_url: HttpUrl = "https://api.jup.ag"
    requests_per_minute: PerMinute = 30
    search_batch: int = _per_call(100)
    price_batch: int = _per_call(50)


class DexScreenerSettings(SourceSettings):
    base_url: HttpUrl = "https://api.dexscreener.com"
    ws_url: WsUrl = "wss://api.dexscreener.com"
    pairs_per_minute: PerMinute = 300
    profiles_per_minute: PerMinute = 60
    tokens_batch: int = _per_call(30)


class GeckoTerminalSettings(SourceSettings):
    base_url: HttpUrl = "https://api.geckoterminal.com/api/v2"
    requests_per_minute: PerMinute = 25
    ohlcv_page_limit: int = _per_call(1000)


class BirdeyeSettings(SourceSettings):
    base_url: HttpUrl = "https://public-api.birdeye.so"
    requests_per_second: float = Field(1, gt=0, le=10_000)


class SourcesSettings(_Section):
    jupiter: JupiterSettings = JupiterSettings()
    dexscreener: DexScreenerSettings = DexScreenerSettings()
    geckoterminal: GeckoTerminalSettings = GeckoTerminalSettings()
    birdeye: BirdeyeSettings = BirdeyeSettings()


class RpcSettings(_Section):
    endpoints: list[str] = Field(default_factory=lambda: ["https://api.mainnet-beta.solana.com"])
    requests_per_10s: float = Field(100, gt=0, le=1_000_000)
    method_requests_per_10s: float = Field(40, gt=0, le=1_000_000)
    timeout_s: float = Field(10.0, gt=0, le=120)
    max_slot_lag: int = Field(50, ge=0, le=1_000_000)
    max_slot_lead: int = Field(1000, ge=1, le=10_000_000)
    health_interval_s: float = Field(30.0, gt=0, le=3600)
    breaker_failures: int = Field(3, ge=1, le=1000)
    breaker_cooldown_s: float = Field(30.0, ge=0, le=3600)
    hedged_reads: bool = False
    batch_size: int = Field(100, ge=1, le=100)
    max_compressed_bytes: int = Field(16 << 20, ge=1024, le=1 << 30)
    max_body_bytes: int = Field(16 << 20, ge=1024, le=1 << 30)

    @field_validator("endpoints")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        for url in v:
            if urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"RPC endpoint {mask_url(url)!r} must start with http:// or https://")
        return v


JupiterCategory = Literal["toptrending", "toporganicscore", "toptraded"]
_ALL_CATEGORIES: tuple[JupiterCategory, ...] = ("toptrending", "toporganicscore", "toptraded")
HistoryTimeframe = Literal["5m", "1h", "4h"]
_ALL_HISTORY_TFS: tuple[HistoryTimeframe, ...] = ("5m", "1h", "4h")


class UniverseSettings(_Section):
    discovery_interval_s: float = Field(600, gt=0, le=86_400)
    jupiter_categories: list[JupiterCategory] = Field(
        default_factory=lambda: list(_ALL_CATEGORIES)
    )
    jupiter_interval: Literal["5m", "1h", "6h", "24h"] = "1h"
    jupiter_limit: int = Field(100, ge=1, le=100)
    jupiter_recent: bool = True
    dexscreener_profiles: bool = True
    dexscreener_boosts: bool = True
    exit_after_s: float = Field(3600, ge=0, le=7 * 86_400)
    recheck_failed_after_s: float = Field(1800, ge=0, le=7 * 86_400)
    max_tokens: int = Field(5000, ge=1, le=100_000)
    watch_round_interval_s: float = Field(10.0, ge=0, le=3600)


class _GateSection(_Section):
    """``[gates]``: one flat table holding every gate's ``Params`` fields (built below from
    :data:`dexscan.plugins.GATES`)."""

    def params_for(self, model: type[P]) -> P:
        """The parameters of the gate whose ``Params`` is ``model``, read from this table."""
        return model.model_validate({key: getattr(self, key) for key in model.model_fields})

    def gate_enabled(self, name: str) -> bool:
        gate = GATES[name]
        return gate.enabled(self.params_for(gate.Params))

    @property
    def top10_gate_enabled(self) -> bool:
        return self.gate_enabled("top10_holders")


class _StrategiesSection(_Section):
    """``[strategies]``: which strategies run, and one ``[strategies.<name>]`` table per strategy
    (its ``Params``; built below from :data:`dexscan.plugins.STRATEGIES`)."""

    enabled: list[str] = Field(default_factory=lambda: list(STRATEGIES))

    def params_for(self, model: type[P]) -> P:
        """The ``[strategies.<name>]`` table of the strategy whose ``Params`` is ``model``."""
        for name, strategy in STRATEGIES.items():
            value = getattr(self, name)
            if strategy.Params is model and isinstance(value, model):
                return value
        raise LookupError(f"no registered strategy has the parameters {model.__qualname__}")


def _gate_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for gate in GATES.values():
        for key, info in gate.Params.model_fields.items():
            if key in fields:
                raise ValueError(f"[gates] key {key!r} is declared by two gates")
            fields[key] = (info.annotation, info)
    return fields


if TYPE_CHECKING:  # the fields come from the plugins' Params models: read them through params_for
    GateSettings = _GateSection
    StrategiesSettings = _StrategiesSection
else:
    GateSettings = create_model("GateSettings", __base__=_GateSection, __module__=__name__, **_gate_fields())
    StrategiesSettings = create_model(
        "StrategiesSettings", __base__=_StrategiesSection, __module__=__name__,
        **{name: (strategy.Params, strategy.Params()) for name, strategy in STRATEGIES.items()})

#: Tables that moved, old -> new. A user's file with an old table is read as the new one, with a
#: one-line notice (the new table's keys win where a file has both).
MOVED_TABLES: dict[tuple[str, str], tuple[str, str]] = {
    ("detector", "ignition"): ("strategies", "ignition"),
    ("detector", "confirmation"): ("strategies", "confirmation"),
}


class LadderSettings(_Section):
    atr_period: int = Field(14, ge=1, le=500)
    sl_mode: Literal["atr", "structural"] = "atr"
    sl_atr_mult: float = Field(1.5, gt=0, le=100)
    structural_atr_mult: float = Field(0.5, ge=0, le=100)
    sl_floor_frac: float = Field(0.5, gt=0, lt=1)
    tp_r: list[float] = Field(default_factory=lambda: [1.5, 3.0, 5.0])
    breakeven_after_tp1: bool = True
    time_stop_h: float = Field(24.0, gt=0, le=24 * 365)

    @field_validator("tp_r")
    @classmethod
    def _three_increasing(cls, v: list[float]) -> list[float]:
        if len(v) != 3 or not (0 < v[0] < v[1] < v[2]):
            raise ValueError("needs three increasing positive R multiples, e.g. [1.5, 3.0, 5.0]")
        return v


class ScoringSettings(_Section):
    bias: float = -1.0
    min_calibration_samples: int = Field(500, ge=1, le=100_000_000)
    calibrator_path: str = ""
    min_block_samples: int = Field(50, ge=1, le=1_000_000)
    regularization_c: float = Field(1.0, gt=0, le=1e6)
    weights: dict[str, float] = Field(default_factory=dict)


class BackfillSettings(_Section):
    days: float = Field(30, gt=0, le=365)
    source: Literal["geckoterminal", "birdeye"] = "geckoterminal"
    timeframes: list[HistoryTimeframe] = Field(default_factory=lambda: list(_ALL_HISTORY_TFS))


class EvaluateSettings(_Section):
    folds: int = Field(5, ge=2, le=50)
    embargo_days: float = Field(1.0, ge=0, le=30)


class ScanSettings(_Section):
    hot_refresh_s: float = Field(15.0, gt=0, le=3600)
    cold_refresh_s: float = Field(120.0, gt=0, le=86_400)
    near_threshold_pct: float = Field(1.5, ge=0, le=100)
    queue_size: int = Field(1000, ge=1, le=1_000_000)
    dashboard_refresh_per_s: float = Field(2.0, gt=0, le=30)
    table_rows: int = Field(8, ge=1, le=100)
    move_window_s: float = Field(900.0, ge=0, le=14_400)


class TelegramSettings(_Section):
    base_url: HttpUrl = "https://api.telegram.org"
    chat_ids: list[Annotated[int, Field(ge=-(2**52), le=2**52)]] = Field(default_factory=list)  # ids fit 52 bits
    per_chat_per_s: float = Field(1.0, gt=0, le=30)
    global_per_s: float = Field(25.0, gt=0, le=30)
    digest_threshold: int = Field(5, ge=1, le=1000)
    digest_window_s: float = Field(120.0, gt=0, le=86_400)
    send_charts: bool = False
    max_watched_per_chat: int = Field(50, ge=1, le=10_000)


class ServiceSettings(_Section):
    max_ws_clients: int = Field(64, ge=1, le=10_000)


DiscoveryProgram = Literal["pumpfun", "pumpswap", "raydium_amm_v4"]


class StreamSettings(_Section):
    """The on-chain trade stream (Solana RPC WebSocket ``logsSubscribe``; dexscan.chain.stream)."""

    enabled: bool = True
    ws_endpoints: list[WsUrl] = Field(default_factory=list)  # empty: derived from the RPC endpoints
    max_subscriptions_per_connection: int = Field(100, ge=1, le=100_000)
    silence_timeout_s: float = Field(30.0, gt=0, le=3600)
    reconnect_base_s: float = Field(0.5, gt=0, le=600)
    reconnect_max_s: float = Field(30.0, gt=0, le=3600)
    queue_size: int = Field(10_000, ge=1, le=10_000_000)
    stats_refresh_s: float = Field(300.0, gt=0, le=86_400)
    sol_refresh_s: float = Field(60.0, gt=0, le=86_400)
    gap_fill_max_transactions: int = Field(200, ge=0, le=100_000)
    tape_retention_s: float = Field(3 * 86_400.0, ge=0, le=365 * 86_400)
    # discovery in real time: the DEX programs whose logs are subscribed for new pools and graduations
    discovery_programs: list[DiscoveryProgram] = Field(default_factory=lambda: list[DiscoveryProgram](["pumpfun"]))
    discovery_max_per_round: int = Field(20, ge=0, le=10_000)  # tokens gated at once per round; 0: none
    dlmm_transactions_per_minute: int = Field(60, ge=0, le=100_000)  # getTransaction of DLMM swaps; 0: polled
    # getTransaction of Raydium v4 Inits (their initialize2 names pool and mints); 0: only counted
    raydium_init_transactions_per_minute: int = Field(30, ge=0, le=100_000)


class Secrets(_Section):
    """Values that must never be printed. Filled from the environment only."""

    telegram_token: SecretStr | None = None
    birdeye_api_key: SecretStr | None = None
    jupiter_api_key: SecretStr | None = None
    rpc_urls: list[SecretStr] = Field(default_factory=list)


class Settings(_Section):
    app: AppSettings = AppSettings()
    store: StoreSettings = StoreSettings()
    http: HttpSettings = HttpSettings()
    sources: SourcesSettings = SourcesSettings()
    rpc: RpcSettings = RpcSettings()
    universe: UniverseSettings = UniverseSettings()
    gates: GateSettings = GateSettings()
    strategies: StrategiesSettings = StrategiesSettings()
    ladder: LadderSettings = LadderSettings()
    scoring: ScoringSettings = ScoringSettings()
    backfill: BackfillSettings = BackfillSettings()
    evaluate: EvaluateSettings = EvaluateSettings()
    scan: ScanSettings = ScanSettings()
    telegram: TelegramSettings = TelegramSettings()
    service: ServiceSettings = ServiceSettings()
    stream: StreamSettings = StreamSettings()
    secrets: Secrets = Secrets()

    # -- derived values --------------------------------------------------------------------

    def rpc_endpoints(self) -> list[str]:
        """Endpoints in priority order: secret URLs from the environment first, then the file's."""
        secret = [s.get_secret_value() for s in self.secrets.rpc_urls]
        return secret + [u for u in self.rpc.endpoints if u not in secret]

    def secret_values(self) -> list[str]:
        """Every secret string to mask in text shown or logged (see :func:`mask_text`): the keys, the
        token, and each RPC URL from the environment with the parts of it that carry its key."""
        s = self.secrets
        values = [v.get_secret_value() for v in (s.telegram_token, s.birdeye_api_key, s.jupiter_api_key)
                  if v is not None]
        for url in s.rpc_urls:
            values += url_secret_parts(url.get_secret_value())
        return values

    def data_dir(self) -> Path:
        return default_data_dir()

    def db_file(self) -> Path:
        env = os.environ.get(ENV_DB)
        if env:
            return Path(env).expanduser()
        if self.app.db_path:
            return Path(self.app.db_path).expanduser()
        return self.data_dir() / "dexscan.db"

    def log_path(self) -> Path:
        if self.app.log_file:
            return Path(self.app.log_file).expanduser()
        return self.db_file().with_suffix(".log")

    def calibrator_file(self) -> Path:
        if self.scoring.calibrator_path:
            return Path(self.scoring.calibrator_path).expanduser()
        return self.db_file().parent / "calibrator.json"

    def local_zone(self) -> ZoneInfo:
        return ZoneInfo(self.app.timezone)

    def with_overrides(self, overrides: dict[str, Any]) -> Settings:
        """A copy with dotted-key overrides applied and validated (used by the demo and tests)."""
        data = self.model_dump(mode="python")
        secrets = data.pop("secrets")
        for dotted, value in overrides.items():
            _set_dotted(data, dotted, value)
        data["secrets"] = self.secrets
        del secrets
        return _validate(data, sources={})


def default_data_dir() -> Path:
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "dexscan"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", str(Path.home()))) / "dexscan"
    return Path(os.environ.get("XDG_DATA_HOME", str(Path.home() / ".local" / "share"))) / "dexscan"


def mask_url(url: str) -> str:
    """Scheme and host only; a path or query (where providers put API keys) becomes ``***``."""
    parts = urlsplit(url)
    if not parts.netloc:
        return "***"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    hidden = bool(parts.query) or parts.path not in ("", "/") or bool(parts.username)
    return urlunsplit((parts.scheme, host, "/***" if hidden else parts.path, "", ""))


def url_origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port), the scheme's default port filled in: two URLs are on "the same host" (a
    redirect between them may carry a credential) exactly when these are equal."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


def mask_secret(value: str | None) -> str:
    return "***" if value else "(not set)"


#: A secret shorter than this is not masked as a plain string (it would mask ordinary words).
_MIN_SECRET_LEN = 4
#: Parts of a secret URL (path segments, query values) at least this long are masked on their own,
#: so an endpoint echoing only its key, or only its path, shows none of it.
_MIN_URL_PART_LEN = 8
#: A Telegram bot token (``123456:ABC-...``), also inside a Bot API URL (``/bot123456:ABC-.../getMe``).
_BOT_TOKEN_RE = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")
#: A credential as a query parameter (``?api-key=...``, ``&token=...``); the name is kept.
_KEY_PARAM_RE = re.compile(
    r"(?i)([?&;](?:api[-_]?key|apikey|key|access[-_]?token|token|auth|secret|password|signature)=)[^&#\s\"'<>]+")
#: A credential as a header echoed in text (``X-API-KEY: ...``, ``Authorization: Bearer ...``); the name is kept.
_KEY_HEADER_RE = re.compile(
    r"(?i)\b(x-api-key|authorization)([\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic)\s+)?[^\s\"',;&<>]+")
#: A password in a URL's user info (``https://user:password@host``).
_USERINFO_RE = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s@\"'<>]+@")


def url_secret_parts(url: str) -> list[str]:
    """A secret URL and the parts of it that may carry its key, for :func:`mask_text`."""
    parts = urlsplit(url)
    values = [url, url.rstrip("/")]
    values += [seg for seg in parts.path.split("/") if len(seg) >= _MIN_URL_PART_LEN]
    values += [v for _, v in parse_qsl(parts.query) if len(v) >= _MIN_URL_PART_LEN]
    if parts.password:
        values.append(parts.password)
    return values


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret replaced by ``***``: the given secret values (longest first), and
    whatever is shaped like one (a bot token, a credential query parameter or header, a URL password).

    The one masking rule for text that is shown or logged: log records and their tracebacks
    (:mod:`dexscan.logs`), ``dexscan doctor``'s table, provider and endpoint error texts, Telegram errors.
    """
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _BOT_TOKEN_RE.sub("***", text)
    text = _KEY_PARAM_RE.sub(r"\1***", text)
    text = _KEY_HEADER_RE.sub(r"\1\2***", text)
    return _USERINFO_RE.sub(r"\1***@", text)


def _read_toml(path: Path | Traversable) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"config file {path} is a directory; give a .toml file") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (bad byte at offset {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: nested too deeply") from exc
    except ValueError as exc:  # tomllib lets int() refuse a number of over 4,300 digits
        raise ConfigError(f"config file {path} is not valid TOML: a number is too long") from exc


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value


def _has_dotted(data: dict[str, Any], path: tuple[str | int, ...]) -> bool:
    node: Any = data
    for p in path:
        in_list = isinstance(node, list) and isinstance(p, int) and 0 <= p < len(node)
        if not (in_list or (isinstance(node, dict) and p in node)):
            return False
        node = node[p]
    return True


def _may_hold_key(loc: tuple[str | int, ...]) -> bool:
    """URLs can carry API keys: an error about one never repeats the value."""
    return any(str(p).endswith(("url", "endpoints")) for p in loc)


def _nearest_key(loc: tuple[str | int, ...]) -> str | None:
    """The known key at ``loc``'s level closest to its last part (``min_liquidty_usd`` ->
    ``min_liquidity_usd``), or None when none is close (difflib's ratio >= 0.6); ``secrets`` is
    never offered: it is read from the environment only."""
    model: Any = Settings
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        model = field.annotation
    known = [k for k in getattr(model, "model_fields", {}) if k != "secrets"]
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    return close[0] if close else None


def _validate(data: dict[str, Any], sources: dict[str, dict[str, Any]]) -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        key = ".".join(str(p) if str(p).isprintable() else repr(p) for p in loc)
        where = "settings"
        for name, content in sources.items():
            if _has_dotted(content, loc) or (err["type"] == "extra_forbidden" and _has_dotted(content, loc)):
                where = name
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            near = _nearest_key(loc)
            msg = (f"unknown key; did you mean {'.'.join(str(p) for p in (*loc[:-1], near))}?" if near
                   else "unknown key (check the spelling against dexscan/default.toml)")
        elif "input" in err and not isinstance(err["input"], dict) and not _may_hold_key(loc):
            got = repr(err["input"])
            msg = f"{msg} (got {got if len(got) <= 60 else got[:57] + '...'})"
        more = f" (+{len(exc.errors()) - 1} more problems)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{where}: {key}: {msg}{more}") from None


def _read_secrets_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        values[k.strip()] = v.strip().strip('"').strip("'")
    return values


def _secrets_from_env(env: dict[str, str]) -> dict[str, Any]:
    file_path = env.get(ENV_SECRETS_FILE) or str(default_data_dir() / "secrets.env")
    merged = {**_read_secrets_file(Path(file_path).expanduser()), **env}
    rpc = [u.strip() for u in merged.get(ENV_RPC_URLS, "").split(",") if u.strip()]
    return {
        "telegram_token": merged.get(ENV_TELEGRAM_TOKEN) or None,
        "birdeye_api_key": merged.get(ENV_BIRDEYE_KEY) or None,
        "jupiter_api_key": merged.get(ENV_JUPITER_KEY) or None,
        "rpc_urls": rpc,
    }


def _read_moved_tables(user: dict[str, Any], path: Path) -> dict[str, Any]:
    """``user`` with each old table of :data:`MOVED_TABLES` read as its new one (one notice line)."""
    moved: list[str] = []
    out = dict(user)
    for (old_parent, old_name), (new_parent, new_name) in MOVED_TABLES.items():
        parent, target = out.get(old_parent), out.get(new_parent, {})
        if not (isinstance(parent, dict) and old_name in parent and isinstance(target, dict)):
            continue
        parent = dict(parent)
        table, current = parent.pop(old_name), target.get(new_name)
        if isinstance(table, dict) and isinstance(current, dict):
            table = {**table, **current}
        elif current is not None:
            table = current
        out[new_parent] = {**target, new_name: table}
        if parent:
            out[old_parent] = parent
        else:
            del out[old_parent]
        moved.append(f"[{old_parent}.{old_name}] is now [{new_parent}.{new_name}]")
    if moved:
        print(f"dexscan: note: {path}: {'; '.join(moved)}: still read for now, please rename "
              f"{'it' if len(moved) == 1 else 'them'}", file=sys.stderr)
    return out


def load_settings(
    user_file: str | Path | None = None,
    env: dict[str, str] | None = None,
    default_file: Path | Traversable = DEFAULT_CONFIG,
) -> Settings:
    """Defaults, then the user's file, then secrets from the environment; validated once."""
    env = dict(os.environ) if env is None else env
    defaults = _read_toml(default_file)
    sources: dict[str, dict[str, Any]] = {str(default_file): defaults}
    data = defaults
    if user_file:
        user_path = Path(user_file).expanduser()
        user = _read_toml(user_path)
        if "secrets" in user:
            raise ConfigError(
                f"{user_path}: secrets: secrets are read from the environment only "
                f"({ENV_TELEGRAM_TOKEN}, {ENV_BIRDEYE_KEY}, {ENV_JUPITER_KEY}, {ENV_RPC_URLS})"
            )
        service = user.get("service")
        if isinstance(service, dict) and "listen" in service:
            raise ConfigError(
                f"{user_path}: service.listen: there is no such setting any more; the local API is started "
                "with `dexscan scan --serve 127.0.0.1:8787` (loopback addresses only): remove service.listen"
            )
        user = _read_moved_tables(user, user_path)
        sources[str(user_path)] = user
        data = _merge(defaults, user)
    data = {**data, "secrets": _secrets_from_env(env)}
    return _validate(data, sources)


def settings_for_display(settings: Settings) -> dict[str, Any]:
    """The settings as a plain dict with every secret masked (for ``dexscan config show``)."""
    data = settings.model_dump(mode="json", exclude={"secrets"})
    data["rpc"]["endpoints"] = [mask_url(u) for u in settings.rpc.endpoints]
    data["stream"]["ws_endpoints"] = [mask_url(u) for u in settings.stream.ws_endpoints]
    s = settings.secrets
    data["secrets"] = {
        ENV_TELEGRAM_TOKEN: mask_secret(s.telegram_token.get_secret_value() if s.telegram_token else None),
        ENV_BIRDEYE_KEY: mask_secret(s.birdeye_api_key.get_secret_value() if s.birdeye_api_key else None),
        ENV_JUPITER_KEY: mask_secret(s.jupiter_api_key.get_secret_value() if s.jupiter_api_key else None),
        ENV_RPC_URLS: [mask_url(u.get_secret_value()) for u in s.rpc_urls] or "(not set)",
    }
    return data
