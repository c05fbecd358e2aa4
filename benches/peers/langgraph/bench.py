"""LangGraph with its PostgreSQL checkpointer running the workflow benchmark's shape: a
three-node graph whose nodes do trivial work, invoked N times by C concurrent starters
(each run its own thread_id, so every node's state is checkpointed), on the PostgreSQL
in DATABASE_URL. Prints the same table row as Mesh's `workflow` bench.

    python -m venv venv && venv/bin/pip install -r requirements.txt
    DATABASE_URL=postgres://... venv/bin/python bench.py --runs 2000 --starters 32
"""

import argparse
import asyncio
import os
import time
import uuid
from importlib.metadata import version
from typing import TypedDict

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from psycopg_pool import AsyncConnectionPool


class State(TypedDict):
    n: int


def step(state: State) -> State:
    return {"n": state["n"] + 1}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--starters", type=int, default=32)
    args = parser.parse_args()
    graph = StateGraph(State)
    for name in ("one", "two", "three"):
        graph.add_node(name, step)
    graph.add_edge(START, "one")
    graph.add_edge("one", "two")
    graph.add_edge("two", "three")
    graph.add_edge("three", END)
    async with AsyncConnectionPool(
        os.environ["DATABASE_URL"],
        max_size=args.starters,
        kwargs={"autocommit": True, "prepare_threshold": 0},
    ) as pool:
        saver = AsyncPostgresSaver(pool)
        await saver.setup()
        app = graph.compile(checkpointer=saver)
        per = args.runs // args.starters
        latencies: list[float] = []

        async def starter(s: int) -> None:
            for i in range(per):
                config = {"configurable": {"thread_id": str(uuid.uuid4())}}
                t0 = time.perf_counter()
                out = await app.ainvoke({"n": s * per + i}, config)
                assert out["n"] == s * per + i + 3
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(starter(s) for s in range(args.starters)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    at = lambda q: latencies[int((len(latencies) - 1) * q)]
    per_second = len(latencies) / elapsed
    print(
        f"| LangGraph {version('langgraph')} + PostgresSaver | {len(latencies)} | "
        f"{per_second:.0f} | {per_second * 3:.0f} | {at(0.5) * 1e3:.2f} ms | {at(0.99) * 1e3:.2f} ms |"
    )


if __name__ == "__main__":
    asyncio.run(main())
