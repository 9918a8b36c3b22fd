"""A seeded demo desk: books, instruments, daily marks, FX rates and the trades of every window."""

import functools
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from desk_pipeline.domain.errors import InvalidRangeError
from desk_pipeline.domain.schema import (
    BOOK_DTYPES,
    FX_DTYPES,
    INSTRUMENT_DTYPES,
    PRICE_DTYPES,
    STATUSES,
    TRADE_DTYPES,
    conform,
    empty_frame,
)

_T = TypeVar("_T")
# Separate random streams, so that changing how trades are drawn never moves a price, and so on.
_BOOKS, _INSTRUMENTS, _TRADES, _PRICES, _FX = range(5)
_HOUR_NS = 3_600 * 10**9
_DAY_NS = 24 * _HOUR_NS
_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal(): seeds must be non-negative
_MATURITY_ORIGIN = pd.Timestamp("2026-01-01")

# Book type, holding period (CRE22.56-22.59: 5 days repo-style, 10 days securities lending), buy
# probability. A small buy bias keeps each book's inventory mostly long (financing books hold
# collateral) while still letting positions cross zero now and then.
_BOOK_TYPES = (("REPO", 5, 0.58), ("REVREPO", 5, 0.62), ("SECLEND", 10, 0.6), ("MATCHED", 5, 0.52))
_BOOK_CURRENCIES = ("EUR", "USD", "GBP")
_CYCLE_AMPLITUDE = 0.2  # swing of the buy probability over a holding's build-up/run-down cycle

# Asset class, issuer type, share of instruments, affinity of repo-style and of lending books,
# issuer name suffix. Agencies are public-sector entities treated as sovereigns (CRE22.49).
_CLASSES = (
    ("government_bond", "sovereign", 0.26, 4.0, 1.0, ""),
    ("agency_bond", "sovereign", 0.08, 2.0, 0.5, ""),
    ("corporate_bond", "other", 0.24, 1.0, 0.5, "Holdings"),
    ("covered_bond", "other", 0.10, 2.0, 0.3, "Bank"),
    ("securitisation", "securitisation", 0.02, 0.5, 0.1, "Mortgage Funding"),
    ("equity_main_index", "other", 0.18, 0.3, 4.0, "Industries"),
    ("equity_other", "other", 0.12, 0.1, 2.0, "Technologies"),
)
_N_BOND_CLASSES = 5
_CURRENCIES = ("EUR", "USD", "GBP", "JPY")
_CURRENCY_SHARES = (0.45, 0.30, 0.15, 0.10)
_USD_PER_UNIT = np.array([1.08, 1.0, 1.27, 1 / 150])
_EQUITY_COUNTRY = {"EUR": "DE", "USD": "US", "GBP": "GB", "JPY": "JP"}
# Issuer, ISIN country, rating, currency: a public issuer fixes its bond's currency.
_SOVEREIGNS = (
    ("Federal Republic of Germany", "DE", "AAA", "EUR"),
    ("French Republic", "FR", "AA-", "EUR"),
    ("Republic of Italy", "IT", "BBB+", "EUR"),
    ("Kingdom of Spain", "ES", "A", "EUR"),
    ("United States Treasury", "US", "AA+", "USD"),
    ("Republic of Turkey", "US", "BB", "USD"),
    ("United Kingdom Gilt", "GB", "AA", "GBP"),
    ("Japan", "JP", "A+", "JPY"),
)
_AGENCIES = (
    ("KfW", "DE", "AAA", "EUR"),
    ("CADES", "FR", "AA-", "EUR"),
    ("Federal Home Loan Banks", "US", "AA+", "USD"),
    ("Japan Finance Organization for Municipalities", "JP", "A+", "JPY"),
)
_STEMS = tuple("Aldmere Brightwater Calder Dunmore Elstree Fairhaven Glenrock Kestrel".split())
_RATINGS = {  # rating choices and weights per class; None = unrated
    2: (("AA+", "AA", "AA-", "A+", "A", "A-", "BBB+", "BBB", "BBB-", "BB+", "BB", "BB-", None),
        (2, 3, 4, 6, 8, 8, 9, 9, 7, 4, 3, 2, 2)),
    3: (("AAA", "AA+"), (4, 1)),
    4: (("AAA", "AA", "A"), (6, 3, 1)),
}  # fmt: skip
# Bonds: quantity is nominal, traded in blocks of 100,000 (10m for JPY) up to 50 blocks, price is
# clean price / 100. Equities: shares in lots of 100 up to 50,000 shares, price 5..500 per share.
_BOND_LOT, _BOND_MAX_LOTS, _EQUITY_LOT, _EQUITY_MAX_LOTS = 100_000.0, 50, 100.0, 500


def _isin(body: str) -> str:
    """``body`` (11 characters) followed by its ISIN check digit (Luhn over base-36 digits)."""
    digits = "".join(str(int(c, 36)) for c in body)
    total = sum(sum(divmod(int(d) * (2 - i % 2), 10)) for i, d in enumerate(reversed(digits)))
    return f"{body}{(10 - total % 10) % 10}"


def _pick(options: tuple[_T, ...], weights: tuple[float, ...], u: float) -> _T:
    """The option that the uniform draw ``u`` selects with the given relative weights."""
    cumulative = np.cumsum(weights) / sum(weights)
    return options[min(int(np.searchsorted(cumulative, u, side="right")), len(options) - 1)]


def _describe(
    kind: int, u: np.ndarray, serial: int, maturity: pd.Timestamp, coupon: float
) -> tuple[str, str, str, str | None, str]:
    """instrument_id, name, issuer, rating and currency of one instrument of class ``kind``."""
    rating: str | None
    if kind < 2:  # a public issuer fixes country, rating and currency
        table = _SOVEREIGNS if kind == 0 else _AGENCIES
        issuer, country, rating, currency = table[int(u[0] * len(table))]
    else:
        issuer = f"{_STEMS[int(u[0] * len(_STEMS))]} {_CLASSES[kind][5]}"
        currency = _pick(_CURRENCIES, _CURRENCY_SHARES, u[1])
        rating = _pick(*_RATINGS.get(kind, ((None,), (1,))), u[2])
        country = _EQUITY_COUNTRY[currency] if kind >= _N_BOND_CLASSES else "XS"
    name = f"{issuer} ord" if kind >= _N_BOND_CLASSES else f"{issuer} {coupon:.3f} {maturity:%m/%y}"
    return _isin(f"{country}{kind}{serial:08d}"), name, issuer, rating, currency


def _trade_ids(prefix: str, seq: np.ndarray) -> np.ndarray:
    """``prefix`` + 7-digit ``seq`` (< 10**7) per row, built as code points: 2x f-strings' speed."""
    codes = np.empty((len(seq), len(prefix) + 7), dtype=np.uint32)
    codes[:, : len(prefix)] = [ord(c) for c in prefix]
    rest = seq.astype(np.uint32)
    for col in range(codes.shape[1] - 1, len(prefix) - 1, -1):
        rest, digit = np.divmod(rest, np.uint32(10))
        codes[:, col] = digit + ord("0")
    return codes.view(f"U{codes.shape[1]}").ravel().astype(object)


def _walk(seed: int, stream: int, n: int, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smooth and rough parts of ``n`` unit-variance paths at ``days`` (days since 1970-01-01).

    The smooth part is a sum of sinusoids with periods of 5..2,000 days and amplitudes growing as
    the square root of the period (a Brownian-like spectrum); the rough part is seeded per date.
    Both are closed-form in the date, so a mark never depends on the range it was asked in.
    """
    rng = np.random.default_rng([seed, stream])
    periods = np.exp(rng.uniform(np.log(5.0), np.log(2_000.0), (n, 8)))
    phases = rng.uniform(0.0, 2 * np.pi, (n, 8))
    amplitudes = np.sqrt(2 * periods / periods.sum(axis=1, keepdims=True))
    angle = 2 * np.pi * days[:, None, None] / periods + phases
    smooth = (amplitudes * np.sin(angle)).sum(axis=2)
    rough = [
        np.random.default_rng([seed, stream, d + _EPOCH_ORDINAL]).standard_normal(n) for d in days
    ]
    return smooth, np.array(rough).reshape(len(days), n)


def _weekdays(start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DatetimeIndex:
    """Weekdays of [start_date, end_date] as naive midnights; a reversed range is an error."""
    start, end = (pd.Timestamp(d).tz_localize(None).normalize() for d in (start_date, end_date))
    if end < start:
        raise InvalidRangeError(f"DeskSimulator: end_date {end:%Y-%m-%d} < start {start:%Y-%m-%d}")
    return pd.bdate_range(start, end).as_unit("ns")


def _utc_ns(ts: pd.Timestamp, name: str) -> int:
    """``ts`` as nanoseconds since the epoch; naive timestamps are refused rather than guessed."""
    if ts.tzinfo is None:
        raise InvalidRangeError(f"DeskSimulator.trades: {name} {ts} is naive; pass a UTC timestamp")
    return int(ts.tz_convert("UTC").as_unit("ns").value)


@dataclass(frozen=True)
class DeskSimulator:
    """Deterministic demo desk: the same parameters and window always give the same frames.

    Trades are drawn per UTC day from ``default_rng([seed, stream, day])`` and then cut to the
    requested window, so ``trades(a, c)`` equals ``trades(a, b)`` followed by ``trades(b, c)``
    for any ``b``. Amendments and cancels keep the original trade_time, so the demo never
    produces late trades.
    """

    seed: int = 7
    n_books: int = 20
    n_instruments: int = 2000
    trades_per_day: int = 3000
    instruments_per_book: int | None = None  # None: min(n_instruments, 300)

    def books(self) -> pd.DataFrame:
        """One row per book (BOOK_DTYPES), e.g. ``REPO-EUR-01`` or ``SECLEND-USD-02``."""
        return conform(self._books, BOOK_DTYPES)

    def instruments(self) -> pd.DataFrame:
        """One row per instrument (INSTRUMENT_DTYPES), identified by an ISIN-like id."""
        return conform(self._instruments, INSTRUMENT_DTYPES)

    def prices(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """One mark per instrument per weekday in [start_date, end_date] (PRICE_DTYPES).

        Bond prices are per unit of nominal (clean price / 100, around 1.0); equities per share.
        """
        dates = _weekdays(start_date, end_date)
        marks = self._marks(dates.to_numpy().astype("datetime64[D]").astype(np.int64))
        ids = self._instruments["instrument_id"].to_numpy()
        frame = pd.DataFrame(
            {
                "instrument_id": np.tile(ids, len(dates)),
                "price_date": dates.repeat(len(ids)),
                "price": marks.ravel(),
            }
        )
        return conform(frame, PRICE_DTYPES)

    def fx_rates(self, start_date: pd.Timestamp, end_date: pd.Timestamp) -> pd.DataFrame:
        """USD value of one EUR, USD (always 1.0), GBP and JPY per weekday (FX_DTYPES)."""
        dates = _weekdays(start_date, end_date)
        days = dates.to_numpy().astype("datetime64[D]").astype(np.int64)
        smooth, rough = _walk(self.seed, _FX, len(_CURRENCIES), days)
        is_usd = np.array([c == "USD" for c in _CURRENCIES])
        rates = _USD_PER_UNIT * np.exp(np.where(is_usd, 0.0, 0.04 * smooth + 0.002 * rough))
        frame = pd.DataFrame(
            {
                "currency": np.tile(np.array(_CURRENCIES, dtype=object), len(dates)),
                "rate_date": dates.repeat(len(_CURRENCIES)),
                "usd_per_unit": (rates * 1e8).round().ravel() / 1e8,
            }
        )
        return conform(frame, FX_DTYPES)

    def trades(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Every trade version with trade_time in [start, end) (TRADE_DTYPES, UTC).

        Rows are ordered by (trade_time, trade_id, version); an amendment or cancel follows its
        original at the same trade_time. Weekends are quiet.
        """
        start_ns, end_ns = _utc_ns(start, "start"), _utc_ns(end, "end")
        if end_ns < start_ns:
            raise InvalidRangeError(f"DeskSimulator.trades: end {end} is before start {start}")
        weekdays = [
            day  # 1970-01-01 was a Thursday: (day + 3) % 7 is 5 on Saturdays and 6 on Sundays
            for day in range(start_ns // _DAY_NS, -(-end_ns // _DAY_NS))
            if (day + 3) % 7 < 5
        ]
        if not weekdays:
            return empty_frame(TRADE_DTYPES)
        # Strings are built per day, after the cut: small temporaries, and only for rows returned.
        days = [self._day(day, start_ns, end_ns) for day in weekdays]
        columns = {key: np.concatenate([rows[key] for rows in days]) for key in TRADE_DTYPES}
        # Explicit dtypes: pandas would otherwise scan every object column to infer "str".
        series = {k: pd.Series(v, dtype=TRADE_DTYPES[k]) for k, v in columns.items()}
        return conform(pd.DataFrame(series, copy=False), TRADE_DTYPES)

    def _day(self, day: int, start_ns: int, end_ns: int) -> dict[str, np.ndarray]:
        """Trade columns of one weekday (days since 1970-01-01) cut to [start_ns, end_ns).

        The whole day is drawn from its own seed first, so the cut never changes a trade.
        """
        date = np.datetime64(day, "D").item()
        rng = np.random.default_rng([self.seed, _TRADES, day + _EPOCH_ORDINAL])
        ref, universe = self._instruments, self._universe
        n = int(rng.poisson(self.trades_per_day))
        # A bell-shaped intraday intensity: Beta(3.5, 4.5) over 06:00-20:00 UTC peaks late in the
        # London morning and puts about 95% of the day's trades between 07:00 and 18:00.
        offset = np.sort(rng.beta(3.5, 4.5, n) * 14 * _HOUR_NS).astype(np.int64) // 10**6 * 10**6
        times = day * _DAY_NS + 6 * _HOUR_NS + offset
        book = rng.choice(self.n_books, n, p=self._books["weight"].to_numpy())
        # Squared uniforms favour the head of each book's universe: a few issues trade every day.
        slot = (rng.random(n) ** 2 * universe.shape[1]).astype(np.int64)
        instrument = universe[book, slot]
        # Each holding alternates between building up and running down over weeks around the
        # book's long bias: inventories stay mostly long, yet some cross zero or close.
        period, phase = self._cycles
        cycle = np.sin(2 * np.pi * day / period[book, slot] + phase[book, slot])
        buy = self._books["buy_probability"].to_numpy()[book] + _CYCLE_AMPLITUDE * cycle
        side = np.where(rng.random(n) < buy, 1.0, -1.0)
        max_lots = ref["max_lots"].to_numpy()[instrument]
        lots = np.floor(np.exp(rng.random(n) * np.log(max_lots + 1.0)))  # many small, few blocks
        spread = ref["spread"].to_numpy()[instrument]
        price = self._marks(np.array([day]))[0, instrument] * (1 + spread * rng.standard_normal(n))
        life, amend_quantity, delta = rng.random(n), rng.random(n) < 0.5, rng.integers(1, 4, n)
        # ~2% amended (0.4% of them later cancelled) and another ~0.6% cancelled outright.
        amended = life < 0.02
        cancelled = (life < 0.004) | ((life >= 0.02) & (life < 0.026))
        versions = 1 + amended.astype(np.int64) + cancelled
        trade = np.repeat(np.arange(n), versions)
        version = np.arange(len(trade)) - np.repeat(np.cumsum(versions) - versions, versions) + 1
        last = version == versions[trade]
        status = np.where(version == 1, 0, np.where(cancelled[trade] & last, 2, 1))
        # A cancel repeats the fields of the version it cancels, amended or not.
        changed = (version > 1) & amended[trade]
        new_lots = np.where(lots > delta, lots - delta, lots + delta)
        lots_row = np.where(changed & amend_quantity[trade], new_lots[trade], lots[trade])
        tick = 1 + spread * (delta - 2.5)  # a corrected fill a few ticks away, never unchanged
        price_row = np.where(changed & ~amend_quantity[trade], (price * tick)[trade], price[trade])
        low, high = np.searchsorted(times[trade], [start_ns, end_ns])
        trade, lots_row, price_row = trade[low:high], lots_row[low:high], price_row[low:high]
        scale = ref["price_scale"].to_numpy()[instrument[trade]]
        return {
            "trade_id": _trade_ids(f"SIM-{date:%Y%m%d}-", trade + 1),
            "version": version[low:high],
            "status": np.array(STATUSES, dtype=object)[status[low:high]],
            "book_id": self._books["book_id"].to_numpy()[book[trade]],
            "instrument_id": ref["instrument_id"].to_numpy()[instrument[trade]],
            "quantity": side[trade] * lots_row * ref["lot_size"].to_numpy()[instrument[trade]],
            "price": np.round(price_row * scale) / scale,
            "trade_time": times[trade].astype("datetime64[ns]"),
        }

    def _marks(self, days: np.ndarray) -> np.ndarray:
        """Marks of every instrument (columns) on each of ``days`` (rows, days since epoch)."""
        ref = self._instruments
        smooth, rough = _walk(self.seed, _PRICES, len(ref), days)
        drift = ref["volatility"].to_numpy() * smooth + ref["noise"].to_numpy() * rough
        scale = ref["price_scale"].to_numpy()
        return np.round(ref["base_price"].to_numpy() * np.exp(drift) * scale) / scale

    @functools.cached_property
    def _books(self) -> pd.DataFrame:
        """Books with their trading weight and buy probability."""
        index = np.arange(self.n_books)
        kinds = [_BOOK_TYPES[i % len(_BOOK_TYPES)] for i in index]
        currencies = [
            _BOOK_CURRENCIES[i // len(_BOOK_TYPES) % len(_BOOK_CURRENCIES)] for i in index
        ]
        number = index // (len(_BOOK_TYPES) * len(_BOOK_CURRENCIES)) + 1
        weight = np.random.default_rng([self.seed, _BOOKS]).uniform(0.5, 2.0, self.n_books)
        return pd.DataFrame(
            {
                "book_id": [
                    f"{k[0]}-{c}-{n:02d}" for k, c, n in zip(kinds, currencies, number, strict=True)
                ],
                "base_currency": currencies,
                "holding_period_days": [k[1] for k in kinds],
                "buy_probability": [k[2] for k in kinds],
                "lending": [k[0] == "SECLEND" for k in kinds],
                "weight": weight / weight.sum(),
            }
        )

    @functools.cached_property
    def _universe(self) -> np.ndarray:
        """Instrument positions each book trades (rows), the most active first."""
        rng = np.random.default_rng([self.seed, _BOOKS, 1])
        per_book = 300 if self.instruments_per_book is None else self.instruments_per_book
        size = min(self.n_instruments, per_book)
        kind = self._instruments["class_index"].to_numpy()
        affinity = np.array([[c[3] for c in _CLASSES], [c[4] for c in _CLASSES]])[:, kind]
        weights = affinity / affinity.sum(axis=1, keepdims=True)
        lending = self._books["lending"].to_numpy()
        return np.array(
            [
                rng.choice(self.n_instruments, size, replace=False, p=weights[int(lend)])
                for lend in lending
            ]
        )

    @functools.cached_property
    def _cycles(self) -> tuple[np.ndarray, np.ndarray]:
        """Period (20..120 days) and phase of the build-up/run-down cycle of each holding."""
        rng = np.random.default_rng([self.seed, _BOOKS, 2])
        shape = self._universe.shape
        return rng.uniform(20.0, 120.0, shape), rng.uniform(0.0, 2 * np.pi, shape)

    @functools.cached_property
    def _instruments(self) -> pd.DataFrame:
        """Instruments (INSTRUMENT_DTYPES) plus the parameters of their marks and trade sizes."""
        rng = np.random.default_rng([self.seed, _INSTRUMENTS])
        n = self.n_instruments
        kind = rng.choice(len(_CLASSES), n, p=[c[2] for c in _CLASSES])
        uniforms, serial = rng.random((n, 3)), rng.choice(10**8, n, replace=False)
        # A few bonds mature within 2026, so some collateral has matured by late 2026.
        years = 0.2 + 29.8 * rng.random(n) ** 1.3
        maturity = (_MATURITY_ORIGIN + pd.to_timedelta(years * 365.25, unit="D")).floor("D")
        coupon = np.round(rng.uniform(0.0, 6.0, n) * 8) / 8
        equity = kind >= _N_BOND_CLASSES
        described = zip(kind.tolist(), uniforms, serial.tolist(), maturity, coupon, strict=True)
        frame = pd.DataFrame(
            [_describe(*row) for row in described],
            columns=["instrument_id", "name", "issuer", "rating", "currency"],
        )
        lot = np.where(frame["currency"].to_numpy() == "JPY", 100 * _BOND_LOT, _BOND_LOT)
        equity_price = np.exp(rng.uniform(np.log(5.0), np.log(500.0), n))
        return frame.assign(
            asset_class=[_CLASSES[k][0] for k in kind],
            issuer_type=[_CLASSES[k][1] for k in kind],
            maturity_date=maturity.where(~equity),  # NaT (missing) for equities: no maturity
            class_index=kind,
            base_price=np.where(equity, equity_price, rng.uniform(0.94, 1.05, n)),
            volatility=np.where(equity, 0.25, 0.015),
            noise=np.where(equity, 0.012, 0.0008),
            spread=np.where(equity, 0.001, 0.0002),
            price_scale=np.where(equity, 1e4, 1e6),
            lot_size=np.where(equity, _EQUITY_LOT, lot),
            max_lots=np.where(equity, _EQUITY_MAX_LOTS, _BOND_MAX_LOTS),
        )
