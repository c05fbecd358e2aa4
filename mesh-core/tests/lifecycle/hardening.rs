// Lifecycle cases from the hardening issue (numbered as its items). Included after
// `cases.rs`, on every store.

/// Hardening issue, item 11: pending tasks never expired; the documented
/// `pending → failed` (unroutable) path did not exist.
#[tokio::test]
async fn hardening_11_a_task_no_agent_takes_fails_as_unroutable() {
    let config = common::fast_config().pending_timeout(Some(Duration::from_millis(200)));
    let Some(m) = mesh_with(config).await else { return };
    let task = m
        .engine
        .submit(m.tenant, TaskSpec::new("nobody-can", json!({})))
        .await
        .unwrap();
    let done = m.finished(task.id).await;
    assert_eq!(done.status(), TaskStatus::Failed);
    assert!(done.error.as_deref().unwrap_or("").starts_with("unroutable"), "{done:?}");
    let stored = m.engine.task(m.tenant, task.id).await.unwrap().unwrap();
    assert_eq!(stored.status(), TaskStatus::Failed);
}

/// Hardening issue, item 11: one rejection excluded an agent from a task for ever, so a
/// sole agent that was busy once never got it.
#[tokio::test]
async fn hardening_11_a_sole_agent_that_rejected_once_gets_the_task_later() {
    let config = common::fast_config().exclusion_ttl(Duration::from_millis(100));
    let Some(m) = mesh_with(config).await else { return };
    let mut busy_once = connect(&m.client()).await.unwrap();
    busy_once.send(Hello::new("sole", ["work"])).await.unwrap();
    let agent = tokio::spawn(async move {
        let mut assigned = 0;
        while let Some(Ok(item)) = busy_once.recv().await {
            if let mesh_protocol::ws::Incoming::Message(Message::TaskAssign(a)) = item {
                assigned += 1;
                let reply: Message = if assigned == 1 {
                    TaskReject::new(a.task_id, "busy").into()
                } else {
                    mesh_protocol::TaskComplete::new(a.task_id, json!({"by": "sole"})).into()
                };
                busy_once.send(reply).await.unwrap();
            }
        }
    });
    m.wait_for_agents(1).await;
    let task = m
        .engine
        .submit(m.tenant, TaskSpec::new("work", json!({})))
        .await
        .unwrap();
    let done = m.finished(task.id).await;
    assert_eq!(completed_by(&done), "sole");
    assert_eq!(done.attempts, 2);
    agent.abort();
}

/// Hardening issue, item 20: `deadline_ms` was the per-attempt timeout even when the
/// task's absolute deadline was nearer; `attempt` counts from 1.
#[tokio::test]
async fn hardening_20_deadline_ms_is_what_the_attempt_has() {
    let Some(m) = mesh().await else { return };
    let mut raw = connect(&m.client()).await.unwrap();
    raw.send(Hello::new("raw", ["timed"])).await.unwrap();
    m.wait_for_agents(1).await;
    let deadline = chrono::Utc::now() + chrono::Duration::seconds(2);
    let spec = TaskSpec::new("timed", json!({}))
        .timeout(Duration::from_secs(60))
        .deadline(deadline);
    m.engine.submit(m.tenant, spec).await.unwrap();
    let assign = loop {
        match raw.recv().await.unwrap().unwrap() {
            mesh_protocol::ws::Incoming::Message(Message::TaskAssign(a)) => break a,
            _ => continue,
        }
    };
    assert_eq!(assign.attempt, 1);
    let left = assign.deadline_ms.unwrap();
    assert!(left <= 2_000 && left > 500, "{left}");
}

/// Hardening issue, item 12: agent labels were unbounded.
#[tokio::test]
async fn hardening_12_labels_are_bounded() {
    let Some(m) = mesh().await else { return };
    let mut connection = connect(&m.client()).await.unwrap();
    let mut hello = Hello::new("labelled", ["x"]);
    hello.labels = Some((0..33).map(|i| (format!("k{i}"), "v".into())).collect());
    connection.send(hello).await.unwrap();
    match connection.recv().await {
        Some(Ok(mesh_protocol::ws::Incoming::Message(Message::Error(e)))) => {
            assert_eq!(e.code, "registration_refused", "{e:?}")
        }
        other => panic!("{other:?}"),
    }
}

/// Hardening issue, item 12: `GET /agents` was not paged.
#[tokio::test]
async fn hardening_12_agents_are_listed_in_pages() {
    let Some(m) = mesh().await else { return };
    let _agents: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| m.echo_agent(name, &["x"]))
        .collect();
    m.wait_for_agents(3).await;
    let mut filter = mesh_core::AgentFilter::default();
    filter.limit = Some(2);
    let first = m.engine.list_agents(m.tenant, filter.clone()).await.unwrap();
    assert_eq!(first.items.len(), 2);
    filter.cursor = first.next.clone();
    let second = m.engine.list_agents(m.tenant, filter).await.unwrap();
    assert_eq!(second.items.len(), 1);
    assert!(second.next.is_none());
}

/// Hardening issue, item 12: agents that went offline were kept for ever (and every
/// reconnect without a known id registers a new one).
#[tokio::test]
async fn hardening_12_agents_offline_past_their_retention_are_forgotten() {
    let mut config = common::fast_config();
    config.offline_agent_ttl = Some(Duration::from_millis(100));
    let Some(m) = mesh_with(config).await else { return };
    let agent = m.echo_agent("fleeting", &["x"]);
    m.wait_for_agents(1).await;
    agent.abort();
    let started = std::time::Instant::now();
    loop {
        let all = m
            .engine
            .list_agents(m.tenant, mesh_core::AgentFilter::default())
            .await
            .unwrap();
        if all.items.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still kept: {:?}",
            all.items
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
