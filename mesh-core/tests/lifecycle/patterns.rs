// The collaboration patterns (fan-out, map-reduce, pipeline, consensus), each with a
// failing member. Included after `cases.rs`, on every store.

async fn pattern_mesh() -> Option<(common::Mesh, Vec<tokio::task::JoinHandle<()>>)> {
    let m = mesh().await?;
    let agents = vec![
        m.agent("doubler", &["double"], 8, |t, _| async move {
            match t.input["n"].as_i64() {
                Some(13) => Err(TaskError::permanent("unlucky")),
                Some(n) => Ok(json!(n * 2)),
                None => Err(TaskError::permanent("no n")),
            }
        }),
        m.agent("summer", &["sum"], 2, |t, _| async move {
            Ok(json!(t.input["results"].as_array().map_or(0, |r| {
                r.iter().filter_map(|v| v.as_i64()).sum::<i64>()
            })))
        }),
        m.agent("stages", &["inc", "square"], 4, |t, _| async move {
            let n = t
                .input
                .as_i64()
                .ok_or_else(|| TaskError::permanent("not a number"))?;
            Ok(json!(if t.kind == "inc" { n + 1 } else { n * n }))
        }),
        m.agent("voter", &["vote"], 8, |_, _| async move { Ok(json!("42")) }),
    ];
    m.wait_for_agents(4).await;
    Some((m, agents))
}

#[tokio::test]
async fn parallel_fan_out_honours_its_completion_mode() {
    let Some((m, _agents)) = pattern_mesh().await else { return };
    let specs = |ns: &[i64]| {
        ns.iter()
            .map(|n| TaskSpec::new("double", json!({"n": n})))
            .collect::<Vec<_>>()
    };
    let all = collab::parallel(&m.engine, m.tenant, specs(&[1, 2, 3]), Completion::All)
        .await
        .unwrap();
    assert!(all.satisfied);
    let mut outs: Vec<i64> = all
        .completed
        .iter()
        .map(|t| t.output.as_ref().unwrap().as_i64().unwrap())
        .collect();
    outs.sort();
    assert_eq!(outs, [2, 4, 6]);
    // One member fails: `all` is not satisfied, `majority` is.
    let all = collab::parallel(&m.engine, m.tenant, specs(&[1, 13, 3]), Completion::All)
        .await
        .unwrap();
    assert!(!all.satisfied);
    assert_eq!(
        all.others
            .iter()
            .filter(|t| t.status() == TaskStatus::Failed)
            .count(),
        1
    );
    let majority = collab::parallel(
        &m.engine,
        m.tenant,
        specs(&[1, 13, 3]),
        Completion::Majority,
    )
    .await
    .unwrap();
    assert!(majority.satisfied && majority.completed.len() >= 2);
    let any = collab::parallel(&m.engine, m.tenant, specs(&[13, 13, 5]), Completion::Any)
        .await
        .unwrap();
    assert!(any.satisfied);
    assert_eq!(any.completed[0].output, Some(json!(10)));
    let first_two = collab::parallel(
        &m.engine,
        m.tenant,
        specs(&[13, 13, 13, 4]),
        Completion::FirstN(2),
    )
    .await
    .unwrap();
    assert!(!first_two.satisfied, "only one of four can complete");
}

#[tokio::test]
async fn map_reduce_maps_then_reduces_and_fails_on_a_failing_mapper() {
    let Some((m, _agents)) = pattern_mesh().await else { return };
    let inputs = (1..=5).map(|n| json!({"n": n})).collect();
    let reduced = collab::map_reduce(&m.engine, m.tenant, "double", inputs, "sum", None)
        .await
        .unwrap();
    assert_eq!(reduced.output, Some(json!(30)));
    let inputs = vec![json!({"n": 1}), json!({"n": 13})];
    let err = collab::map_reduce(&m.engine, m.tenant, "double", inputs, "sum", None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            collab::CollabError::TaskDidNotComplete {
                status: TaskStatus::Failed,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_pipeline_feeds_each_output_to_the_next_stage_and_stops_at_a_failure() {
    let Some((m, _agents)) = pattern_mesh().await else { return };
    let stages = collab::pipeline(&m.engine, m.tenant, &["inc", "square", "inc"], json!(2))
        .await
        .unwrap();
    assert_eq!(stages.last().unwrap().output, Some(json!(10)));
    let err = collab::pipeline(&m.engine, m.tenant, &["inc", "double", "square"], json!(2))
        .await
        .unwrap_err();
    assert!(
        matches!(err, collab::CollabError::TaskDidNotComplete { .. }),
        "the double stage gets a bare number: {err}"
    );
}

#[tokio::test]
async fn consensus_agrees_on_a_majority_or_says_there_is_none() {
    let Some((m, _agents)) = pattern_mesh().await else { return };
    let agreed = collab::consensus(&m.engine, m.tenant, TaskSpec::new("vote", json!({})), 3)
        .await
        .unwrap();
    assert_eq!(
        agreed,
        ConsensusOutcome::Agreed {
            value: json!("42"),
            votes: 3,
            voters: 3
        }
    );
    // Two of three voters fail: one vote is no majority.
    let specs = [1, 13, 13].map(|n| TaskSpec::new("double", json!({"n": n})));
    let outcome = collab::parallel(&m.engine, m.tenant, specs.to_vec(), Completion::All)
        .await
        .unwrap();
    assert_eq!(outcome.completed.len(), 1);
    let failing = collab::consensus(
        &m.engine,
        m.tenant,
        TaskSpec::new("double", json!({"n": 13})),
        3,
    )
    .await
    .unwrap();
    assert!(
        matches!(failing, ConsensusOutcome::NoConsensus { ref tallies, voters: 3 } if tallies.is_empty()),
        "{failing:?}"
    );
}
