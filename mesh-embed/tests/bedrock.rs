//! The Bedrock clients against a local HTTP endpoint that answers `InvokeModel` with
//! the request and response bodies AWS documents, and with its errors: throttling
//! (429 `ThrottlingException`), validation (400 `ValidationException`) and timeouts.

#![cfg(feature = "bedrock")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_bedrockruntime::config::retry::RetryConfig;
use aws_sdk_bedrockruntime::config::timeout::TimeoutConfig;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use mesh_embed::{
    BedrockEmbedder, BedrockModel, EmbedError, Embedder, Failover, HashEmbedder, Role,
};
use serde_json::{Value, json};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    Throttle,
    Invalid,
    Slow,
}

#[derive(Clone)]
struct Fake {
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<(String, Value)>>>,
}

fn percent_decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn reply(status: u16, headers: &[(&str, String)], body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    r.body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

async fn answer(fake: Fake, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let model = percent_decode(
        path.strip_prefix("/model/")
            .and_then(|p| p.strip_suffix("/invoke"))
            .unwrap_or(""),
    );
    let body: Value = serde_json::from_slice(&req.into_body().collect().await.unwrap().to_bytes())
        .unwrap_or(Value::Null);
    fake.seen
        .lock()
        .unwrap()
        .push((model.clone(), body.clone()));
    let mode = *fake.mode.lock().unwrap();
    match mode {
        Mode::Throttle => {
            return reply(
                429,
                &[(
                    "x-amzn-ErrorType",
                    "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"
                        .into(),
                )],
                json!({"message": "Too many requests, please wait before trying again."}),
            );
        }
        Mode::Invalid => {
            return reply(
                400,
                &[(
                    "x-amzn-ErrorType",
                    "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"
                        .into(),
                )],
                json!({"message": "Malformed input request: expected maxLength: 50000"}),
            );
        }
        Mode::Slow => tokio::time::sleep(Duration::from_secs(3)).await,
        Mode::Ok => {}
    }
    if model.starts_with("amazon.titan-embed-text") {
        let dims = body["dimensions"].as_u64().unwrap_or(1536) as usize;
        let text = body["inputText"].as_str().unwrap_or("");
        let embedding: Vec<f32> = (0..dims)
            .map(|i| (i as f32 + text.len() as f32) / dims as f32)
            .collect();
        let tokens = text.split_whitespace().count();
        reply(
            200,
            &[("x-amzn-bedrock-input-token-count", tokens.to_string())],
            json!({"embedding": embedding, "inputTextTokenCount": tokens}),
        )
    } else {
        let texts = body["texts"].as_array().cloned().unwrap_or_default();
        let embeddings: Vec<Vec<f32>> = texts
            .iter()
            .enumerate()
            .map(|(n, _)| vec![n as f32; 1024])
            .collect();
        let tokens: usize = texts
            .iter()
            .map(|t| t.as_str().unwrap_or("").split_whitespace().count())
            .sum();
        reply(
            200,
            &[("x-amzn-bedrock-input-token-count", tokens.to_string())],
            json!({"embeddings": embeddings, "id": "3d5c0a77-0000", "response_type": "embeddings_floats", "texts": texts}),
        )
    }
}

async fn fake_bedrock() -> (String, Fake) {
    let fake = Fake {
        mode: Arc::new(Mutex::new(Mode::Ok)),
        seen: Arc::default(),
    };
    let url = common::serve(fake.clone(), answer).await;
    (url, fake)
}

fn client(endpoint: &str) -> aws_sdk_bedrockruntime::Client {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(800))
                .build(),
        )
        .build();
    aws_sdk_bedrockruntime::Client::from_conf(config)
}

fn texts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("text number {i} for the mesh"))
        .collect()
}

#[tokio::test]
async fn titan_v1_sends_one_documented_request_per_text() {
    let (url, fake) = fake_bedrock().await;
    let titan = BedrockEmbedder::new(client(&url), BedrockModel::TitanV1);
    let out = titan.embed(&texts(3), Role::Document).await.unwrap();
    assert_eq!(
        (out.vectors.len(), out.vectors[0].len(), out.model.as_str()),
        (3, 1536, "amazon.titan-embed-text-v1")
    );
    assert_eq!(out.tokens, 3 * 6);
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].0, "amazon.titan-embed-text-v1");
    assert!(
        seen.iter()
            .any(|(_, b)| *b == json!({"inputText": "text number 0 for the mesh"}))
    );
}

#[tokio::test]
async fn titan_v2_asks_for_its_dimensions_and_normalization() {
    let (url, fake) = fake_bedrock().await;
    let titan = BedrockEmbedder::new(
        client(&url),
        BedrockModel::TitanV2 {
            dimensions: 256,
            normalize: true,
        },
    );
    let out = titan.embed(&texts(1), Role::Query).await.unwrap();
    assert_eq!(out.vectors[0].len(), 256);
    assert_eq!(
        out.model, "amazon.titan-embed-text-v2:0#256",
        "each size is its own model: its own collection"
    );
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen[0].0, "amazon.titan-embed-text-v2:0");
    assert_eq!(
        seen[0].1,
        json!({"inputText": "text number 0 for the mesh", "dimensions": 256, "normalize": true})
    );
}

#[tokio::test]
async fn cohere_sends_the_batch_with_its_input_type_and_reads_the_token_header() {
    let (url, fake) = fake_bedrock().await;
    for (model, id) in [
        (BedrockModel::CohereEnglishV3, "cohere.embed-english-v3"),
        (
            BedrockModel::CohereMultilingualV3,
            "cohere.embed-multilingual-v3",
        ),
    ] {
        let cohere = BedrockEmbedder::new(client(&url), model);
        let out = cohere.embed(&texts(5), Role::Query).await.unwrap();
        assert_eq!(
            (out.vectors.len(), out.vectors[4][0], out.tokens),
            (5, 4.0, 30)
        );
        let doc = cohere.embed(&texts(2), Role::Document).await.unwrap();
        assert_eq!(doc.vectors.len(), 2);
        let seen = fake.seen.lock().unwrap();
        let (m, body) = &seen[seen.len() - 2];
        assert_eq!(m, id);
        assert_eq!(body["input_type"], "search_query");
        assert_eq!(body["texts"].as_array().unwrap().len(), 5);
        assert_eq!(seen.last().unwrap().1["input_type"], "search_document");
    }
    let cohere = BedrockEmbedder::new(client(&url), BedrockModel::CohereEnglishV3);
    assert!(matches!(
        cohere.embed(&texts(97), Role::Document).await,
        Err(EmbedError::BatchTooLarge { count: 97, max: 96 })
    ));
}

#[tokio::test]
async fn throttling_validation_and_timeouts_are_typed_errors() {
    let (url, fake) = fake_bedrock().await;
    let titan = BedrockEmbedder::new(client(&url), BedrockModel::TitanV1);
    *fake.mode.lock().unwrap() = Mode::Throttle;
    let err = titan.embed(&texts(1), Role::Document).await.unwrap_err();
    assert!(err.is_throttling() && err.is_retryable(), "{err}");
    *fake.mode.lock().unwrap() = Mode::Invalid;
    let err = titan.embed(&texts(1), Role::Document).await.unwrap_err();
    assert!(
        matches!(&err, EmbedError::Invalid { message, .. } if message.contains("Malformed input")),
        "{err}"
    );
    assert!(!err.is_retryable());
    *fake.mode.lock().unwrap() = Mode::Slow;
    let err = titan.embed(&texts(1), Role::Document).await.unwrap_err();
    assert!(matches!(err, EmbedError::Timeout { .. }), "{err}");
}

#[tokio::test]
async fn failover_leaves_a_throttling_bedrock_for_the_offline_model() {
    let (url, fake) = fake_bedrock().await;
    *fake.mode.lock().unwrap() = Mode::Throttle;
    let chain = Failover::new(
        vec![
            Box::new(BedrockEmbedder::new(
                client(&url),
                BedrockModel::CohereEnglishV3,
            )),
            Box::new(HashEmbedder::new(1024)),
        ],
        3,
        Duration::from_secs(30),
    )
    .unwrap();
    let out = chain.embed(&texts(4), Role::Document).await.unwrap();
    assert_eq!(
        out.model, "mesh-hash-v1-1024",
        "the fallback's vectors are labelled as its own"
    );
    *fake.mode.lock().unwrap() = Mode::Ok;
    let out = chain.embed(&texts(4), Role::Document).await.unwrap();
    assert_eq!(out.model, "cohere.embed-english-v3");
}
