//! Several engines on one PostgreSQL, joined through LISTEN/NOTIFY: tasks submitted on
//! one run on another's agents, cancels and deregistrations reach the engine holding
//! the agent, two engines never hand one task to two agents, and a sweep recovers the
//! tasks of an engine that died — also with each engine split over several engine
//! tasks. Needs `MESH_TEST_DATABASE_URL`.

#![cfg(feature = "postgres")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mesh_core::testing as common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Mesh, completed_by};
use mesh_core::{AgentStatus, EngineConfig, Event, TaskSpec, TaskStatus};
use serde_json::json;

fn clustered() -> EngineConfig {
    common::fast_config().clustered(true)
}

/// Two clustered engines on a fresh database, each with its hub, sharing a key.
async fn pair() -> Option<(Mesh, Mesh)> {
    pair_of(clustered()).await
}

/// [`pair`] with engines started on `config`.
async fn pair_of(config: EngineConfig) -> Option<(Mesh, Mesh)> {
    let url = common::fresh_database().await?;
    let first_stores = common::pg_stores(&url).await;
    let first_store = first_stores.store().clone();
    let first = common::mesh_on(config.clone(), first_stores).await;
    let second_stores = common::pg_stores(&url).await;
    let second_store = second_stores.store().clone();
    let second =
        common::mesh_with_key(config, second_stores, first.tenant, first.key.clone()).await;
    mesh_core::cluster::join(&first.engine, &first_store)
        .await
        .unwrap();
    mesh_core::cluster::join(&second.engine, &second_store)
        .await
        .unwrap();
    Some((first, second))
}

#[tokio::test]
async fn a_task_submitted_on_one_engine_runs_on_anothers_agent() {
    let Some((a, b)) = pair().await else { return };
    let _agent = a.echo_agent("on-a", &["echo"]);
    a.wait_for_agents(1).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            b.engine
                .submit(b.tenant, TaskSpec::new("echo", json!(n)))
                .await
                .unwrap()
                .id,
        );
    }
    for id in ids {
        // The submitter's own `wait` ends when the other engine finishes the task.
        let done = b.finished(id).await;
        assert_eq!(completed_by(&done), "on-a");
        assert_eq!(done.attempts, 1);
    }
}

#[tokio::test]
async fn two_engines_with_agents_never_run_a_task_twice() {
    let Some((a, b)) = pair().await else { return };
    let runs = Arc::new(AtomicUsize::new(0));
    let mut agents = Vec::new();
    for (mesh, name) in [(&a, "a"), (&b, "b")] {
        let runs = runs.clone();
        agents.push(mesh.agent(name, &["count"], 8, move |_, _| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(json!({"by": name}))
            }
        }));
    }
    a.wait_for_agents(2).await;
    let mut ids = Vec::new();
    for n in 0..40 {
        let submitter = if n % 2 == 0 { &a } else { &b };
        ids.push(
            submitter
                .engine
                .submit(a.tenant, TaskSpec::new("count", json!(n)))
                .await
                .unwrap()
                .id,
        );
    }
    for id in &ids {
        assert_eq!(a.finished(*id).await.status(), TaskStatus::Completed);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        runs.load(Ordering::SeqCst),
        ids.len(),
        "each task ran exactly once"
    );
}

#[tokio::test]
async fn engines_split_over_several_tasks_route_each_tenant_across_instances() {
    let Some((a, b)) = pair_of(clustered().shards(3)).await else {
        return;
    };
    // One tenant per engine task (both engines split tenants the same way), each
    // with an agent on A's hub only; every task is submitted on B.
    let mut tenants = vec![a.tenant];
    while tenants.len() < 3 {
        let tenant = mesh_core::TenantId::new();
        if tenants
            .iter()
            .all(|t| a.engine.shard_of(*t) != a.engine.shard_of(tenant))
        {
            tenants.push(tenant);
        }
    }
    assert_eq!(b.engine.shard_of(tenants[1]), a.engine.shard_of(tenants[1]));
    let runs = Arc::new(AtomicUsize::new(0));
    let mut agents = Vec::new();
    for (i, tenant) in tenants.iter().enumerate() {
        let scopes = vec![mesh_core::Scope::Agent];
        let (key, _) = a
            .engine
            .create_api_key(*tenant, "agent", scopes, None)
            .await
            .unwrap();
        let (name, runs) = (format!("agent-{i}"), runs.clone());
        let config = common::client_config(&a.url, &key);
        agents.push(common::agent_at(
            config,
            &name.clone(),
            &["work"],
            4,
            move |_, _| {
                let (name, runs) = (name.clone(), runs.clone());
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(json!({"by": name}))
                }
            },
        ));
        common::wait_for_agents(&a.engine, *tenant, 1).await;
        // B hears of the agent through the database.
        common::wait_for_agents(&b.engine, *tenant, 1).await;
    }
    let mut ids = Vec::new();
    for (i, tenant) in tenants.iter().enumerate() {
        for n in 0..10 {
            let spec = TaskSpec::new("work", json!(n));
            ids.push((i, *tenant, b.engine.submit(*tenant, spec).await.unwrap().id));
        }
    }
    for (i, tenant, id) in &ids {
        let done = tokio::time::timeout(Duration::from_secs(15), b.engine.wait(*tenant, *id))
            .await
            .expect("finished in time")
            .unwrap();
        assert_eq!(completed_by(&done), format!("agent-{i}"));
        assert_eq!(done.attempts, 1);
    }
    assert_eq!(runs.load(Ordering::SeqCst), ids.len(), "each task ran once");
}

#[tokio::test]
async fn a_cancel_on_one_engine_stops_the_agent_on_another() {
    let Some((mut a, b)) = pair().await else {
        return;
    };
    let (_slow, stopped) = a.stoppable_agent("slow", &["work"]);
    a.wait_for_agents(1).await;
    let task = b
        .engine
        .submit(b.tenant, TaskSpec::new("work", json!({})))
        .await
        .unwrap();
    a.next_event(|e| matches!(e, Event::TaskAssigned { .. }))
        .await;
    let cancelled = b.engine.cancel(b.tenant, task.id).await.unwrap();
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    for _ in 0..300 {
        if stopped.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        1,
        "the agent was told to stop"
    );
    // Its slot is free again: the next task runs there.
    let _fast = a.echo_agent("fast", &["other"]);
    let next = b
        .engine
        .submit(b.tenant, TaskSpec::new("other", json!({})))
        .await
        .unwrap();
    assert_eq!(completed_by(&b.finished(next.id).await), "fast");

    // Deregistering on B closes the connection held by A.
    let agents = b.engine.agents(b.tenant).await.unwrap();
    let slow = agents.iter().find(|x| x.name == "slow").unwrap();
    assert!(b.engine.deregister(b.tenant, slow.id).await.unwrap());
    a.next_event(|e| matches!(e, Event::AgentDisconnected { agent, .. } if *agent == slow.id))
        .await;
}

#[tokio::test]
async fn a_sweep_recovers_the_tasks_of_an_engine_that_died() {
    let Some((a, b)) = pair().await else { return };
    let _stuck = a.agent("doomed", &["work"], 1, |_, _| async {
        tokio::time::sleep(Duration::from_secs(600)).await;
        Ok(json!({}))
    });
    a.wait_for_agents(1).await;
    let spec = TaskSpec::new("work", json!({})).timeout(Duration::from_millis(200));
    let task = b.engine.submit(b.tenant, spec).await.unwrap();
    for _ in 0..300 {
        if b.engine
            .task(b.tenant, task.id)
            .await
            .unwrap()
            .unwrap()
            .status()
            .is_in_flight()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Engine A stops: its agent is recorded offline, and nothing times the task out.
    drop(_stuck);
    a.engine.shutdown().await;
    drop(a);
    assert!(b.engine.agents(b.tenant).await.unwrap().is_empty());
    // Not stale yet: the sweep leaves it alone.
    assert_eq!(b.engine.sweep(Duration::from_secs(60)).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.engine.sweep(Duration::ZERO).await.unwrap(), 1);
    // Back to pending, then run by an agent on B.
    let _rescuer = b.echo_agent("rescuer", &["work"]);
    let done = b.finished(task.id).await;
    assert_eq!(completed_by(&done), "rescuer");
    assert_eq!(done.attempts, 2);
}

#[tokio::test]
async fn a_sweep_marks_offline_the_agents_no_engine_vouches_for() {
    let Some(url) = common::fresh_database().await else {
        return;
    };
    let stores = common::pg_stores(&url).await;
    let store = stores.store().clone();
    let mesh = common::mesh_on(clustered(), stores).await;
    let _alive = mesh.echo_agent("alive", &["x"]);
    mesh.wait_for_agents(1).await;
    // An agent whose engine died long ago, as the database remembers it.
    let mut ghost = mesh_core::Agent::new(mesh.tenant, "ghost", ["x"]);
    for step in [AgentStatus::Starting, AgentStatus::Active] {
        ghost.transition(step).unwrap();
    }
    ghost.last_seen_at = chrono::Utc::now() - chrono::Duration::minutes(10);
    let agents: mesh_store::PgRepository<mesh_core::Agent> = store.repository().await.unwrap();
    mesh_store::Repository::create(&agents, &mesh.tenant.to_string(), &ghost)
        .await
        .unwrap();
    assert_eq!(mesh.engine.agents(mesh.tenant).await.unwrap().len(), 2);
    assert_eq!(mesh.engine.sweep(Duration::from_secs(60)).await.unwrap(), 1);
    let active = mesh.engine.agents(mesh.tenant).await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].name, "alive");
    let ghost = mesh
        .engine
        .agent(mesh.tenant, ghost.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ghost.status(), AgentStatus::Offline);
}

/// Toward hardening item 7 (the LISTEN stream must survive database errors): the
/// listening connections are terminated, as a PostgreSQL restart would; a cancel made
/// on the other instance meanwhile still stops the agent, and both instances report
/// listening again.
#[tokio::test]
async fn a_lost_listen_connection_is_re_established_and_caught_up() {
    let Some(url) = common::fresh_database().await else {
        return;
    };
    let (a_stores, b_stores) = (common::pg_stores(&url).await, common::pg_stores(&url).await);
    let (a_store, b_store) = (a_stores.store().clone(), b_stores.store().clone());
    let mut a = common::mesh_on(clustered(), a_stores).await;
    let b = common::mesh_with_key(clustered(), b_stores, a.tenant, a.key.clone()).await;
    mesh_core::cluster::join(&a.engine, &a_store).await.unwrap();
    mesh_core::cluster::join(&b.engine, &b_store).await.unwrap();
    let (_slow, stopped) = a.stoppable_agent("slow", &["work"]);
    a.wait_for_agents(1).await;
    let task = b
        .engine
        .submit(b.tenant, TaskSpec::new("work", json!({})))
        .await
        .unwrap();
    a.next_event(|e| matches!(e, Event::TaskAssigned { .. }))
        .await;
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(terminated.len(), 2, "both instances listen");
    // The cancel's notification may fall in the gap; the catch-up finds it then.
    let cancelled = b.engine.cancel(b.tenant, task.id).await.unwrap();
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    for _ in 0..1000 {
        if stopped.load(Ordering::SeqCst) == 1 && a.engine.is_listening() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        stopped.load(Ordering::SeqCst),
        1,
        "the agent was told to stop"
    );
    assert!(a.engine.is_listening() && b.engine.is_listening());
    // And notifications flow again: a task submitted on B runs on A's agent.
    let _fast = a.echo_agent("fast", &["other"]);
    let next = b
        .engine
        .submit(b.tenant, TaskSpec::new("other", json!({})))
        .await
        .unwrap();
    assert_eq!(completed_by(&b.finished(next.id).await), "fast");
    admin.close().await;
}

/// Hardening issue, item 16: liveness compared timestamps written by different
/// machines' clocks. An instance whose clock runs ten minutes slow vouches for its
/// agents on the database's clock, so another instance's sweep keeps them active.
#[tokio::test]
async fn hardening_16_liveness_uses_the_database_clock() {
    let Some(url) = common::fresh_database().await else {
        return;
    };
    let slow_clock = || chrono::Utc::now() - chrono::Duration::minutes(10);
    let skewed = clustered().wall_clock(slow_clock);
    let a = common::mesh_on(skewed, common::pg_stores(&url).await).await;
    let b_stores = common::pg_stores(&url).await;
    let b = common::mesh_with_key(clustered(), b_stores, a.tenant, a.key.clone()).await;
    let _agent = a.echo_agent("on-slow-clock", &["x"]);
    a.wait_for_agents(1).await;
    assert_eq!(b.engine.sweep(Duration::ZERO).await.unwrap(), 0);
    let agents = b.engine.agents(b.tenant).await.unwrap();
    assert_eq!(agents.len(), 1, "still active");
    let seen = agents[0].last_seen_at;
    let skew = (chrono::Utc::now() - seen).num_seconds().abs();
    assert!(skew < 60, "last_seen_at on the database's clock: {seen}");
}

/// Hardening issue, item 7: the LISTEN stream ended for good on the first database
/// error, and an instance then served stale state. Instance A runs as a database role
/// of its own, which is locked out (all its connections terminated, new ones refused)
/// while B cancels a task A's agent holds: A misses that notification for certain.
/// Readiness reports the gap, and once A may connect again it listens again, catches
/// up, and stops its agent.
/// A role of its own on a test database, so one instance can be locked out of it (its
/// connections cut, new ones refused) while the rest go on.
struct Lockout {
    admin: sqlx::PgPool,
    role: String,
    /// The database's URL as that role.
    url: String,
}

impl Lockout {
    async fn new(url: &str) -> Self {
        let admin = sqlx::PgPool::connect(url).await.unwrap();
        let role = format!("mesh_a_{}", uuid::Uuid::now_v7().simple());
        let owner = url.split("://").nth(1).unwrap().split('@').next().unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE ROLE {role} LOGIN IN ROLE {owner}"
        )))
        .execute(&admin)
        .await
        .unwrap();
        let (scheme_user, host_db) = url.split_once('@').unwrap();
        let (scheme, _) = scheme_user.split_once("://").unwrap();
        let url = format!("{scheme}://{role}@{host_db}");
        Self { admin, role, url }
    }

    /// Locks the role out (cutting its connections), or lets it back in.
    async fn lock(&self, out: bool) {
        let word = if out { "NOLOGIN" } else { "LOGIN" };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER ROLE {} {word}",
            self.role
        )))
        .execute(&self.admin)
        .await
        .unwrap();
        if out {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            )
            .bind(&self.role)
            .execute(&self.admin)
            .await
            .unwrap();
        }
    }
}

#[tokio::test]
async fn readiness_names_the_store_while_the_database_is_out_of_reach_and_recovers() {
    let Some(url) = common::fresh_database().await else {
        return;
    };
    // The schema (and the vector extension) made as the owner; then the locked role.
    drop(common::pg_stores(&url).await);
    let lockout = Lockout::new(&url).await;
    let engine =
        mesh_core::Engine::start(common::fast_config(), common::pg_stores(&lockout.url).await)
            .await
            .unwrap();
    let services = mesh_core::services::Services::in_memory(engine);
    let (addr, _server) = common::serve_app(services, mesh_core::app::AppConfig::default()).await;
    let http = reqwest::Client::new();
    let ready = || {
        let request = http.get(format!("http://{addr}/readyz")).send();
        async move {
            let response = request.await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let until = |want: u16| async move {
        let started = std::time::Instant::now();
        loop {
            let (status, body) = ready().await;
            if status == want {
                return body;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let body = until(200).await;
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"].as_array().unwrap().len(), 7);

    lockout.lock(true).await;
    let body = until(503).await;
    assert_eq!(body["code"], "not_ready");
    assert!(
        body["message"].as_str().unwrap().starts_with("store:"),
        "{body}"
    );
    let store = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "store")
        .unwrap();
    assert_eq!(store["ok"], false);

    lockout.lock(false).await;
    until(200).await;
}

#[tokio::test]
async fn hardening_7_an_instance_locked_out_of_the_database_catches_up_when_back() {
    let Some(url) = common::fresh_database().await else {
        return;
    };
    let b_stores = common::pg_stores(&url).await;
    let b_store = b_stores.store().clone();
    let lockout = Lockout::new(&url).await;
    let a_url = lockout.url.clone();
    let a_stores = common::pg_stores(&a_url).await;
    let a_store = a_stores.store().clone();
    let mut a = common::mesh_on(clustered(), a_stores).await;
    let b = common::mesh_with_key(clustered(), b_stores, a.tenant, a.key.clone()).await;
    mesh_core::cluster::join(&a.engine, &a_store).await.unwrap();
    mesh_core::cluster::join(&b.engine, &b_store).await.unwrap();
    let (_slow, stopped) = a.stoppable_agent("slow", &["work"]);
    a.wait_for_agents(1).await;
    let task = b
        .engine
        .submit(b.tenant, TaskSpec::new("work", json!({})))
        .await
        .unwrap();
    a.next_event(|e| matches!(e, Event::TaskAssigned { .. }))
        .await;

    lockout.lock(true).await;
    let started = std::time::Instant::now();
    while a.engine.is_listening() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the lost listener is not reported"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cancelled = b.engine.cancel(b.tenant, task.id).await.unwrap();
    assert_eq!(cancelled.status(), TaskStatus::Cancelled);
    assert_eq!(stopped.load(Ordering::SeqCst), 0, "A cannot have heard it");

    lockout.lock(false).await;
    let started = std::time::Instant::now();
    while stopped.load(Ordering::SeqCst) == 0 || !a.engine.is_listening() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "A never caught up on the cancel it missed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_key_revoked_on_one_engine_is_refused_on_another_and_its_sessions_closed() {
    let Some((a, mut b)) = pair().await else {
        return;
    };
    let scopes = vec![mesh_core::Scope::Agent, mesh_core::Scope::Read];
    let (key, record) = a
        .engine
        .create_api_key(a.tenant, "doomed", scopes, None)
        .await
        .unwrap();
    // B's gate has the key cached, and an agent holds a session on B's hub with it.
    let gate = mesh_core::http::Gate::new(b.engine.clone(), Default::default());
    gate.authenticate(Some(&key)).await.unwrap();
    let _agent = common::echo_agent_at(&b.url, &key, "doomed-agent", &["echo"]);
    b.wait_for_agents(1).await;

    let revoked = a.engine.revoke_api_key(a.tenant, record.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    // B hears of it and closes the session at once (the agent's retries are refused).
    b.next_event(|e| matches!(e, Event::AgentDisconnected { .. }))
        .await;
    assert!(matches!(
        gate.authenticate(Some(&key)).await,
        Err(mesh_core::http::AuthError::UnknownKey)
    ));
    assert!(b.engine.authenticate(&key).await.unwrap().is_none());
    // The listing still shows it, revoked; the other key works on both.
    let keys = b.engine.api_keys(b.tenant).await.unwrap();
    let listed = keys.iter().find(|k| k.id == record.id).unwrap();
    assert!(!listed.is_active());
    assert!(gate.authenticate(Some(&b.key)).await.is_ok());
}
