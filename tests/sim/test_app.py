"""Accounts, stats, reset and injected faults of the simulator application."""

from __future__ import annotations

import aiohttp
import pytest

from flowpipe.sim import CapacitySpec

from .helpers import API, AUTH, MakeSim, generate, image_bytes, media_id, stats, upload


async def test_accounts_lists_every_account_with_its_health(make_sim: MakeSim) -> None:
    client = await make_sim(accounts=("a@example.com",), broken_accounts=("b@example.com",))
    async with client.get(f"{API}/accounts", headers=AUTH) as response:
        body = await response.json()
    assert response.status == 200
    assert body["a@example.com"]["health"] == "OK"
    assert body["b@example.com"]["health"] == "Failed to refresh session."
    assert body["b@example.com"]["error"] == "Failed to refresh session."


@pytest.mark.parametrize(
    ("email", "status", "health"),
    [("a@example.com", 200, "OK"), ("B@example.com", 200, "Failed to refresh session.")],
    ids=["ok", "broken"],
)
async def test_one_account(make_sim: MakeSim, email: str, status: int, health: str) -> None:
    client = await make_sim(accounts=("a@example.com",), broken_accounts=("b@example.com",))
    async with client.get(f"{API}/accounts/{email}", headers=AUTH) as response:
        assert response.status == status
        assert (await response.json())["health"] == health


async def test_unknown_account_is_404(make_sim: MakeSim) -> None:
    client = await make_sim()
    async with client.get(f"{API}/accounts/who@example.com", headers=AUTH) as response:
        assert response.status == 404
        assert await response.json() == {"error": "Google Flow account who@example.com not found"}


async def test_accounts_need_the_token(make_sim: MakeSim) -> None:
    client = await make_sim()
    async with client.get(f"{API}/accounts") as response:
        assert (response.status, await response.json()) == (401, {"error": "Unauthorized"})


async def test_stats_endpoint_needs_no_token_and_counts(make_sim: MakeSim) -> None:
    client = await make_sim()
    await generate(client, count=2)
    await generate(client, count=9)
    async with client.get(f"{API}/accounts") as response:
        assert response.status == 401
    async with client.get("/_sim/stats") as response:
        body = await response.json()
    assert body["images_statuses"] == {"200": 1, "400": 1}
    assert body["statuses"] == {"200": 1, "400": 1, "401": 1}
    assert (body["generations"], body["images"], body["max_concurrent"]) == (1, 2, 1)
    assert body["capacity_trace"] == [[0.0, 20]]


async def test_oracle_bound_for_constant_capacity(make_sim: MakeSim) -> None:
    client = await make_sim(
        capacity=CapacitySpec(kind="constant", level=2), latency_min=10.0, latency_max=10.0
    )
    for seed in range(5):
        await generate(client, seed=seed, count=1)
    oracle = stats(client)["oracle"]
    assert oracle["jobs"] == 5
    assert oracle["work_api_seconds"] == pytest.approx(50.0)
    assert oracle["makespan_api_seconds"] == pytest.approx(25.0)  # 50 slot-seconds over 2 slots
    assert oracle["makespan_seconds"] == pytest.approx(25.0 * 0.001)


async def test_oracle_bound_counts_every_accounts_capacity(make_sim: MakeSim) -> None:
    client = await make_sim(
        accounts=("a@example.com", "b@example.com"),
        capacity=CapacitySpec(kind="constant", level=1),
        capacity_per_account=True,
        latency_min=10.0,
        latency_max=10.0,
    )
    for seed in range(4):
        await generate(
            client, seed=seed, count=1, email=("a@example.com", "b@example.com")[seed % 2]
        )
    oracle = stats(client)["oracle"]
    assert oracle["makespan_api_seconds"] == pytest.approx(20.0)  # 40 slot-seconds over 2 slots


async def test_oracle_bound_is_at_least_the_longest_job(make_sim: MakeSim) -> None:
    client = await make_sim()
    await generate(client, seed=1, count=1)
    oracle = stats(client)["oracle"]
    assert 10.0 <= oracle["makespan_api_seconds"] == oracle["longest_job_api_seconds"] <= 20.0


async def test_latency_depends_on_the_request_only(make_sim: MakeSim) -> None:
    client = await make_sim()
    await generate(client, seed=4, count=1)
    once = stats(client)["oracle"]["work_api_seconds"]
    await generate(client, seed=4, count=1)
    assert stats(client)["oracle"]["work_api_seconds"] == pytest.approx(2 * once)
    await generate(client, seed=5, count=1)
    assert stats(client)["oracle"]["work_api_seconds"] != pytest.approx(3 * once)


async def test_reset_forgets_every_id(make_sim: MakeSim) -> None:
    client = await make_sim()
    _, uploaded = await upload(client, image_bytes("PNG"), "image/png")
    ref = uploaded["mediaGenerationId"]["mediaGenerationId"]
    _, made = await generate(client, count=1)
    async with client.post("/_sim/reset") as response:
        assert await response.json() == {"forgotten": 2}
    for old in (ref, media_id(made)):
        status, body = await generate(client, contextReference_1=old)
        assert status == 403
        assert body["error"].endswith(f"detected in reference {old}")


async def _outcome(client: object, seed: int) -> str:
    try:
        status, _ = await generate(client, seed=seed, count=1)  # type: ignore[arg-type]
    except aiohttp.ClientPayloadError:
        return "truncated"
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
        return "reset"
    return str(status)


async def test_faults_reset_or_truncate_and_are_counted(make_sim: MakeSim) -> None:
    client = await make_sim(fault_rate=1.0)
    outcomes = [await _outcome(client, seed) for seed in range(12)]
    assert set(outcomes) == {"reset", "truncated"}
    faults = stats(client)["faults"]
    assert faults == {"reset": outcomes.count("reset"), "truncated": outcomes.count("truncated")}
    assert stats(client)["generations"] == 0


async def test_faults_are_deterministic_under_the_seed(make_sim: MakeSim) -> None:
    runs = []
    for seed in (5, 5, 6):
        client = await make_sim(fault_rate=0.5, seed=seed)
        runs.append([await _outcome(client, i) for i in range(12)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert {"200", "reset", "truncated"} <= set(runs[0])
