"""The seed application through the API: WatchPageStats counts the PageEvents of R2, and
ControlSupplier steers the supplier."""

import datetime

import pytest

import streamgate_client as sg
from support import PAGE_TOPIC, PATIENCE, read_until

UTC = datetime.timezone.utc


def counts(message):
    return {p.page: p for p in message.pages}


def test_watch_page_stats_shows_a_published_page(client, name):
    page = name("page")
    # A rolling count takes the window cut by the period's start pro rata, so one event
    # rounds to 0 once its window is more than half out of the period: with the default
    # period (one window) that can happen before the count has gone through the worker and
    # the hub. A minute-long period keeps the event's window whole for the test's patience.
    rolling = datetime.timedelta(seconds=PATIENCE)
    with client.watch_page_stats(rolling=rolling, timeout=PATIENCE) as stats:
        first = next(stats)  # sent at once
        assert first.window_start.ToDatetime() < first.window_end.ToDatetime()
        assert first.rolling.ToTimedelta() == rolling
        # Counted: a duration above --min-duration (100 ms), stamped now.
        client.publish(PAGE_TOPIC, page_event=sg.page_event(page, duration_ms=500))
        seen = read_until(stats, lambda messages: page in counts(messages[-1])
                          and counts(messages[-1])[page].rolling_count >= 1)
    pages = [p.page for p in seen[-1].pages]
    assert pages == sorted(pages), "pages come sorted"
    assert counts(seen[-1])[page].rolling_count == 1


def test_final_only_sends_each_closed_window_once_with_its_final_count(client, name):
    page = name("final")
    with client.watch_page_stats(final_only=True, timeout=PATIENCE) as finals:
        ack = client.publish(PAGE_TOPIC, page_event=sg.page_event(page, duration_ms=500))
        when = ack.timestamp.ToDatetime()  # event time is the record's timestamp
        # Every window holding the event has closed once a window starting after it has.
        messages = read_until(finals, lambda seen: seen[-1].window_start.ToDatetime() > when)
    assert all(m.final for m in messages)
    windows = [(m.window_start.ToDatetime(), m.window_end.ToDatetime()) for m in messages]
    assert len(set(windows)) == len(windows), "each window once"
    holding = [m for m in messages
               if m.window_start.ToDatetime() <= when < m.window_end.ToDatetime()]
    assert holding, "the windows holding the event were sent"
    assert all(counts(m)[page].count == 1 for m in holding), "counted exactly once"


def test_control_supplier_start_set_stop(client):
    before = client.control_supplier()  # no arguments: just the status
    try:
        status = client.control_supplier(rate_per_second=5)
        assert status.settings.rate_per_second == 5
        stopped = client.control_supplier("stop")
        assert not stopped.running
        assert stopped.settings.rate_per_second == 5
        started = client.control_supplier("start", interval=0.5, pages=["P1", "P2", "P3"])
        assert started.running
        assert started.settings.rate_per_second == 2
        assert list(started.settings.pages) == ["P1", "P2", "P3"]

        for bad in (dict(rate_per_second=-1), dict(rate_per_second=0), dict(pages=[]),
                    dict(min_duration_ms=10, max_duration_ms=5), dict(topic="no such topic!")):
            with pytest.raises(sg.InvalidArgument) as raised:
                client.control_supplier("stop", users=["U9"], **bad)
            assert raised.value.code == sg.InvalidArgument.code and raised.value.message
        after = client.control_supplier()
        assert after.running, "an invalid request changes nothing, not even its valid parts"
        assert after.settings == started.settings
    finally:
        settings = before.settings
        client.control_supplier("start" if before.running else "stop",
                                rate_per_second=settings.rate_per_second,
                                pages=list(settings.pages), users=list(settings.users),
                                min_duration_ms=settings.min_duration_ms,
                                max_duration_ms=settings.max_duration_ms,
                                topic=settings.topic)
