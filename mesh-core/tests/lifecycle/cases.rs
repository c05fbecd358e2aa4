// The lifecycle cases, shared by the memory, SQLite and PostgreSQL test binaries
// (included).

async fn mesh() -> Option<Mesh> {
    mesh_with(common::fast_config()).await
}

/// A custom router: every task goes to an agent labelled `region=eu`.
struct EuOnly;

impl mesh_core::router::Router for EuOnly {
    fn name(&self) -> &str {
        "eu-only"
    }

    fn route(
        &mut self,
        index: &mesh_core::router::CandidateIndex,
        request: &mesh_core::router::Resolved,
    ) -> Result<mesh_core::router::CandidateId, mesh_core::router::RouteError> {
        index
            .eligible(request)
            .find(|c| c.label("region") == Some("eu"))
            .map(|c| c.id())
            .ok_or_else(|| index.explain(request))
    }
}

#[tokio::test]
async fn a_custom_router_sends_every_task_to_the_agent_labelled_region_eu() {
    let config = common::fast_config().router("eu-only", || EuOnly);
    let Some(m) = mesh_with(config).await else { return };
    let mut agents = Vec::new();
    for (name, region) in [("us-1", "us"), ("eu-1", "eu"), ("us-2", "us")] {
        let mut hello = Hello::new(name, ["translate"]);
        hello.max_concurrency = Some(8);
        hello.labels = Some([("region".to_owned(), region.to_owned())].into());
        let by = name;
        agents.push(common::agent_with_hello(m.client(), hello, move |task, _| async move {
            Ok(json!({"by": by, "input": task.input}))
        }));
    }
    m.wait_for_agents(3).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let spec = TaskSpec::new("translate", json!(i)).router("eu-only");
        ids.push(m.engine.submit(m.tenant, spec).await.unwrap().id);
    }
    for id in ids {
        let task = m.finished(id).await;
        assert_eq!(completed_by(&task), "eu-1");
        assert_eq!(task.router.as_deref(), Some("eu-only"));
    }
    // Without the router, the others get work too.
    let mut by = std::collections::BTreeSet::new();
    for i in 0..30 {
        let spec = TaskSpec::new("translate", json!(i))
            .routing(mesh_core::RoutingPreference::RoundRobin);
        let task = m.engine.submit(m.tenant, spec).await.unwrap();
        by.insert(completed_by(&m.finished(task.id).await).to_owned());
    }
    assert_eq!(by.len(), 3, "{by:?}");
    // A router nobody registered is refused up front.
    let unknown = TaskSpec::new("translate", json!(0)).router("nowhere");
    let error = m.engine.submit(m.tenant, unknown).await.unwrap_err();
    assert!(matches!(error, mesh_core::EngineError::UnknownRouter(ref n) if n == "nowhere"), "{error}");
    assert_eq!(error.code(), "invalid_request");
}

#[tokio::test]
async fn an_in_process_agent_runs_tasks_retries_cancels_and_survives_a_panic() {
    let Some(m) = mesh().await else { return };
    let attempts = Arc::new(AtomicUsize::new(0));
    let seen = attempts.clone();
    let agent = m
        .engine
        .connect_local(m.tenant, Hello::new("local", ["upper", "flaky", "slow", "boom"]), move |task| {
            let seen = seen.clone();
            async move {
                match task.kind.as_str() {
                    "upper" => Ok(json!(task.input.as_str().unwrap_or("").to_uppercase())),
                    "flaky" if seen.fetch_add(1, Ordering::SeqCst) == 0 => {
                        Err(TaskError::retryable("not yet"))
                    }
                    "flaky" => Ok(json!("second time lucky")),
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok(json!(null))
                    }
                    _ => panic!("the handler blew up"),
                }
            }
        })
        .await
        .unwrap();
    let listed = m.engine.agents(m.tenant).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id, listed[0].name.as_str()), (agent.id(), "local"));

    let task = m.engine.submit(m.tenant, TaskSpec::new("upper", json!("mesh"))).await.unwrap();
    let done = m.finished(task.id).await;
    assert_eq!(done.output, Some(json!("MESH")));
    assert_eq!(done.agent_id, Some(agent.id()));

    let task = m.engine.submit(m.tenant, TaskSpec::new("flaky", json!(null))).await.unwrap();
    let done = m.finished(task.id).await;
    assert_eq!((done.status(), done.attempts), (TaskStatus::Completed, 2));

    let slow = m.engine.submit(m.tenant, TaskSpec::new("slow", json!(null))).await.unwrap();
    while m.engine.task(m.tenant, slow.id).await.unwrap().unwrap().status() == TaskStatus::Pending {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cancelled = m.engine.cancel(m.tenant, slow.id).await.unwrap();
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);

    let boom = m
        .engine
        .submit(m.tenant, TaskSpec::new("boom", json!(null)).max_attempts(1))
        .await
        .unwrap();
    let done = m.finished(boom.id).await;
    assert_eq!(done.status(), TaskStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("the handler panicked"));

    // Still serving after the panic; then stopped, it is offline.
    let task = m.engine.submit(m.tenant, TaskSpec::new("upper", json!("again"))).await.unwrap();
    assert_eq!(m.finished(task.id).await.output, Some(json!("AGAIN")));
    agent.stop().await;
    assert!(m.engine.agents(m.tenant).await.unwrap().is_empty());
}

#[tokio::test]
async fn agents_register_and_resume_their_identity() {
    let Some(m) = mesh().await else { return };
    let mut connection = connect(&m.client()).await.unwrap();
    connection.send(Hello::new("first", ["x"])).await.unwrap();
    let Some(Ok(mesh_protocol::ws::Incoming::Message(Message::Welcome(w1)))) =
        connection.recv().await
    else {
        panic!()
    };
    let agents = m.engine.agents(m.tenant).await.unwrap();
    assert_eq!(agents.len(), 1);
    assert_eq!(
        (agents[0].name.as_str(), agents[0].status()),
        ("first", AgentStatus::Active)
    );
    drop(connection);
    let mut again = connect(&m.client()).await.unwrap();
    let mut hello = Hello::new("first-again", ["x", "y"]);
    hello.agent_id = Some(w1.agent_id);
    again.send(hello).await.unwrap();
    let Some(Ok(mesh_protocol::ws::Incoming::Message(Message::Welcome(w2)))) = again.recv().await
    else {
        panic!()
    };
    assert_eq!(w2.agent_id, w1.agent_id, "same identity");
    assert_ne!(w2.session_id, w1.session_id, "new session");
    m.wait_for_agents(1).await;
    let agents = m.engine.agents(m.tenant).await.unwrap();
    assert_eq!(agents[0].name, "first-again");
    assert!(agents[0].capabilities.contains("y"));
}

#[tokio::test]
async fn tasks_go_to_an_agent_with_the_capabilities() {
    let Some(m) = mesh().await else { return };
    let _s = m.echo_agent("summarizer", &["summarize", "english"]);
    let _t = m.echo_agent("translator", &["translate", "french"]);
    m.wait_for_agents(2).await;
    for _ in 0..5 {
        let t = m
            .engine
            .submit(m.tenant, TaskSpec::new("translate", json!({"text": "hi"})))
            .await
            .unwrap();
        assert_eq!(completed_by(&m.finished(t.id).await), "translator");
        let s = m
            .engine
            .submit(
                m.tenant,
                TaskSpec::new("summarize", json!({})).require(["english"]),
            )
            .await
            .unwrap();
        assert_eq!(completed_by(&m.finished(s.id).await), "summarizer");
    }
    // No agent can translate into german: the task waits, pending, until one can.
    let g = m
        .engine
        .submit(
            m.tenant,
            TaskSpec::new("translate", json!({})).require(["german"]),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        m.engine
            .task(m.tenant, g.id)
            .await
            .unwrap()
            .unwrap()
            .status(),
        TaskStatus::Pending
    );
    let _g = m.echo_agent("german", &["translate", "german"]);
    assert_eq!(completed_by(&m.finished(g.id).await), "german");
}

#[tokio::test]
async fn a_task_whose_agent_dies_completes_on_another_exactly_once() {
    let Some(mut m) = mesh().await else { return };
    let slow = m.agent("slow", &["work"], 1, |_, _| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(json!({"by": "slow"}))
    });
    m.wait_for_agents(1).await;
    let task = m
        .engine
        .submit(m.tenant, TaskSpec::new("work", json!({})))
        .await
        .unwrap();
    m.next_event(|e| matches!(e, Event::TaskAssigned { agent_name, .. } if agent_name == "slow"))
        .await;
    let _fast = m.echo_agent("fast", &["work"]);
    m.wait_for_agents(2).await;
    slow.abort(); // the agent process dies mid-task
    let done = m.finished(task.id).await;
    assert_eq!(completed_by(&done), "fast");
    assert_eq!(done.attempts, 2);
    // Exactly one completion was recorded.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut completions = 0;
    while let Ok(e) = m.events.try_recv() {
        if matches!(e, Event::TaskStatus { task, status: TaskStatus::Completed, .. } if task == done.id)
        {
            completions += 1;
        }
    }
    assert_eq!(completions, 1);
}

#[tokio::test]
async fn a_rejected_task_is_reassigned_to_another_agent() {
    let Some(mut m) = mesh().await else { return };
    // An agent that rejects everything, speaking the protocol directly.
    let mut picky = connect(&m.client()).await.unwrap();
    picky.send(Hello::new("picky", ["work"])).await.unwrap();
    let picky_task = tokio::spawn(async move {
        let mut rejected = 0;
        while let Some(Ok(item)) = picky.recv().await {
            if let mesh_protocol::ws::Incoming::Message(Message::TaskAssign(a)) = item {
                picky
                    .send(TaskReject::new(a.task_id, "not today"))
                    .await
                    .unwrap();
                rejected += 1;
            }
        }
        rejected
    });
    m.wait_for_agents(1).await;
    let task = m
        .engine
        .submit(m.tenant, TaskSpec::new("work", json!({})))
        .await
        .unwrap();
    m.next_event(|e| matches!(e, Event::TaskAssigned { agent_name, .. } if agent_name == "picky"))
        .await;
    m.next_event(|e| {
        matches!(
            e,
            Event::TaskStatus {
                status: TaskStatus::Pending,
                ..
            }
        )
    })
    .await;
    let _willing = m.echo_agent("willing", &["work"]);
    let done = m.finished(task.id).await;
    assert_eq!(completed_by(&done), "willing");
    picky_task.abort();
}

/// An acceptance is written with the engine's batch of commands, not on its own: it
/// reaches the stores, and one followed at once by the result leaves the task
/// completed, once attempted.
#[tokio::test]
async fn acceptances_reach_the_stores_and_a_result_right_behind_one_is_kept() {
    let Some(m) = mesh().await else { return };
    let mut agent = connect(&m.client()).await.unwrap();
    agent.send(Hello::new("raw", ["work"])).await.unwrap();
    m.wait_for_agents(1).await;
    let next_assignment = async |agent: &mut mesh_protocol::ws::Connection| loop {
        if let Some(Ok(mesh_protocol::ws::Incoming::Message(Message::TaskAssign(a)))) =
            agent.recv().await
        {
            return a;
        }
    };
    let stored = async |id: mesh_core::TaskId, want: TaskStatus| {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let task = m.engine.task(m.tenant, id).await.unwrap().unwrap();
            if task.status() == want {
                return task;
            }
            assert!(tokio::time::Instant::now() < deadline, "stored {:?}", task.status());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };

    let first = m
        .engine
        .submit(m.tenant, TaskSpec::new("work", json!(1)))
        .await
        .unwrap();
    let assign = next_assignment(&mut agent).await;
    agent
        .send(mesh_protocol::TaskAccept::new(assign.task_id))
        .await
        .unwrap();
    stored(first.id, TaskStatus::Accepted).await;
    agent
        .send(mesh_protocol::TaskComplete::new(assign.task_id, json!("one")))
        .await
        .unwrap();
    assert_eq!(stored(first.id, TaskStatus::Completed).await.output, Some(json!("one")));

    let second = m
        .engine
        .submit(m.tenant, TaskSpec::new("work", json!(2)))
        .await
        .unwrap();
    let assign = next_assignment(&mut agent).await;
    let sender = agent.sender();
    sender.try_send(mesh_protocol::TaskAccept::new(assign.task_id)).unwrap();
    sender
        .try_send(mesh_protocol::TaskComplete::new(assign.task_id, json!("two")))
        .unwrap();
    let done = stored(second.id, TaskStatus::Completed).await;
    assert_eq!((done.output, done.attempts), (Some(json!("two")), 1));
}

#[tokio::test]
async fn a_task_that_keeps_timing_out_is_retried_then_timed_out() {
    let Some(m) = mesh().await else { return };
    let starts = Arc::new(AtomicUsize::new(0));
    let counter = starts.clone();
    let _stuck = m.agent("stuck", &["work"], 4, move |_, _| {
        counter.fetch_add(1, Ordering::SeqCst);
        async {
            std::future::pending::<()>().await;
            Ok(json!({}))
        }
    });
    m.wait_for_agents(1).await;
    let spec = TaskSpec::new("work", json!({}))
        .timeout(Duration::from_millis(300))
        .max_attempts(2);
    let task = m.engine.submit(m.tenant, spec).await.unwrap();
    let done = m.finished(task.id).await;
    assert_eq!(done.status(), TaskStatus::TimedOut);
    assert_eq!(done.attempts, 2);
    assert_eq!(starts.load(Ordering::SeqCst), 2, "each attempt ran once");
}

#[tokio::test]
async fn retryable_failures_are_retried_and_permanent_ones_are_not() {
    let Some(m) = mesh().await else { return };
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let _flaky = m.agent("flaky", &["flaky"], 4, move |_, _| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                Err(TaskError::retryable("try again"))
            } else {
                Ok(json!({"by": "flaky", "n": n}))
            }
        }
    });
    let _broken = m.agent("broken", &["broken"], 4, |_, _| async {
        Err(TaskError::permanent("no such file"))
    });
    m.wait_for_agents(2).await;
    let ok = m
        .engine
        .submit(m.tenant, TaskSpec::new("flaky", json!({})))
        .await
        .unwrap();
    let ok = m.finished(ok.id).await;
    assert_eq!((completed_by(&ok), ok.attempts), ("flaky", 2));
    let bad = m
        .engine
        .submit(m.tenant, TaskSpec::new("broken", json!({})))
        .await
        .unwrap();
    let bad = m.finished(bad.id).await;
    assert_eq!(
        (bad.status(), bad.attempts, bad.error.as_deref()),
        (TaskStatus::Failed, 1, Some("no such file"))
    );
}

#[tokio::test]
async fn an_agent_delegates_a_sub_task_and_gets_its_result() {
    let Some(m) = mesh().await else { return };
    let _writer = m.agent("writer", &["write"], 2, |task, ctx| async move {
        let update = ctx
            .delegate("research", json!({"topic": task.input["topic"]}), vec![])
            .await
            .map_err(|e| TaskError::retryable(e.to_string()))?;
        Ok(json!({"by": "writer", "research": update.output, "child_status": format!("{:?}", update.status)}))
    });
    let _researcher = m.agent("researcher", &["research"], 2, |task, _| async move {
        Ok(json!({"facts": format!("about {}", task.input["topic"].as_str().unwrap_or(""))}))
    });
    m.wait_for_agents(2).await;
    let task = m
        .engine
        .submit(m.tenant, TaskSpec::new("write", json!({"topic": "bees"})))
        .await
        .unwrap();
    let done = m.finished(task.id).await;
    assert_eq!(completed_by(&done), "writer");
    let output = done.output.unwrap();
    assert_eq!(output["research"], json!({"facts": "about bees"}));
    assert_eq!(output["child_status"], "Completed");
    assert_eq!(done.children.len(), 1);
    let child = m
        .engine
        .task(m.tenant, done.children[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (child.parent, child.kind.as_str()),
        (Some(done.id), "research")
    );
}

#[tokio::test]
async fn cancelling_a_running_task_tells_its_agent() {
    let Some(mut m) = mesh().await else { return };
    let (_slow, aborted) = m.stoppable_agent("slow", &["work"]);
    m.wait_for_agents(1).await;
    let task = m
        .engine
        .submit(m.tenant, TaskSpec::new("work", json!({})))
        .await
        .unwrap();
    m.next_event(|e| matches!(e, Event::TaskAssigned { .. }))
        .await;
    let cancelled = m.engine.cancel(m.tenant, task.id).await.unwrap();
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    for _ in 0..200 {
        if aborted.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        aborted.load(Ordering::SeqCst),
        1,
        "the agent stopped the task"
    );
    // The agent's slot is free again.
    let next = m
        .engine
        .submit(m.tenant, TaskSpec::new("work", json!({})))
        .await
        .unwrap();
    m.next_event(|e| matches!(e, Event::TaskAssigned { task, .. } if *task == next.id))
        .await;
}

#[tokio::test]
async fn the_upgrade_demands_a_key_with_the_agent_scope() {
    let Some(m) = mesh().await else { return };
    let err =
        connect(&mesh_protocol::ws::ClientConfig::new(m.url.clone()).retry(Default::default(), 1))
            .await
            .unwrap_err();
    assert!(
        matches!(err, mesh_protocol::Error::HandshakeRefused { status: 401 }),
        "{err}"
    );
    let err = connect(&m.client().api_key("mesh_wrong_key_wrong_key"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, mesh_protocol::Error::HandshakeRefused { status: 401 }),
        "{err}"
    );
    let (reader, _) = m
        .engine
        .create_api_key(m.tenant, "reader", vec![mesh_core::Scope::Read], None)
        .await
        .unwrap();
    let err = connect(&m.client().api_key(reader)).await.unwrap_err();
    assert!(
        matches!(err, mesh_protocol::Error::HandshakeRefused { status: 403 }),
        "{err}"
    );
}

#[tokio::test]
async fn tenants_never_see_each_others_agents_or_tasks() {
    let Some(m) = mesh().await else { return };
    let _a = m.echo_agent("a", &["work"]);
    m.wait_for_agents(1).await;
    let other = mesh_core::TenantId::new();
    let theirs = m
        .engine
        .submit(other, TaskSpec::new("work", json!({})))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t = m.engine.task(other, theirs.id).await.unwrap().unwrap();
    assert_eq!(
        t.status(),
        TaskStatus::Pending,
        "tenant A's agent does not run tenant B's task"
    );
    assert!(m.engine.task(m.tenant, theirs.id).await.unwrap().is_none());
    assert!(m.engine.agents(other).await.unwrap().is_empty());
}
