//! Shared documents through the hub: several real WebSocket agents edit one text and
//! one state document at once — random edits, a disconnect with offline edits and a
//! reconnect mid-stream, one agent joining late — and every replica, the mesh's and
//! the stored copy converge; a server restarted on the same SQLite file or PostgreSQL
//! database serves the same documents. Plus the refusals: malformed, oversized and
//! unopened updates change nothing; and mesh-protocol's agent runtime as a document
//! client.
//!
//! Long on purpose: one scenario, its editor and its checks read best in one place.

#![cfg(all(feature = "sqlite", feature = "postgres"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use mesh_core::crdt::{ReplicaId, StateCrdt, StateOp, StateValue, TextDoc, TextOp, VectorClock};
use mesh_core::domain::{DocKind, SharedDocId};
use mesh_core::shared_docs::{DocLimits, Edit, SharedDocs, state_content};
use mesh_core::testing::{client_config, serve_hub_with};
use mesh_core::{Engine, EngineConfig, MemoryStores, Scope, Stores, TaskSpec, TenantId};
use mesh_protocol::ws::{
    AgentContext, Connection, DocEvent, Incoming, TaskError, TaskFuture, connect, run_agent,
};
use mesh_protocol::{DocOpen, DocUpdate, ErrorMessage, Hello, Message};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

/// How long any one wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// One editor: its replicas outlive its connections.
struct Editor {
    text: TextDoc,
    state: StateCrdt,
    text_id: Uuid,
    state_id: Uuid,
    conn: Option<Connection>,
    /// Documents opened and not yet synced on the current connection.
    unsynced: usize,
}

impl Editor {
    fn new(replica: u64, text_id: Uuid, state_id: Uuid) -> Self {
        Self {
            text: TextDoc::new(ReplicaId(replica)),
            state: StateCrdt::new(ReplicaId(replica)),
            text_id,
            state_id,
            conn: None,
            unsynced: 0,
        }
    }

    /// Connects, says hello, opens both documents from the versions it has, and waits
    /// for both syncs (sending the mesh what it lacks).
    async fn connect(&mut self, url: &str, key: &str, name: &str) {
        let mut conn = connect(&client_config(url, key)).await.unwrap();
        conn.send(Hello::new(name, ["edit"])).await.unwrap();
        match next(&mut conn).await {
            Message::Welcome(_) => {}
            other => panic!("expected welcome, got {other:?}"),
        }
        let text_version = self.text.version().encode();
        let state_version = self.state.version().encode();
        conn.send(DocOpen::new(self.text_id, text_version))
            .await
            .unwrap();
        conn.send(DocOpen::new(self.state_id, state_version))
            .await
            .unwrap();
        self.conn = Some(conn);
        self.unsynced = 2;
        while self.unsynced > 0 {
            let message = next(self.conn.as_mut().unwrap()).await;
            self.absorb(message).await;
        }
    }

    /// Applies what the mesh sent.
    async fn absorb(&mut self, message: Message) {
        match message {
            Message::DocSync(sync) => {
                let theirs = VectorClock::decode(&sync.version).unwrap();
                let lacking = if sync.doc_id == self.text_id {
                    self.text.apply_update(&sync.update).unwrap();
                    (!self.text.version().le(&theirs)).then(|| self.text.update_since(&theirs))
                } else {
                    self.state.apply_update(&sync.update).unwrap();
                    (!self.state.version().le(&theirs)).then(|| self.state.update_since(&theirs))
                };
                if let Some(update) = lacking {
                    self.send(sync.doc_id, update).await;
                }
                self.unsynced = self.unsynced.saturating_sub(1);
            }
            Message::DocUpdate(update) if update.doc_id == self.text_id => {
                self.text.apply_update(&update.update).unwrap();
            }
            Message::DocUpdate(update) => {
                self.state.apply_update(&update.update).unwrap();
            }
            Message::Error(e) => panic!("the mesh refused: {e:?}"),
            _ => {}
        }
    }

    async fn send(&mut self, doc_id: Uuid, update: Vec<u8>) {
        if let Some(conn) = &self.conn {
            conn.send(DocUpdate::new(doc_id, update)).await.unwrap();
        }
    }

    /// Takes in whatever has arrived, without waiting.
    async fn drain(&mut self) {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            match tokio::time::timeout(Duration::ZERO, conn.recv()).await {
                Ok(Some(Ok(Incoming::Message(message)))) => self.absorb(message).await,
                Ok(Some(Ok(_))) => {}
                _ => return,
            }
        }
    }

    /// One random edit of the text, sent when connected.
    async fn edit_text(&mut self, rng: &mut StdRng, tag: &str) {
        let len = self.text.len();
        let op = if len > 20 && rng.random_bool(0.3) {
            let pos = rng.random_range(0..len - 5);
            self.text.delete(pos, rng.random_range(1..5))
        } else {
            let pos = rng.random_range(0..=len);
            self.text.insert(pos, &format!("{tag} "))
        };
        if let Some(op) = op {
            self.send(self.text_id, TextOp::encode_all(&[op])).await;
        }
    }

    /// One edit of the state: this editor's register, the shared counter and set.
    async fn edit_state(&mut self, step: usize, tag: &str) {
        let op: StateOp = match step % 3 {
            0 => self.state.set_value(
                &format!("{tag}/step"),
                StateValue::Int(step as i64),
                step as u64,
            ),
            1 => self.state.add("counter", 1),
            _ => self.state.insert("tags", &format!("{tag}-{step}")),
        };
        self.send(self.state_id, StateOp::encode_all(&[op])).await;
    }

    /// Receives until both replicas hold at least `target`'s versions.
    async fn catch_up(&mut self, target: &(VectorClock, VectorClock)) {
        while !(target.0.le(&self.text.version()) && target.1.le(self.state.version())) {
            let message = next(self.conn.as_mut().unwrap()).await;
            self.absorb(message).await;
        }
    }

    fn content(&self) -> (Value, Value) {
        (json!(self.text.text()), state_content(&self.state))
    }
}

async fn next(conn: &mut Connection) -> Message {
    loop {
        match tokio::time::timeout(PATIENCE, conn.recv()).await {
            Ok(Some(Ok(Incoming::Message(message)))) => return message,
            Ok(Some(Ok(_))) => {}
            other => panic!("the connection ended: {other:?}"),
        }
    }
}

/// The served pieces: an engine, its shared documents (compacting often), a hub.
struct Server {
    engine: Engine,
    docs: SharedDocs,
    url: String,
    hub: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.hub.abort();
    }
}

async fn serve<S: Stores>(stores: S) -> Server {
    let engine = Engine::start(EngineConfig::default(), stores)
        .await
        .unwrap();
    let mut limits = DocLimits::default();
    limits.compact_every = 40;
    let docs = SharedDocs::new(&engine, limits);
    let (url, hub) = serve_hub_with(&engine, docs.clone()).await;
    Server {
        engine,
        docs,
        url,
        hub,
    }
}

const EDITORS: usize = 4;
const STEPS: usize = 60;

/// Runs the scenario on `server`; returns the converged content and the ids.
async fn edit_together(server: &Server, tenant: TenantId, key: &str) -> (Value, Value, Uuid, Uuid) {
    let text = server
        .docs
        .create(tenant, "notes", DocKind::Text)
        .await
        .unwrap();
    let state = server
        .docs
        .create(tenant, "board", DocKind::State)
        .await
        .unwrap();
    let (text_id, state_id) = (*text.id.as_uuid(), *state.id.as_uuid());
    let (late_tx, late_rx) = watch::channel(false);
    let (target_tx, target_rx) = watch::channel(None::<(VectorClock, VectorClock)>);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut editors = Vec::new();
    for i in 0..EDITORS {
        let (url, key) = (server.url.clone(), key.to_owned());
        let (late_tx, mut late_rx, mut target_rx) =
            (late_tx.clone(), late_rx.clone(), target_rx.clone());
        let done_tx = done_tx.clone();
        editors.push(tokio::spawn(async move {
            let tag = format!("e{i}");
            let mut rng = StdRng::seed_from_u64(i as u64);
            let mut editor = Editor::new(1000 + i as u64, text_id, state_id);
            if i == EDITORS - 1 {
                // The late joiner waits for the others to be halfway.
                late_rx.wait_for(|half| *half).await.unwrap();
            }
            editor.connect(&url, &key, &tag).await;
            for step in 0..STEPS {
                if i == 0 && step == STEPS / 2 {
                    late_tx.send(true).unwrap();
                }
                if i == 1 && step == STEPS / 2 {
                    // Gone mid-stream: edits made offline reach the mesh on reconnect.
                    editor.conn = None;
                    for offline in 0..10 {
                        editor.edit_text(&mut rng, &format!("{tag}off")).await;
                        editor.edit_state(offline, &tag).await;
                    }
                    editor.connect(&url, &key, &tag).await;
                }
                editor.edit_text(&mut rng, &tag).await;
                if step % 2 == 0 {
                    editor.edit_state(step, &tag).await;
                }
                editor.drain().await;
                tokio::task::yield_now().await;
            }
            editor.edit_state(STEPS, &tag).await;
            let mine = (editor.text.version(), editor.state.version().clone());
            done_tx.send(mine.clone()).unwrap();
            let target = target_rx
                .wait_for(Option::is_some)
                .await
                .unwrap()
                .clone()
                .unwrap();
            editor.catch_up(&target).await;
            (mine, editor)
        }));
    }
    // Where everyone must arrive: the mesh's versions once it has every edit made.
    let mut made = Vec::new();
    while made.len() < EDITORS {
        made.push(done_rx.recv().await.unwrap());
    }
    let target = wait_for_mesh(server, tenant, text_id, state_id, &made).await;
    target_tx.send(Some(target.clone())).unwrap();
    let mut finals = Vec::new();
    for handle in editors {
        finals.push(
            tokio::time::timeout(PATIENCE, handle)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let mesh_text = server
        .docs
        .read(tenant, SharedDocId::from_uuid(text_id))
        .await
        .unwrap()
        .content;
    let mesh_state = server
        .docs
        .read(tenant, SharedDocId::from_uuid(state_id))
        .await
        .unwrap()
        .content;
    for ((mine, editor), i) in finals.iter().zip(0..) {
        assert!(
            mine.0.le(&target.0),
            "the mesh lacks some of editor {i}'s text edits"
        );
        assert!(
            mine.1.le(&target.1),
            "the mesh lacks some of editor {i}'s state edits"
        );
        let (text, state) = editor.content();
        assert_eq!(text, mesh_text, "editor {i}'s text");
        assert_eq!(state, mesh_state, "editor {i}'s state");
    }
    // Every add reached the counter; the offline edits (only they add tag e1-5) and the
    // late joiner's arrived.
    let adds_of = |steps: &mut dyn Iterator<Item = usize>| steps.filter(|s| s % 3 == 1).count();
    let adds = EDITORS * adds_of(&mut (0..STEPS).step_by(2)) + adds_of(&mut (0..10));
    assert_eq!(mesh_state["counter"], json!(adds));
    let tags = mesh_state["tags"].as_array().unwrap();
    assert!(tags.contains(&json!("e1-5")), "offline edits arrived");
    assert!(
        tags.contains(&json!("e3-2")),
        "the late joiner's edits arrived"
    );
    (mesh_text, mesh_state, text_id, state_id)
}

/// Waits until the mesh's replicas hold every edit the editors made (`made`: each
/// editor's text and state versions once it stopped); returns the mesh's versions.
async fn wait_for_mesh(
    server: &Server,
    tenant: TenantId,
    text_id: Uuid,
    state_id: Uuid,
    made: &[(VectorClock, VectorClock)],
) -> (VectorClock, VectorClock) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let text = server
        .docs
        .live(tenant, SharedDocId::from_uuid(text_id))
        .await
        .unwrap();
    let state = server
        .docs
        .live(tenant, SharedDocId::from_uuid(state_id))
        .await
        .unwrap();
    let (mut text_updates, _) = text.open(VectorClock::new()).await.unwrap();
    let (mut state_updates, _) = state.open(VectorClock::new()).await.unwrap();
    loop {
        let (_, t) = text.open(VectorClock::new()).await.unwrap();
        let (_, s) = state.open(VectorClock::new()).await.unwrap();
        let (t, s) = (
            VectorClock::decode(&t.version).unwrap(),
            VectorClock::decode(&s.version).unwrap(),
        );
        if made.iter().all(|(mt, ms)| mt.le(&t) && ms.le(&s)) {
            return (t, s);
        }
        // Woken by the next update to either document.
        let woken = tokio::time::timeout_at(deadline, async {
            tokio::select! {
                _ = text_updates.recv() => {}
                _ = state_updates.recv() => {}
            }
        });
        assert!(woken.await.is_ok(), "the mesh never got every edit");
    }
}

async fn refusal(conn: &mut Connection) -> (String, Option<String>) {
    match next(conn).await {
        Message::Error(ErrorMessage {
            code, reference, ..
        }) => (code, reference),
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn key_for(engine: &Engine, tenant: TenantId) -> String {
    let scopes = vec![Scope::Agent, Scope::Write, Scope::Read];
    engine
        .create_api_key(tenant, "editors", scopes, None)
        .await
        .unwrap()
        .0
}

/// A newcomer holding nothing gets exactly the stored content.
async fn newcomer_sees(server: &Server, key: &str, ids: (Uuid, Uuid), expected: (&Value, &Value)) {
    let mut editor = Editor::new(9_999, ids.0, ids.1);
    editor.connect(&server.url, key, "newcomer").await;
    let (text, state) = editor.content();
    assert_eq!(&text, expected.0);
    assert_eq!(&state, expected.1);
}

#[tokio::test]
async fn editors_converge_in_memory() {
    let server = serve(mesh_core::MemoryStores::new()).await;
    let tenant = TenantId::new();
    let key = key_for(&server.engine, tenant).await;
    let (text, state, text_id, state_id) = edit_together(&server, tenant, &key).await;
    newcomer_sees(&server, &key, (text_id, state_id), (&text, &state)).await;
}

#[tokio::test]
async fn editors_converge_and_a_restart_on_sqlite_serves_the_same() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("shared-docs-{}.db", Uuid::now_v7().simple()));
    let open = || async {
        let store = mesh_store::SqliteStore::open(&path).await.unwrap();
        mesh_core::SqliteStores::new(store).await.unwrap()
    };
    let tenant = TenantId::new();
    let server = serve(open().await).await;
    let key = key_for(&server.engine, tenant).await;
    let (text, state, text_id, state_id) = edit_together(&server, tenant, &key).await;
    drop(server);
    let restarted = serve(open().await).await;
    newcomer_sees(&restarted, &key, (text_id, state_id), (&text, &state)).await;
}

#[tokio::test]
async fn editors_converge_and_a_restart_on_postgres_serves_the_same() {
    let Some(url) = mesh_core::testing::fresh_database().await else {
        return;
    };
    let tenant = TenantId::new();
    let server = serve(mesh_core::testing::pg_stores(&url).await).await;
    let key = key_for(&server.engine, tenant).await;
    let (text, state, text_id, state_id) = edit_together(&server, tenant, &key).await;
    drop(server);
    // Another instance on the same database (the first one's stores still open).
    let other = serve(mesh_core::testing::pg_stores(&url).await).await;
    newcomer_sees(&other, &key, (text_id, state_id), (&text, &state)).await;
}

/// The reference runtime's `note` task: opens the document, appends its line through
/// a replica of its own, then waits for someone to end the text with "!".
fn note(task: mesh_protocol::TaskAssign, context: AgentContext) -> TaskFuture {
    Box::pin(async move {
        let failed = |e: String| TaskError::permanent(e);
        let doc: Uuid =
            serde_json::from_value(task.input["doc"].clone()).map_err(|e| failed(e.to_string()))?;
        let line = task.input["line"].as_str().unwrap_or_default().to_owned();
        let mut open = context
            .open_doc(doc, Vec::new())
            .await
            .map_err(|e| failed(e.to_string()))?;
        let mut replica = TextDoc::new(ReplicaId(rand::random::<u64>() | 1));
        let mut synced = false;
        while let Some(event) = open.next().await {
            match event {
                DocEvent::Sync(sync) => {
                    replica
                        .apply_update(&sync.update)
                        .map_err(|e| failed(e.to_string()))?;
                    if !synced {
                        synced = true;
                        let op = replica
                            .insert(replica.len(), &line)
                            .ok_or_else(|| failed("the line did not go in".into()))?;
                        open.send(TextOp::encode_all(&[op]))
                            .await
                            .map_err(|e| failed(e.to_string()))?;
                    }
                }
                DocEvent::Update(update) => {
                    replica
                        .apply_update(&update)
                        .map_err(|e| failed(e.to_string()))?;
                }
                DocEvent::Refused(e) => return Err(failed(format!("{}: {}", e.code, e.message))),
            }
            if replica.text().ends_with('!') {
                return Ok(json!({"text": replica.text()}));
            }
        }
        Err(failed("the document closed".into()))
    })
}

#[tokio::test]
async fn the_reference_agent_runtime_edits_a_document() {
    let server = serve(MemoryStores::new()).await;
    let tenant = TenantId::new();
    let key = key_for(&server.engine, tenant).await;
    let doc = server
        .docs
        .create(tenant, "notes", DocKind::Text)
        .await
        .unwrap()
        .id;
    let splice = |pos, insert: &str| Edit::Splice {
        pos,
        delete: 0,
        insert: insert.into(),
    };
    server
        .docs
        .edit(tenant, doc, vec![splice(0, "hello\n")])
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(run_agent(
        client_config(&server.url, &key),
        Hello::new("doc-agent", ["note"]),
        note,
        async move {
            let _ = stopped.await;
        },
    ));

    let input = json!({"doc": doc.as_uuid(), "line": "from the agent\n"});
    let task = server
        .engine
        .submit(tenant, TaskSpec::new("note", input))
        .await
        .unwrap();
    // The agent's line reaches the mesh (its sync came first: it appends after "hello").
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while server.docs.read(tenant, doc).await.unwrap().content != json!("hello\nfrom the agent\n") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent's edit never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // An edit made elsewhere reaches the agent as an update.
    let end = "hello\nfrom the agent\n".len();
    let done = server
        .docs
        .edit(tenant, doc, vec![splice(end, "!")])
        .await
        .unwrap();
    let task = tokio::time::timeout(PATIENCE, server.engine.wait(tenant, task.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.output, Some(json!({"text": done.content})), "{task:?}");
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
}

/// Malformed, out-of-sync, oversized, unopened and unknown-document updates are refused with an
/// error naming the document, and change nothing; the connection goes on serving.
#[tokio::test]
async fn bad_updates_are_refused_and_change_nothing() {
    let engine = Engine::start(EngineConfig::default(), mesh_core::MemoryStores::new())
        .await
        .unwrap();
    let mut limits = DocLimits::default();
    limits.max_update_bytes = 256;
    limits.max_text_chars = 100;
    let docs = SharedDocs::new(&engine, limits);
    let (url, _hub) = serve_hub_with(&engine, docs.clone()).await;
    let tenant = TenantId::new();
    let key = key_for(&engine, tenant).await;
    let doc = docs.create(tenant, "small", DocKind::Text).await.unwrap();
    let id = *doc.id.as_uuid();

    let mut conn = connect(&client_config(&url, &key)).await.unwrap();
    conn.send(Hello::new("prober", ["x"])).await.unwrap();
    next(&mut conn).await;
    // Before opening.
    conn.send(DocUpdate::new(id, vec![1])).await.unwrap();
    assert_eq!(
        refusal(&mut conn).await,
        ("doc_not_open".into(), Some(id.to_string()))
    );
    // An unknown document.
    let unknown = Uuid::now_v7();
    conn.send(DocOpen::new(unknown, Vec::new())).await.unwrap();
    assert_eq!(refusal(&mut conn).await.0, "doc_not_found");
    conn.send(DocOpen::new(id, Vec::new())).await.unwrap();
    assert!(matches!(next(&mut conn).await, Message::DocSync(_)));
    let mut local = TextDoc::new(ReplicaId(5));
    let good = TextOp::encode_all(&[local.insert(0, "hello").unwrap()]);
    // Malformed: cut short, and garbage.
    for bad in [good[..good.len() - 2].to_vec(), vec![0xff; 40]] {
        conn.send(DocUpdate::new(id, bad)).await.unwrap();
        assert_eq!(refusal(&mut conn).await.0, "bad_update");
    }
    // A state update sent to a text document.
    let mut state = StateCrdt::new(ReplicaId(5));
    let wrong_kind = StateOp::encode_all(&[state.add("n", 1)]);
    conn.send(DocUpdate::new(id, wrong_kind)).await.unwrap();
    assert_eq!(refusal(&mut conn).await.0, "bad_update");
    // Over the update size limit, and over the document size limit.
    let big = TextOp::encode_all(&[TextDoc::new(ReplicaId(6))
        .insert(0, &"x".repeat(300))
        .unwrap()]);
    conn.send(DocUpdate::new(id, big)).await.unwrap();
    assert_eq!(refusal(&mut conn).await.0, "update_too_large");
    let long = TextOp::encode_all(&[TextDoc::new(ReplicaId(7))
        .insert(0, &"y".repeat(150))
        .unwrap()]);
    conn.send(DocUpdate::new(id, long)).await.unwrap();
    assert_eq!(refusal(&mut conn).await.0, "doc_too_large");
    // Out of sync: an edit made after one the mesh has not had (it would wait, and
    // no snapshot carries what waits).
    let after = TextOp::encode_all(&[local.insert(5, " world").unwrap()]);
    conn.send(DocUpdate::new(id, after.clone())).await.unwrap();
    assert_eq!(
        refusal(&mut conn).await,
        ("doc_out_of_sync".into(), Some(id.to_string()))
    );
    // Nothing of that changed the document; good updates still go through.
    assert_eq!(docs.read(tenant, doc.id).await.unwrap().content, json!(""));
    conn.send(DocUpdate::new(id, good)).await.unwrap();
    conn.send(DocUpdate::new(id, after)).await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while docs.read(tenant, doc.id).await.unwrap().content != json!("hello world") {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
}

/// The protocol's document vectors carry real mesh-crdt bytes: the update of
/// `doc_update`/`doc_sync` applies to "i!" and leads to the version `doc_sync` and
/// `doc_open` carry.
#[test]
fn the_protocol_vectors_carry_mesh_crdt_updates_and_versions() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    let text = include_str!("../../mesh-protocol/tests/vectors/frames.json");
    let vectors: Value = serde_json::from_str(text).unwrap();
    let vector = |name: &str| {
        vectors["vectors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no vector {name}"))["frames"][0]["json"]
            .clone()
    };
    let bytes = |v: &Value| STANDARD.decode(v.as_str().unwrap()).unwrap();
    let sync = vector("doc_sync");
    let mut doc = TextDoc::new(ReplicaId(1));
    assert_eq!(doc.apply_update(&bytes(&sync["update"])).unwrap(), 3);
    assert_eq!(doc.text(), "i!");
    let version = VectorClock::decode(&bytes(&sync["version"])).unwrap();
    assert_eq!(doc.version(), version);
    assert_eq!(
        bytes(&vector("doc_update")["update"]),
        bytes(&sync["update"])
    );
    assert_eq!(bytes(&vector("doc_open")["version"]), version.encode());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// The fuzz target's checks (`mesh-core/fuzz`), on random inputs: refused updates
    /// change nothing, accepted ones are all stored.
    #[test]
    fn what_peers_send_is_applied_whole_or_not_at_all(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(mesh_core::testing::check_doc_updates(&input));
    }
}
