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
