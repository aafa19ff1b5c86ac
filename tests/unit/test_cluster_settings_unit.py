"""How costtop is told Redis is a cluster (`cluster = true`, COSTTOP_CLUSTER, or a `+cluster` URL scheme),
what the client is then given, and the cluster URLs refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from costtop.config import ConfigError, Settings, cluster_seeds, load_settings, plain_redis_url
from costtop.sources.redis_state import connect_redis
from costtop.text import mask_url


@pytest.mark.parametrize(("given", "cluster"), [
    ({"redis_url": "redis://h:7000/0"}, False),
    ({"redis_url": "redis://h:7000/0", "cluster": True}, True),
    ({"redis_url": "redis+cluster://h:7000"}, True),
    ({"redis_url": "rediss+cluster://:pw@h:7000/0?ssl_ca_certs=/ca.pem"}, True),
])
def test_a_cluster_by_setting_or_by_scheme(given: dict[str, object], cluster: bool) -> None:
    assert Settings(**given).redis_cluster is cluster


def test_the_setting_from_a_file_and_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('redis_url = "redis://h:7000/0"\ncluster = true\n')
    assert load_settings(env={}, config_path=config).redis_cluster
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert load_settings(env={"COSTTOP_CLUSTER": "yes"}, config_path=empty).redis_cluster
    assert not load_settings(env={}, config_path=empty).redis_cluster
    with pytest.raises(ConfigError, match="COSTTOP_CLUSTER must be true or false"):
        load_settings(env={"COSTTOP_CLUSTER": "sure"})


def test_a_cluster_url_may_name_several_nodes() -> None:
    """The client asks each in turn: one that is down (the primary that just failed) does not stop it."""
    first, seeds = cluster_seeds("rediss+cluster://u:pw@h1:7000,h2:7001,[::1]:7002,h4/0?ssl_ca_certs=/ca.pem")
    assert first == "rediss://u:pw@h1:7000/0?ssl_ca_certs=/ca.pem"
    assert seeds == [("h2", 7001), ("::1", 7002), ("h4", 6379)]
    assert cluster_seeds("redis://h:6379/1") == ("redis://h:6379/1", [])
    client = connect_redis(Settings(redis_url="redis+cluster://127.0.0.1:7000,127.0.0.1:7001"))
    assert isinstance(client, RedisCluster)
    assert set(client.nodes_manager.startup_nodes) == {"127.0.0.1:7000", "127.0.0.1:7001"}


@pytest.mark.parametrize(("url", "said"), [
    ("redis+cluster://h:7000/2", "database 0 only"),
    ("unix:///tmp/r.sock", "over TCP"),
    ("redis+clusters://h:7000", "must start with"),
    ("redis+cluster://h:7000,h2:port", "bad node 'h2:port'"),
    ("redis://h1:7000,h2:7000/0", "several nodes only for a cluster"),
])
def test_a_cluster_url_it_cannot_use_is_refused_at_start(url: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        load_settings({"redis_url": url, "cluster": url.startswith("unix") or None}, env={})


async def test_the_client_is_a_cluster_client_with_the_url_it_reads() -> None:
    """The client library never sees the `+cluster` scheme; TLS stays TLS."""
    assert plain_redis_url("rediss+cluster://:pw@h:7000/0") == "rediss://:pw@h:7000/0"
    assert plain_redis_url("redis://h/0") == "redis://h/0"
    assert mask_url("rediss+cluster://costtop:s3cret@h:7000/0") == "rediss+cluster://costtop:***@h:7000/0"
    client = connect_redis(Settings(redis_url="rediss+cluster://127.0.0.1:7000/0?ssl_ca_certs=/ca.pem"))
    assert isinstance(client, RedisCluster)
    assert client.nodes_manager.connection_kwargs["ssl_ca_certs"] == "/ca.pem"
    plain = connect_redis(Settings(redis_url="redis://127.0.0.1:7000/0"), timeout=0.25)
    assert isinstance(plain, Redis) and plain.connection_pool.connection_kwargs["socket_timeout"] == 0.25
    await plain.aclose()
