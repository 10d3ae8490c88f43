"""The admin calls from Python and lag.py: a group that read part of a topic shows each
partition's lag and the total; a reset to earliest (a dry run first) raises it to
everything the topic holds."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import lag  # noqa: E402
import streamgate_client as sg  # noqa: E402


def test_lag_per_partition_and_a_reset(client, name, capsys):
    topic, group = name("topic"), name("group")
    described = client.create_topic(topic, partitions=3)
    assert len(described.partitions) == 3
    with pytest.raises(sg.AlreadyExists):
        client.create_topic(topic, partitions=3)
    for i in range(6):
        client.publish(topic, f"lag-{i}".encode(), partition=i % 3)
    read = list(client.subscribe(topic, group=group, start="earliest", max_records=4))
    assert len(read) == 4

    described = client.describe_group(group)
    assert described.total_lag == 2
    assert sum(p.log_end_offset for p in described.partitions) == 6
    assert all(p.lag == p.log_end_offset - p.committed_offset for p in described.partitions)

    assert lag.main([group]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == list(lag.COLUMNS)
    assert "TOTAL-LAG 2" in out

    plan = client.reset_group_offsets(group, [topic], to_earliest=True)
    assert [m.new_offset for m in plan] == [0, 0, 0]
    assert client.describe_group(group).total_lag == 2, "a dry run moves nothing"
    client.reset_group_offsets(group, [topic], to_earliest=True, execute=True)
    assert client.describe_group(group).total_lag == 6


def test_an_unknown_group_is_not_found(client, name):
    with pytest.raises(sg.NotFound):
        client.describe_group(name("nobody"))
