// An engine restarted on the same stores in the middle of a task, shared by the
// durable stores' test binaries (included).

/// Starts an engine on `stores()`, gives a slow agent a task, shuts the engine down
/// mid-task, starts another on `stores()` again: the task is pending once more and
/// finishes on a new agent, its first attempt counted.
async fn restarted_mid_task<S, F, Fut>(stores: F)
where
    S: mesh_core::Stores,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let mut first = common::mesh_on(common::fast_config(), stores().await).await;
    let (tenant, key) = (first.tenant, first.key.clone());
    let _slow = first.agent("slow", &["work"], 1, |_, _| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(json!({"by": "slow"}))
    });
    first.wait_for_agents(1).await;
    let task = first
        .engine
        .submit(tenant, TaskSpec::new("work", json!({"n": 1})))
        .await
        .unwrap();
    first
        .next_event(|e| matches!(e, Event::TaskAssigned { .. }))
        .await;
    first.engine.shutdown().await;
    drop(first);

    // A new engine on the same stores takes the task back.
    let second = common::mesh_with_key(common::fast_config(), stores().await, tenant, key).await;
    let resumed = second.engine.task(tenant, task.id).await.unwrap().unwrap();
    assert_eq!(
        resumed.status(),
        TaskStatus::Pending,
        "back to pending: its agent belonged to the old engine"
    );
    let _fast = second.echo_agent("fast", &["work"]);
    let done = second.finished(task.id).await;
    assert_eq!(completed_by(&done), "fast");
    assert_eq!(done.attempts, 2);
}

/// What a hello with `agent_id` gets from the hub at `url` with `key`: the id welcomed,
/// or the error code.
async fn hello_with_id(url: &str, key: &str, id: uuid::Uuid) -> Result<uuid::Uuid, String> {
    let config = mesh_protocol::ws::ClientConfig::new(url).api_key(key);
    let mut connection = connect(&config).await.unwrap();
    let mut hello = Hello::new("claimant", ["x"]);
    hello.agent_id = Some(id);
    connection.send(hello).await.unwrap();
    match connection.recv().await {
        Some(Ok(mesh_protocol::ws::Incoming::Message(Message::Welcome(w)))) => Ok(w.agent_id),
        Some(Ok(mesh_protocol::ws::Incoming::Message(Message::Error(e)))) => Err(e.code),
        other => panic!("{other:?}"),
    }
}

/// Hardening issue, item 12: after a restart (the registry empty), another tenant
/// could register an agent under someone else's id, and the owner was then refused.
/// Ids are now handed out by the server: a hello resumes only an id its tenant has.
async fn an_agent_id_is_never_claimed_across_tenants<S, F, Fut>(stores: F)
where
    S: mesh_core::Stores,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let first = common::mesh_on(common::fast_config(), stores().await).await;
    let (tenant, key) = (first.tenant, first.key.clone());
    let owned = hello_with_id(&first.url, &key, uuid::Uuid::now_v7())
        .await
        .unwrap();
    first.engine.shutdown().await;
    drop(first);

    let second = common::mesh_with_key(common::fast_config(), stores().await, tenant, key).await;
    let intruder = mesh_core::TenantId::new();
    let (intruder_key, _) = second
        .engine
        .create_api_key(intruder, "intruder", vec![mesh_core::Scope::Agent], None)
        .await
        .unwrap();
    let given = hello_with_id(&second.url, &intruder_key, owned)
        .await
        .unwrap();
    assert_ne!(given, owned, "another tenant never gets the id");
    let resumed = hello_with_id(&second.url, &second.key, owned).await;
    assert_eq!(resumed, Ok(owned), "its owner resumes it");
}

/// Tasks of six tenants left pending by an engine with one engine task are all taken
/// back by an engine that splits the tenants over three, each task run once, by its
/// tenant's agent.
async fn pending_tasks_are_resumed_by_the_engine_task_of_their_tenant<S, F, Fut>(stores: F)
where
    S: mesh_core::Stores,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let first = mesh_core::Engine::start(common::fast_config(), stores().await)
        .await
        .unwrap();
    let mut tenants = Vec::new();
    for i in 0..6 {
        let tenant = mesh_core::TenantId::new();
        let scopes = vec![mesh_core::Scope::Agent];
        let (key, _) = first
            .create_api_key(tenant, "t", scopes, None)
            .await
            .unwrap();
        let spec = TaskSpec::new("work", json!({"n": i}));
        let task = first.submit(tenant, spec).await.unwrap();
        tenants.push((tenant, key, task.id));
    }
    first.shutdown().await;
    drop(first);

    let second = mesh_core::Engine::start(common::fast_config().shards(3), stores().await)
        .await
        .unwrap();
    let (url, _server) = common::serve_hub(&second).await;
    let mut agents = Vec::new();
    for (i, (_, key, _)) in tenants.iter().enumerate() {
        agents.push(named_agent(&url, key, format!("agent-{i}")));
    }
    for (i, (tenant, _, id)) in tenants.iter().enumerate() {
        let done = tokio::time::timeout(Duration::from_secs(15), second.wait(*tenant, *id))
            .await
            .expect("finished in time")
            .unwrap();
        assert_eq!(completed_by(&done), format!("agent-{i}"));
        assert_eq!(done.attempts, 1, "run once");
    }
}
