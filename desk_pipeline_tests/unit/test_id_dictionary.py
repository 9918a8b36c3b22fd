"""The id dictionary's lookups: stored keys to categoricals of the ids, and ids to keys."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desk_pipeline.adapters.warehouse import IdDictionary, WarehouseError, trades_from_keys
from desk_pipeline.domain.schema import KEYED_TRADE_DTYPES
from desk_pipeline_tests.sizes import examples

IDS = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=6)


@st.composite
def dictionaries(draw) -> tuple[IdDictionary, dict[int, str]]:
    """A dictionary with distinct ids under distinct keys, with gaps."""
    ids = draw(st.lists(IDS, min_size=1, max_size=20, unique=True))
    keys = sorted(
        draw(st.lists(st.integers(1, 10_000), min_size=len(ids), max_size=len(ids), unique=True))
    )
    dictionary = IdDictionary.in_id_order(np.array(keys), pd.Index(ids, dtype=object))
    return dictionary, dict(zip(keys, ids, strict=True))


@settings(max_examples=examples(50), deadline=None)
@given(dictionaries(), st.data())
def test_stored_keys_read_back_as_their_ids_and_ids_map_back_to_their_keys(dictionary, data):
    dictionary, id_of = dictionary
    keys = data.draw(st.lists(st.sampled_from(sorted(id_of)), max_size=30))
    read = dictionary.categorical(np.array(keys, dtype=np.int64), where="test")
    assert list(read.astype(object)) == [id_of[k] for k in keys]
    # Categories are the whole dictionary in id order, so every read shares one category list.
    assert list(read.categories) == sorted(id_of.values())
    ids = pd.Series([id_of[k] for k in keys], dtype=object)
    assert dictionary.keys_of(ids, where="test").tolist() == keys
    # Values by id become an array by key; an id the dictionary lacks is ignored.
    values = pd.Series({id_of[k]: k * 10 for k in keys} | {"\x01unknown": 1}, dtype="int64")
    by_key = dictionary.by_key(values, missing=-7)
    assert len(by_key) == max(id_of) + 1
    assert by_key.tolist() == [k * 10 if k in keys else -7 for k in range(len(by_key))]


def test_a_key_missing_from_the_dictionary_is_an_error_not_a_missing_id():
    dictionary = IdDictionary(np.array([1, 3], dtype=np.int64), pd.Index(["A", "B"], dtype=object))
    for keys in ([2], [4], [0], [-1]):
        with pytest.raises(WarehouseError, match="not in the id dictionary"):
            dictionary.categorical(np.array(keys, dtype=np.int64), where="test")
    with pytest.raises(WarehouseError, match="have no key"):
        dictionary.keys_of(pd.Series(["A", "C"], dtype=object), where="test")


def test_stored_rows_become_trades_with_categorical_ids_and_utc_times():
    books = IdDictionary(np.array([2, 1], dtype=np.int64), pd.Index(["B1", "B2"], dtype=object))
    instruments = IdDictionary(np.array([7], dtype=np.int64), pd.Index(["XS1"], dtype=object))
    rows = pd.DataFrame(
        {
            "trade_id": ["T1", "T2"],
            "version": [1, 2],
            "status": ["NEW", "AMEND"],
            "book_key": [2, 1],
            "instrument_key": [7, 7],
            "quantity": [10.0, -5.0],
            "price": [1.5, 2.0],
            "trade_time_us": [0, 1_000_001],
        }
    )
    trades = trades_from_keys(rows, books, instruments)
    assert list(trades.columns) == list(KEYED_TRADE_DTYPES)
    assert trades.dtypes.astype(str).to_dict() == dict(KEYED_TRADE_DTYPES)
    assert trades["book_id"].tolist() == ["B1", "B2"]
    assert trades["instrument_id"].tolist() == ["XS1", "XS1"]
    assert trades["trade_time"].tolist() == [
        pd.Timestamp(0, tz="UTC"),
        pd.Timestamp("1970-01-01 00:00:01.000001", tz="UTC"),
    ]
    # No rows, as a read of an empty range gives them: the same columns, dtypes and categories.
    empty = trades_from_keys(pd.DataFrame(columns=rows.columns), books, instruments)
    assert empty.empty and empty.dtypes.astype(str).to_dict() == dict(KEYED_TRADE_DTYPES)
    assert list(empty["book_id"].cat.categories) == ["B1", "B2"]
