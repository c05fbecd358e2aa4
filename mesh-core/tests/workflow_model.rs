//! Random definitions — sequences with conditional edges, parallel branches, maps,
//! timers, interrupts and signals — run by the workflow runtime (with a real engine and
//! agent) end on the same state as a small reference interpreter written separately,
//! here, in the most direct recursive style.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use mesh_core::protocol::Hello;
use mesh_core::testing::fast_config;
use mesh_core::tools::ToolRegistry;
use mesh_core::workflow::{
    Action, Compare, Condition, Edge, Graph, MapStep, Next, Reducer, RunStatus, StartRequest,
    StateKey, Step, TaskStep, Wait, WorkflowConfig, WorkflowDefinition, Workflows, apply, render,
};
use mesh_core::{Engine, MemoryStores, TenantId};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const KEYS: [&str; 4] = ["a", "b", "c", "d"];

/// What the agent (and the reference) compute for a step: a short digest of its input.
fn work(input: &Value) -> Value {
    let text = input.to_string();
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    json!(format!("h{:x}", h % 1_000_000))
}

fn interrupt_value(step: &str) -> Value {
    json!(format!("human:{step}"))
}

fn signal_value(step: &str) -> Value {
    json!(format!("signal:{step}"))
}

/// A tree of steps before names and edges are given.
#[derive(Debug, Clone)]
enum Shape {
    Task { reads: usize, writes: usize },
    Timer { writes: usize },
    Interrupt { writes: usize },
    Signal { writes: usize },
    Parallel(Vec<Vec<Shape>>),
    Map(Vec<Shape>),
}

fn shape(depth: u32, top: bool) -> BoxedStrategy<Shape> {
    let leaf = prop_oneof![
        4 => (0..5usize, 0..4usize).prop_map(|(reads, writes)| Shape::Task { reads, writes }),
        1 => (0..4usize).prop_map(|writes| Shape::Timer { writes }),
        1 => (0..4usize).prop_map(|writes| Shape::Interrupt { writes }),
    ];
    // Signals only at the top level, where each step runs once (one signal each).
    let leaf = if top {
        prop_oneof![4 => leaf, 1 => (0..4usize).prop_map(|writes| Shape::Signal { writes })].boxed()
    } else {
        leaf.boxed()
    };
    if depth == 0 {
        return leaf;
    }
    let inner = prop::collection::vec(shape(depth - 1, false), 1..3);
    prop_oneof![
        3 => leaf,
        1 => prop::collection::vec(inner.clone(), 1..3).prop_map(Shape::Parallel),
        1 => inner.prop_map(Shape::Map),
    ]
    .boxed()
}

/// Turns shapes into a graph: a sequence where every other step may branch on the state
/// (skipping its successor when a key holds something), so every step stays reachable.
struct Namer {
    next: usize,
    branch_seed: usize,
}

impl Namer {
    fn graph(&mut self, shapes: &[Shape]) -> Graph {
        let names: Vec<String> = shapes
            .iter()
            .map(|_| {
                self.next += 1;
                format!("s{}", self.next)
            })
            .collect();
        let steps: Vec<Step> = shapes
            .iter()
            .enumerate()
            .map(|(i, shape)| {
                let action = match shape {
                    Shape::Task { .. } => Action::Task(TaskStep::new("work")),
                    Shape::Timer { .. } => Action::Wait(Wait::Timer { ms: 1 }),
                    Shape::Interrupt { .. } => Action::Wait(Wait::Interrupt {
                        prompt: json!(names[i]),
                    }),
                    Shape::Signal { .. } => Action::Wait(Wait::Signal {
                        name: names[i].clone(),
                    }),
                    Shape::Parallel(branches) => Action::Parallel {
                        branches: branches.iter().map(|b| self.graph(b)).collect(),
                    },
                    Shape::Map(body) => {
                        Action::Map(MapStep::new("items", "item", self.graph(body)))
                    }
                };
                let mut step = Step::new(names[i].clone(), action);
                match shape {
                    Shape::Task { reads, writes } => {
                        let read = if *reads < KEYS.len() {
                            json!({"$state": format!("/{}", KEYS[*reads])})
                        } else {
                            json!({"$state": "/item"})
                        };
                        step = step
                            .input(json!({"step": names[i], "x": read}))
                            .output(KEYS[*writes]);
                    }
                    Shape::Timer { writes }
                    | Shape::Interrupt { writes }
                    | Shape::Signal { writes } => {
                        step = step.output(KEYS[*writes]);
                    }
                    Shape::Parallel(_) | Shape::Map(_) => {}
                }
                self.branch_seed += 1;
                step.next = match (names.get(i + 1), names.get(i + 2)) {
                    (Some(next), Some(after)) if self.branch_seed.is_multiple_of(2) => {
                        Next::Branch(vec![
                            Edge::when(
                                Condition::compare(
                                    format!("/{}", KEYS[self.branch_seed % KEYS.len()]),
                                    Compare::Ne,
                                    Value::Null,
                                ),
                                after.clone(),
                            ),
                            Edge::otherwise(next.clone()),
                        ])
                    }
                    (Some(next), _) => Next::To(next.clone()),
                    (None, _) => Next::End,
                };
                step
            })
            .collect();
        Graph::new(steps)
    }
}

fn definition(shapes: &[Shape], reducers: &[Reducer; 4], seed: usize) -> WorkflowDefinition {
    let mut namer = Namer {
        next: 0,
        branch_seed: seed,
    };
    let graph = namer.graph(shapes);
    let mut state: Vec<(String, StateKey)> = KEYS
        .iter()
        .zip(reducers)
        .map(|(k, r)| ((*k).to_owned(), StateKey::new(*r)))
        .collect();
    state.push(("items".into(), StateKey::default()));
    state.push(("item".into(), StateKey::default()));
    WorkflowDefinition::new("model", state, graph.steps)
}

/// The reference: walks `graph` over `state`, recording writes when nested.
fn reference(
    def: &WorkflowDefinition,
    graph: &Graph,
    state: &mut Map<String, Value>,
    log: &mut Vec<(String, Value)>,
) {
    let mut at = graph.start_name().map(str::to_owned);
    while let Some(name) = at {
        let step = graph.steps.iter().find(|s| s.name == name).unwrap();
        let result = match &step.action {
            Action::Task(_) => Some(work(&render(
                step.input.as_ref(),
                &Value::Object(state.clone()),
            ))),
            Action::Wait(Wait::Timer { .. }) => Some(Value::Null),
            Action::Wait(Wait::Interrupt { .. }) => Some(interrupt_value(&step.name)),
            Action::Wait(Wait::Signal { .. }) => Some(signal_value(&step.name)),
            Action::Parallel { branches } => {
                let mut writes = Vec::new();
                for branch in branches {
                    reference(def, branch, &mut state.clone(), &mut writes);
                }
                join(def, state, log, writes);
                None
            }
            Action::Map(map) => {
                let mut writes = Vec::new();
                for item in state[&map.over].as_array().unwrap().clone() {
                    let mut local = state.clone();
                    local.insert(map.item.clone(), item);
                    reference(def, &map.graph, &mut local, &mut writes);
                }
                join(def, state, log, writes);
                None
            }
            other => panic!("not generated: {other:?}"),
        };
        if let (Some(result), Some(key)) = (result, &step.output) {
            join(def, state, log, vec![(key.clone(), result)]);
        }
        let view = Value::Object(state.clone());
        at = match &step.next {
            Next::End => None,
            Next::To(to) => Some(to.clone()),
            Next::Branch(edges) => edges
                .iter()
                .find(|e| e.when.as_ref().is_none_or(|c| c.holds(&view)))
                .map(|e| e.to.clone()),
            other => panic!("not generated: {other:?}"),
        };
    }
}

fn join(
    def: &WorkflowDefinition,
    state: &mut Map<String, Value>,
    log: &mut Vec<(String, Value)>,
    writes: Vec<(String, Value)>,
) {
    for (key, value) in writes {
        apply(state, &key, def.state[&key].reducer, value.clone());
        log.push((key, value));
    }
}

fn signals(graph: &Graph) -> Vec<String> {
    graph
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Wait(Wait::Signal { .. })))
        .map(|s| s.name.clone())
        .collect()
}

/// Runs `def` on the runtime, answering interrupts and signals as the reference does.
async fn run_on_runtime(def: WorkflowDefinition, input: Value) -> Value {
    let engine = Engine::start(fast_config(), MemoryStores::new())
        .await
        .unwrap();
    let tenant = TenantId::new();
    let _agent = engine
        .connect_local(tenant, Hello::new("worker", ["work"]), |task| async move {
            Ok(work(&task.input))
        })
        .await
        .unwrap();
    let workflows = Workflows::start(
        engine.clone(),
        Arc::new(ToolRegistry::new()),
        WorkflowConfig::default().poll_every(Duration::from_millis(20)),
    )
    .await
    .unwrap();
    let sent = signals(&def.graph);
    workflows.register(tenant, def).await.unwrap();
    let run = workflows
        .start_run(tenant, StartRequest::new("model", input))
        .await
        .unwrap()
        .id;
    for name in sent {
        workflows
            .signal(tenant, run, &name, signal_value(&name))
            .await
            .unwrap();
    }
    let mut events = engine.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let current = workflows.run(tenant, run).await.unwrap();
        match current.status {
            RunStatus::Succeeded => return current.output.unwrap(),
            RunStatus::Failed | RunStatus::Cancelled => {
                panic!("run ended {:?}: {:?}", current.status, current.error)
            }
            _ => {}
        }
        for interrupt in current.interrupts {
            // A resume may race the run moving on: a stale one is refused, harmlessly.
            let _ = workflows
                .resume(tenant, run, interrupt.id, interrupt_value(&interrupt.step))
                .await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run did not finish"
        );
        let _ = tokio::time::timeout(Duration::from_millis(50), events.recv()).await;
    }
}

fn reducer() -> impl Strategy<Value = Reducer> {
    prop_oneof![
        Just(Reducer::Overwrite),
        Just(Reducer::Append),
        Just(Reducer::Merge)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_runtime_agrees_with_the_reference_interpreter(
        shapes in prop::collection::vec(shape(2, true), 1..5),
        reducers in [reducer(), reducer(), reducer(), reducer()],
        seed in 0..8usize,
        items in prop::collection::vec(0..100i64, 0..3),
        a in prop::option::of(0..10i64),
    ) {
        let def = definition(&shapes, &reducers, seed);
        def.validate().unwrap();
        let mut input = Map::new();
        input.insert("items".into(), json!(items));
        if let Some(a) = a {
            input.insert("a".into(), json!(a));
        }
        let mut expected = input.clone();
        reference(&def, &def.graph, &mut expected, &mut Vec::new());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let actual = runtime.block_on(run_on_runtime(def, Value::Object(input)));
        prop_assert_eq!(actual, Value::Object(expected));
    }
}
