// The write path and the engine tasks: what the engine tells is already stored,
// batches written side by side keep each task's writes in order, and tenants split over
// several engine tasks are each served whole by their own. Included after `cases.rs`,
// on every store.

/// Task writes are group-committed, and what the engine tells is already in the stores:
/// a submit's answer (for many submitted at once), an agent's assignment (a new task is
/// created assigned), a task's end to whoever waits, and a cancel's answer — each read
/// back from the stores the moment it arrives.
#[tokio::test]
async fn what_the_engine_tells_is_already_in_the_stores() {
    let Some(m) = mesh().await else { return };
    let stored = async |id: mesh_core::TaskId| m.engine.task(m.tenant, id).await.unwrap();

    // Nobody to run them: each answered submit is stored, pending.
    let submits = (0..50).map(|n| m.engine.submit(m.tenant, TaskSpec::new("work", json!(n))));
    for task in futures_util::future::join_all(submits).await {
        let task = task.unwrap();
        assert_eq!(stored(task.id).await.map(|t| t.status()), Some(TaskStatus::Pending));
    }
    // A cancel's answer is stored too.
    let lone = m.engine.submit(m.tenant, TaskSpec::new("lone", json!({}))).await.unwrap();
    let cancelled = m.engine.cancel(m.tenant, lone.id).await.unwrap();
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    assert_eq!(stored(lone.id).await.unwrap().status(), TaskStatus::Cancelled);

    // An agent gets a task only once the stores say it holds it.
    let mut agent = connect(&m.client()).await.unwrap();
    agent.send(Hello::new("raw", ["work"])).await.unwrap();
    m.wait_for_agents(1).await;
    let mut seen = 0;
    while seen < 50 {
        let Some(Ok(mesh_protocol::ws::Incoming::Message(Message::TaskAssign(a)))) =
            agent.recv().await
        else {
            continue;
        };
        let id = mesh_core::TaskId::from_uuid(a.task_id);
        let held = stored(id).await.unwrap();
        assert_eq!(held.status(), TaskStatus::Assigned);
        assert!(held.agent_id.is_some());
        // Whoever waits hears of the end once it is stored.
        let waiter = {
            let engine = m.engine.clone();
            let tenant = m.tenant;
            tokio::spawn(async move { engine.wait(tenant, id).await })
        };
        agent
            .send(mesh_protocol::TaskComplete::new(a.task_id, json!(seen)))
            .await
            .unwrap();
        let done = waiter.await.unwrap().unwrap();
        assert_eq!(done.status(), TaskStatus::Completed);
        let back = stored(id).await.unwrap();
        assert_eq!((back.status(), back.output), (TaskStatus::Completed, done.output));
        seen += 1;
    }
}

/// The agent `name` of the hub at `url` with `key`: answers `{"by": name}` at once.
fn named_agent(url: &str, key: &str, name: String) -> tokio::task::JoinHandle<()> {
    common::agent_at(
        common::client_config(url, key),
        &name.clone(),
        &["work"],
        4,
        move |task, _| {
            let name = name.clone();
            async move { Ok(json!({"by": name, "input": task.input})) }
        },
    )
}

#[tokio::test]
async fn tenants_spread_over_engine_tasks_each_served_whole_by_its_own() {
    let Some(m) = mesh_with(common::fast_config().shards(3)).await else {
        return;
    };
    // Two tenants for each of the three engine tasks, each with an agent on the hub.
    let mut tenants = Vec::new();
    let mut per_shard = [0usize; 3];
    while per_shard.iter().any(|n| *n < 2) {
        let tenant = mesh_core::TenantId::new();
        let shard = m.engine.shard_of(tenant);
        if per_shard[shard] < 2 {
            per_shard[shard] += 1;
            tenants.push(tenant);
        }
    }
    let mut keys = Vec::new();
    let mut agents = Vec::new();
    for (i, tenant) in tenants.iter().enumerate() {
        let scopes = vec![mesh_core::Scope::Agent, mesh_core::Scope::Write];
        let (key, _) = m
            .engine
            .create_api_key(*tenant, "t", scopes, None)
            .await
            .unwrap();
        agents.push(named_agent(&m.url, &key, format!("agent-{i}")));
        common::wait_for_agents(&m.engine, *tenant, 1).await;
        keys.push(key);
    }
    assert_eq!(m.engine.busy_times().len(), 3);

    // Every tenant's tasks, submitted together, run on that tenant's agent.
    let mut submitted = Vec::new();
    for (i, tenant) in tenants.iter().enumerate() {
        for n in 0..5 {
            let spec = TaskSpec::new("work", json!({"n": n}));
            let task = m.engine.submit(*tenant, spec).await.unwrap();
            submitted.push((i, *tenant, task.id));
        }
    }
    for (i, tenant, id) in submitted {
        let done = tokio::time::timeout(Duration::from_secs(15), m.engine.wait(tenant, id))
            .await
            .expect("finished in time")
            .unwrap();
        assert_eq!(completed_by(&done), format!("agent-{i}"));
        assert_eq!(done.attempts, 1);
    }

    // A tenant's agent leaves: its next task waits for the tenant's next agent, not
    // another tenant's, and a cancellation reaches the right engine task.
    agents[0].abort();
    for _ in 0..500 {
        if m.engine.agents(tenants[0]).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(m.engine.agents(tenants[0]).await.unwrap().is_empty());
    let waiting = m
        .engine
        .submit(tenants[0], TaskSpec::new("work", json!({"n": "later"})))
        .await
        .unwrap();
    let cancelled = m
        .engine
        .submit(tenants[0], TaskSpec::new("work", json!({"n": "never"})))
        .await
        .unwrap();
    let cancelled = m.engine.cancel(tenants[0], cancelled.id).await.unwrap();
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    let _back = named_agent(&m.url, &keys[0], "agent-0-again".into());
    let done = tokio::time::timeout(
        Duration::from_secs(15),
        m.engine.wait(tenants[0], waiting.id),
    )
    .await
    .expect("finished in time")
    .unwrap();
    assert_eq!(completed_by(&done), "agent-0-again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_written_in_overlapping_batches_stores_every_task_once_in_order() {
    // Four batches in flight: each task's creation, acceptance and end go in order,
    // in whichever batches, and none is lost or run twice. On two threads, as a
    // service runs: a write task ends on one while the engine task hears it on the
    // other.
    let Some(m) = mesh_with(common::fast_config().writes_in_flight(4)).await else {
        return;
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let mut agents = Vec::new();
    for name in ["one", "two", "three"] {
        let runs = runs.clone();
        agents.push(m.agent(name, &["work"], 16, move |task, _| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(json!({"n": task.input}))
            }
        }));
    }
    m.wait_for_agents(3).await;
    let submits = (0..300).map(|n| m.engine.submit(m.tenant, TaskSpec::new("work", json!(n))));
    let tasks = futures_util::future::join_all(submits).await;
    for (n, task) in tasks.into_iter().enumerate() {
        let id = task.unwrap().id;
        let done = tokio::time::timeout(Duration::from_secs(20), m.engine.wait(m.tenant, id))
            .await
            .expect("finished in time")
            .unwrap();
        assert_eq!(done.status(), TaskStatus::Completed);
        let stored = m.engine.task(m.tenant, id).await.unwrap().unwrap();
        assert_eq!(stored.status(), TaskStatus::Completed, "task {n} as stored");
        assert_eq!((stored.output, stored.attempts), (Some(json!({"n": n})), 1));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 300, "each task ran once");
}
