//! W3C trace context across Mesh's boundaries: the `traceparent` an HTTP request, an
//! MCP call, a task or a queued job carries becomes the parent of the span that handles
//! it, and the current span's context is written into what Mesh sends on (a
//! `task_assign` to an agent, a job to the worker), so one trace follows work from
//! process to process.
//!
//! Spans are `tracing` spans; with the `otel` feature they are OpenTelemetry's
//! (tracing-opentelemetry) once the binary installs its layer. Without the feature, or
//! without the layer, nothing is read or written and these functions cost nothing.

use tracing::Span;

/// The longest `traceparent` read: version `00` is exactly 55 characters; a later
/// version may append fields, which are ignored.
pub const MAX_TRACEPARENT_LEN: usize = 256;

/// The current span's context as a W3C `traceparent`, or `None` when there is none.
pub fn current() -> Option<String> {
    of(&Span::current())
}

/// `span`'s context as a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`), or
/// `None` when it has no OpenTelemetry context.
#[cfg(feature = "otel")]
pub fn of(span: &Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}

/// `span`'s context as a W3C `traceparent` (always `None` without the `otel` feature).
#[cfg(not(feature = "otel"))]
pub fn of(_span: &Span) -> Option<String> {
    None
}

/// Makes `traceparent` the parent of `span`, which must not have been entered yet. An
/// invalid value is ignored: a peer's bad header never fails its request.
#[cfg(feature = "otel")]
pub fn set_parent(span: &Span, traceparent: &str) {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    if let Some(remote) = parse(traceparent) {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
}

/// Makes `traceparent` the parent of `span` (nothing without the `otel` feature).
#[cfg(not(feature = "otel"))]
pub fn set_parent(_span: &Span, _traceparent: &str) {}

/// Whether `traceparent` is well formed and asks for its trace to be recorded (the
/// sampled flag): Mesh only opens spans of its own for such work.
pub fn is_sampled(traceparent: &str) -> bool {
    fields(traceparent).is_some_and(|(_, _, flags)| flags & 1 == 1)
}

/// A span context read from a `traceparent`, marked remote.
#[cfg(feature = "otel")]
fn parse(traceparent: &str) -> Option<opentelemetry::trace::SpanContext> {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    let (trace, span, flags) = fields(traceparent)?;
    Some(SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(flags & 1),
        true,
        TraceState::default(),
    ))
}

/// The trace id, span id and flags of a well-formed `traceparent` (W3C Trace Context
/// level 1: lower-case hex, ids not all zero, version `ff` invalid, version `00`
/// exactly four fields).
fn fields(traceparent: &str) -> Option<(&str, &str, u8)> {
    if traceparent.len() > MAX_TRACEPARENT_LEN {
        return None;
    }
    let mut parts = traceparent.split('-');
    let version = parts.next()?;
    let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    let valid = hex(version, 2)
        && version != "ff"
        && (version != "00" || parts.next().is_none())
        && hex(trace, 32)
        && nonzero(trace)
        && hex(span, 16)
        && nonzero(span)
        && hex(flags, 2);
    valid.then(|| (trace, span, u8::from_str_radix(flags, 16).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn reads_w3c_examples_and_refuses_malformed_values() {
        assert!(is_sampled(GOOD));
        assert!(!is_sampled(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        ));
        // A later version may carry more fields.
        assert!(is_sampled(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"
        ));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert!(fields(bad).is_none(), "{bad:?} accepted");
        }
        assert!(fields(&format!("01-{}", "a".repeat(MAX_TRACEPARENT_LEN))).is_none());
    }

    #[cfg(feature = "otel")]
    #[test]
    fn a_parent_read_from_a_traceparent_is_written_back_with_the_same_trace() {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt;

        let provider = opentelemetry::trace::noop::NoopTracerProvider::new();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("child");
            set_parent(&span, GOOD);
            let written = of(&span).unwrap_or_default();
            assert!(
                written.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "{written}"
            );
            // No layer's context for a span outside any subscriber.
        });
        assert_eq!(of(&tracing::info_span!("outside")), None);
    }
}
